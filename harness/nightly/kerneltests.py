"""The kernel's own tests of a cell (kselftest, KUnit), each against its previous nightly.

A cell that runs a few hundred tests fails as one cell whenever any of them fails; what a
lab wants is which test regressed tonight ("kselftest.mm.khugepaged.collapse_full on
arm32 LPAE: new"), which ones have failed for weeks, which were fixed and which only
fail now and then. The same words as the cells: new, known, fixed, flaky, pass, skipped,
known-issue (a known failure from the scenario's list).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.nightly.model import (
    FIXED,
    FLAKY,
    KNOWN,
    KNOWN_ISSUE,
    NEW,
    PASS,
    SKIPPED,
    Attempt,
    TestOutcome,
)

FAILED = ("fail", "error")
WAS_FAILING = (NEW, KNOWN, FLAKY)


@dataclass(frozen=True)
class PreviousTest:
    status: str
    since: str
    ref: str


def classify_tests(
    attempts: list[Attempt], previous: dict[str, PreviousTest], ref: str
) -> list[TestOutcome]:
    """Tonight's result of every test the cell's runs reported, in the order first seen."""
    seen: dict[str, list[dict]] = {}
    for a in attempts:
        for u in a.tests:
            seen.setdefault(u["path"], []).append(u)
    out = []
    for path, runs in seen.items():
        last, failed = runs[-1], [u for u in runs if u["status"] in FAILED]
        prev = previous.get(path)
        shown = failed[0] if failed else last
        why, since = _what(shown), ""
        if failed and last["status"] not in FAILED:
            status = FLAKY
            why = f"{why}, then {last['status']} on the retry"
        elif failed:
            if prev is not None and prev.status in WAS_FAILING:
                status, since = KNOWN, prev.since or prev.ref
                why = f"failing since {since}: {why}"
            else:
                status, since = NEW, ref
                was = f"{prev.status} on {prev.ref}" if prev else "no earlier result"
                why = f"{why} ({was})"
        elif last["status"] == "pass":
            status = FIXED if prev is not None and prev.status in WAS_FAILING else PASS
            why = f"failed on {prev.ref}" if status == FIXED and prev else ""
        elif last["status"] == "xfail":
            status = KNOWN_ISSUE
        else:
            status = SKIPPED
        out.append(TestOutcome(path, status, shown["status"], why, since,
                               list(shown.get("reports") or [])))  # fmt: skip
    return out


def _what(u: dict) -> str:
    reason = u.get("reason") or ""
    return f"{u['status']}: {reason}" if reason else u["status"]


def counts(tests: list[TestOutcome]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tests:
        out[t.status] = out.get(t.status, 0) + 1
    return out
