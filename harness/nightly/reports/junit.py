"""junit.xml of a nightly: one suite per target, one case per scenario.

CI systems show failures and errors, so the classification is spelled into the message
("NEW regression", "known since ..."), a harness failure is an error rather than a
failure, and an expected outcome (canary caught, flaky) passes with a note.
"""

from __future__ import annotations

from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from harness.fsutil import atomic_write_text
from harness.nightly.model import (
    CAUGHT,
    FIXED,
    FLAKY,
    HARNESS,
    IN_TREE,
    KNOWN,
    KNOWN_GONE,
    KNOWN_ISSUE,
    NEW,
    SKIPPED,
    STALE,
    Classified,
    Nightly,
)
from harness.nightly.reports import clean, failure_text, reproducer


def case_for(nightly: Nightly, c: Classified) -> TestCase:
    seconds = sum(a.seconds or (a.build_seconds + a.boot_seconds) for a in c.attempts)
    a = c.final
    case = TestCase(
        name=c.cell.scenario,
        classname=f"nightly.{c.cell.target}",
        elapsed_sec=seconds,
        stdout=clean(
            f"reproduce: {reproducer(nightly, c)}\n"
            + (f"results: {a.results_dir}\n" if a and a.results_dir else "")
        ),
    )
    text = failure_text(c)
    if c.status == NEW:
        case.add_failure_info(message=clean(f"NEW regression: {c.title}"), output=text)
    elif c.status == KNOWN:
        case.add_failure_info(
            message=clean(f"known regression (failing since {c.since}): {c.title}"), output=text
        )
    elif c.status == HARNESS:
        case.add_error_info(message=clean(f"harness failure: {c.reason}"), output=text)
    elif c.status == SKIPPED:
        case.add_skipped_info(message=clean(c.reason))
    elif c.status == STALE:  # not run: neither a pass nor a failure of the kernel
        case.add_skipped_info(message=clean(f"STALE (needs a port): {c.reason}"))
    elif c.status in (FLAKY, CAUGHT, IN_TREE, FIXED, KNOWN_ISSUE, KNOWN_GONE):
        note = {
            FLAKY: "flaky",
            CAUGHT: "canary caught",
            IN_TREE: "canary in tree",
            FIXED: "fixed",
            KNOWN_ISSUE: "known issue",
            KNOWN_GONE: "known issue gone (fixed?)",
        }[c.status]
        case.stdout += clean(f"{note}: {c.title or c.reason}\n{c.reason}\n")
    return case


def test_cases(c: Classified) -> list[TestCase]:
    """A case per kernel test of the cell (classname: nightly.<target>.<its parent path>)."""
    cases = []
    for t in c.tests:
        parent, _, name = t.path.rpartition(".")
        case = TestCase(name=name, classname=f"nightly.{c.cell.target}.{parent}")
        text = clean("\n".join([t.reason, *t.reports]))
        if t.status == NEW:
            case.add_failure_info(message=clean(f"NEW: {t.reason}"), output=text)
        elif t.status == KNOWN:
            case.add_failure_info(message=clean(f"known (since {t.since}): {t.reason}"),
                                  output=text)  # fmt: skip
        elif t.status in (SKIPPED, KNOWN_ISSUE):
            case.add_skipped_info(message=clean(f"{t.result}: {t.reason}".rstrip(": ")))
        elif t.status in (FLAKY, FIXED):
            case.stdout = clean(f"{t.status}: {t.reason}")
        cases.append(case)
    return cases


def write(path: Path, nightly: Nightly, cells: list[Classified]) -> None:
    suites = []
    for target in dict.fromkeys(c.cell.target for c in cells):
        cases = [case_for(nightly, c) for c in cells if c.cell.target == target]
        cases += [t for c in cells if c.cell.target == target for t in test_cases(c)]
        props = {"ref": nightly.ref, "commit": nightly.commit, "tree": str(nightly.tree)}
        suites.append(
            TestSuite(f"nightly.{target}", cases, timestamp=nightly.stamp, properties=props)
        )
    if nightly.harness_failures:  # outside any cell: a failed fetch, an invalid report
        cases = []
        for i, text in enumerate(nightly.harness_failures, 1):
            case = TestCase(name=f"harness-{i}", classname="nightly.harness")
            case.add_error_info(message=clean(text.splitlines()[0]), output=clean(text))
            cases.append(case)
        suites.append(TestSuite("nightly.harness", cases, timestamp=nightly.stamp))
    atomic_write_text(path, to_xml_report_string(suites))
