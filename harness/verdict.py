"""From console facts and crash reports to one verdict and exit code.

Success needs a positive marker from the guest; a canary is a test of the harness, so a
canary that is not caught (or caught under another title) is the harness's failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.config import Expectation, Scenario
from harness.console import BootResult
from harness.errors import EXIT_INFRA, EXIT_PASS, EXIT_REGRESSION


class Kind(StrEnum):
    """What a run came to. Strings in metadata.json, reports and history; compare with
    these members, never with error text."""

    PASS = "pass"
    FAIL = "fail"  # a regression (for a canary: caught as expected)
    BUILD_ERROR = "build-error"
    INFRA_ERROR = "infra-error"
    TIMEOUT = "timeout"
    CANARY_MISSED = "canary-missed"
    NOT_APPLICABLE = "not-applicable"
    CONFIG_ERROR = "config-error"
    PATCH_ERROR = "patch-error"  # a patch did not apply; `cause` says why
    STALE = "stale"  # no variant applies exactly: a port is needed
    INTERNAL_ERROR = "internal-error"  # a crash of the harness itself


@dataclass
class Verdict:
    verdict: Kind
    exit_code: int
    summary: str
    details: list[str] = field(default_factory=list)
    canary: dict[str, Any] | None = None
    cause: str = ""  # for PATCH_ERROR: patches.ALREADY_APPLIED or patches.DOES_NOT_APPLY
    known: list[dict[str, str]] = field(default_factory=list)  # known issues seen


def expectation_matches(exp: Expectation, report: Any) -> bool:
    if exp.title and report.title != exp.title:
        return False
    if exp.title_regex and not re.search(exp.title_regex, report.title):
        return False
    funcs = {f.function for f in report.frames}
    return all(fn in funcs for fn in exp.frames_include)


def missing_console(console: str, required: tuple[str, ...]) -> list[str]:
    """The required console patterns (a feature the run asked for) that never appeared."""
    return [rx for rx in required if not re.search(rx, console, re.MULTILINE)]


def decide(
    boot: BootResult,
    reports: list[Any],
    scenario: Scenario,
    expect: Expectation | None,
    requires_console: tuple[str, ...] = (),
    known: dict[int, Any] | None = None,
    tests: list[Any] | None = None,
) -> Verdict:
    """The verdict of one boot; see DESIGN.md 'verdict'.

    A run that asked for a feature (requires_console) and did not get it tested nothing it
    meant to: an infra error, never a pass or a missed canary, unless a real crash came.
    Reports that are known issues (`known`: report index -> issue) do not fail the run;
    they are named in the verdict, which passes when nothing else went wrong.
    """
    known = known or {}
    verdict = _decide(
        boot, [r for i, r in enumerate(reports) if i not in known], reports, scenario, expect,
        requires_console, tests or [],
    )  # fmt: skip
    seen: dict[str, dict[str, str]] = {}
    for i, issue in sorted(known.items()):
        seen.setdefault(issue.id, {"id": issue.id, "title": reports[i].title, "link": issue.link})
    verdict.known = list(seen.values())
    if seen:
        names = "; ".join(f"{k['id']}: {k['title']}" + (f" ({k['link']})" if k["link"] else "")
                          for k in verdict.known)  # fmt: skip
        if verdict.verdict == Kind.PASS:
            verdict.summary = f"pass, with known issue {names}"
        else:
            verdict.details.append(f"also known issue {names}")
    return verdict


def _decide(
    boot: BootResult,
    counted: list[Any],
    reports: list[Any],
    scenario: Scenario,
    expect: Expectation | None,
    requires_console: tuple[str, ...],
    tests: list[Any],
) -> Verdict:
    """decide() on the reports that count (all of them for a canary's expectation)."""
    from harness import ktap

    details = [f"boot ended: {boot.ending} after {boot.seconds:.1f}s"]
    if tests:
        details.append("kernel tests: " + ktap.summary(tests))
    skipped = [s for s in boot.steps if s.rc == 77]
    details += [f"step {s.index} {s.name}: does not apply here (rc 77)" for s in skipped]
    missing = missing_console(boot.console, requires_console)
    caught = (
        scenario.canary
        and expect is not None
        and any(expectation_matches(expect, r) for r in reports)
    )
    if missing and not caught and not (counted and not scenario.canary):
        return Verdict(
            Kind.INFRA_ERROR,
            EXIT_INFRA,
            "the run asked for a feature the kernel did not provide: the console never "
            + "; ".join(f"matched /{rx}/" for rx in missing),
            details,
        )
    if scenario.canary and expect is not None:
        return _canary(boot, reports, expect, details)
    if counted:
        first = counted[0]
        times = getattr(first, "count", 1)
        seen = f" x{times}" if times > 1 else ""
        more = f" (+{len(counted) - 1} more)" if len(counted) > 1 else ""
        return Verdict(
            Kind.FAIL, EXIT_REGRESSION, f"regression: {first.title}{seen}{more}", details
        )
    if boot.ending == "console-flood":
        return Verdict(
            Kind.INFRA_ERROR,
            EXIT_INFRA,
            f"the guest flooded the console ({boot.console_bytes >> 20} MiB) with no crash "
            "report; it was stopped",
            details,
        )
    if boot.timed_out:
        what = "no console output" if boot.ending == "timeout-silence" else "run too long"
        return Verdict(Kind.TIMEOUT, EXIT_INFRA, f"timeout ({what}) with no crash report", details)
    if not boot.started:
        return Verdict(
            Kind.INFRA_ERROR,
            EXIT_INFRA,
            "the guest never reached the harness init (no START marker) and no crash was found",
            details,
        )
    if not boot.done:
        return Verdict(
            Kind.INFRA_ERROR,
            EXIT_INFRA,
            f"the guest stopped before the DONE marker ({boot.ending}) with no crash report",
            details,
        )
    failed_tests = ktap.failures(tests)
    if failed_tests:
        first = failed_tests[0]
        more = f" (+{len(failed_tests) - 1} more)" if len(failed_tests) > 1 else ""
        why = f": {first.reason}" if first.reason else ""
        details += [f"{t.status}: {t.path}" + (f" ({t.reason})" if t.reason else "")
                    for t in failed_tests[:50]]  # fmt: skip
        return Verdict(Kind.FAIL, EXIT_REGRESSION, f"kernel test failed: {first.path}{why}{more}",
                       details)  # fmt: skip
    bad = [s for s in boot.steps if s.rc not in (0, 77)]
    if boot.failed_steps:
        names = ", ".join(f"{s.name} (rc {s.rc})" for s in bad) or f"{boot.failed_steps} step(s)"
        return Verdict(Kind.FAIL, EXIT_REGRESSION, f"workload failed: {names}", details)
    if skipped and len(skipped) == len(boot.steps):
        return Verdict(Kind.PASS, EXIT_PASS, "pass (no step applied to this kernel)", details)
    return Verdict(Kind.PASS, EXIT_PASS, "pass", details)


def _canary(
    boot: BootResult, reports: list[Any], expect: Expectation, details: list[str]
) -> Verdict:
    wanted = expect.describe()
    hit = next((r for r in reports if expectation_matches(expect, r)), None)
    info = {"expected": wanted, "caught": hit is not None, "titles": [r.title for r in reports]}
    if hit is not None:
        info["title"] = hit.title
        return Verdict(
            Kind.FAIL,
            EXIT_REGRESSION,
            f"canary caught as expected: {hit.title}",
            details,
            canary=info,
        )
    if reports:
        got = "; ".join(r.title for r in reports)
        summary = f"HARNESS FAILURE: canary expected {wanted} but the kernel reported: {got}"
    elif boot.timed_out:
        summary = f"HARNESS FAILURE: canary expected {wanted}; the boot timed out with no report"
    else:
        summary = f"HARNESS FAILURE: canary expected {wanted}; the kernel reported nothing"
    return Verdict(Kind.CANARY_MISSED, EXIT_INFRA, summary, details, canary=info)
