"""`harness list`: what there is to run, and what fits what.

Targets, scenarios (with the kernels their variants cover) and kernel specs, each with its
whole description wrapped to the terminal, then a fit table: which scenario can run on
which target. A broken YAML file is named in place and makes the exit code 4, but does not
hide the rest of the list.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import IO

from harness import source
from harness.config import (
    Scenario,
    Target,
    list_scenarios,
    list_targets,
    load_scenario,
    load_target,
    load_yaml,
)
from harness.errors import EXIT_USAGE, HarnessError


def fit(scenario: Scenario, target: Target) -> str:
    """'+' runs there, '-' cannot (arch or hypervisor), '?' needs an option the target
    does not ask for (its defconfig may still have it: the run says)."""
    from harness.run import check_target_fits

    try:
        check_target_fits(scenario, target)
    except HarnessError:
        return "-"
    wanted = target.required_options()
    if any(wanted.get(opt, "n") == "n" for opt in scenario.requires_config):
        return "?"
    return "+"


def _wrap(name: str, text: str, width: int, col: int = 26) -> str:
    body = " ".join(text.split()) or "(no description)"
    return textwrap.fill(
        body,
        width=width,
        initial_indent=f"  {name:{col - 2}}",
        subsequent_indent=" " * col,
        break_long_words=False,
        break_on_hyphens=False,
    )


def show(out: IO[str], width: int | None = None) -> int:
    width = width or max(60, min(120, shutil.get_terminal_size((100, 24)).columns))
    broken: list[str] = []
    targets: dict[str, Target] = {}
    scenarios: dict[str, Scenario] = {}
    for name in list_targets():
        try:
            targets[name] = load_target(name)
        except HarnessError as e:
            broken.append(str(e))
    for name in list_scenarios():
        try:
            scenarios[name] = load_scenario(name)
        except HarnessError as e:
            broken.append(str(e))
    out.write("targets:\n")
    for name, t in targets.items():
        how = f"[{t.arch}" + (f", under {t.hypervisor.kind}" if t.hypervisor else "") + "] "
        out.write(_wrap(name, how + t.description, width) + "\n")
    out.write("\nscenarios:\n")
    for name, s in scenarios.items():
        kind = "canary" if s.canary else "test"
        ports = [v.versions for v in s.variants if not v.not_applicable]
        kernels = f" Variants: {'; '.join(ports)}." if ports else ""
        out.write(_wrap(name, f"[{kind}] {s.description}{kernels}", width) + "\n")
    out.write("\nkernels (--kernel NAME, or PATH[@REF] of a git tree):\n")
    for spec in source.known_specs():
        path = next(d / f"{spec}.yaml" for d in source.spec_dirs() if (d / f"{spec}.yaml").exists())
        try:
            data = load_yaml(path) or {}
            desc = str(data.get("description", "")) if isinstance(data, dict) else ""
        except HarnessError as e:
            broken.append(str(e))
            continue
        out.write(_wrap(spec, desc, width) + "\n")
    if targets and scenarios:
        out.write("\nfit (+ runs there, - cannot: arch or hypervisor, ? needs a config option):\n")
        names = list(targets)
        head = " " * 26 + " ".join(f"{i:>2}" for i in range(1, len(names) + 1))
        out.write(head + "\n")
        for name, s in scenarios.items():
            marks = " ".join(f"{fit(s, targets[t]):>2}" for t in names)
            out.write(f"  {name:24}{marks}\n")
        for i, tname in enumerate(names, 1):
            out.write(f"  {i:>2}: {tname}\n")
    for msg in broken:
        out.write(f"\nBROKEN: {msg}\n")
    return EXIT_USAGE if broken else 0
