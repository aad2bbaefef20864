"""Which of a scenario's variants a kernel gets, including kernels newer than any port.

linux-next reports a version two or three releases past what the canaries were ported
to. A kernel with no variant of its own gets the variants' patches tried from the nearest
version outwards, each applied exactly; the first that applies is used, and the run says
which. When none applies, the canary is stale (it needs a port), which is a status of its
own: neither a config error nor a harness failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config import Scenario, Variant
from harness.errors import ConfigError, NotApplicable, StaleError


@dataclass(frozen=True)
class Candidate:
    """One variant to try: its patches (after the clean-twin filter) and why it is tried."""

    variant: Variant
    patches: tuple[Path, ...]
    exact: bool

    def describe(self, version: str) -> str:
        how = "variant" if self.exact else "nearest variant that applies"
        note = f": {self.variant.note}" if self.variant.note else ""
        if self.exact:
            return f"{how} for kernel {self.variant.versions}{note}"
        return f"{how}, for kernel {self.variant.versions}, used on {version}{note}"


def anchor(spec: str) -> tuple[int, int]:
    """The (major, minor) a range is about: its lower bound, else its upper bound."""
    lows = re.findall(r">=?\s*(\d+)\.(\d+)", spec) or re.findall(r"==?\s*(\d+)\.(\d+)", spec)
    highs = re.findall(r"<=?\s*(\d+)\.(\d+)", spec)
    major, minor = (lows or highs or [("0", "0")])[0]
    return int(major), int(minor)


def distance(variant: Variant, version: tuple[int, int, int]) -> tuple[int, int]:
    """How far a variant is from a kernel, in minor releases (ties: the newer variant)."""
    major, minor = anchor(variant.versions)
    # minor numbers restart at each major: weigh a major as 100 minors
    gap = abs((version[0] * 100 + version[1]) - (major * 100 + minor))
    return gap, -(major * 100 + minor)


def candidates(
    scenario: Scenario, version: tuple[int, int, int], *, clean: bool = False
) -> list[Candidate]:
    """The variants to try, in order: the exact ones, then the others nearest first.

    An exact `not_applicable` variant makes the run not applicable. A variant without
    patches is only ever used where it is exact: applying nothing proves nothing.
    """
    if not scenario.variants:
        return []
    exact = [v for v in scenario.variants if v.matches(version)]
    if exact and exact[0].not_applicable:
        raise NotApplicable(f"kernel {'.'.join(map(str, version))}: {exact[0].not_applicable}")
    others = sorted(
        (v for v in scenario.variants if v not in exact and v.patches and not v.not_applicable),
        key=lambda v: distance(v, version),
    )
    out = []
    for v, is_exact in [(v, True) for v in exact] + [(v, False) for v in others]:
        chosen = list(v.patches)
        if clean:
            chosen = [p for p in chosen if p.name in set(v.enablers)]
        out.append(Candidate(v, tuple(chosen), is_exact))
    if not out:
        ranges = ", ".join(v.versions for v in scenario.variants)
        raise ConfigError(
            f"{scenario.path}: no variant for kernel {'.'.join(map(str, version))} and none "
            f"with patches to try (variants cover: {ranges})"
        )
    return out


def stale(
    scenario: Scenario,
    version_str: str,
    version: tuple[int, int, int],
    failures: Sequence[tuple[Candidate, Exception]],
) -> StaleError:
    """The error for a kernel none of the variants applies to, with the nearest one's hunk."""
    kind = "canary" if scenario.canary else "scenario"
    tried = "; ".join(f"{c.variant.versions}" for c, _ in failures)
    first_msg = str(failures[0][1]).strip() if failures else ""
    return StaleError(
        f"{kind} stale: {scenario.name} needs a port to {version[0]}.{version[1]} "
        f"(kernel {version_str}; no variant applies exactly: tried {tried})\n"
        f"nearest, {failures[0][0].variant.versions}: {first_msg}"
        if failures
        else f"{kind} stale: {scenario.name} needs a port to {version[0]}.{version[1]}"
    )
