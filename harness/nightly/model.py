"""The nightly's data: cells of the matrix, attempts at them, and what they were judged.

Plain dataclasses shared by the runner, the classifier, the history and the report writers,
so each of those can be tested with hand-made values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.verdict import Kind

# What a cell of tonight's matrix is, once judged against the previous nightly.
PASS = "pass"  # passed, and was not failing before
NEW = "new"  # a regression not seen in the previous nightly: the thing a lab wants to know
KNOWN = "known"  # still failing with a title already seen
FIXED = "fixed"  # passes tonight, failed in the previous nightly
FLAKY = "flaky"  # failed, then passed on the retry
CAUGHT = "caught"  # a canary caught as expected: detection works
IN_TREE = "in-tree"  # a canary whose bug is already in the tree, and another scenario saw it
SKIPPED = "skipped"  # the scenario does not apply to this target/kernel
HARNESS = "harness-failure"  # canary missed, infrastructure error: the night cannot be trusted
STALE = "stale"  # no variant of the scenario applies exactly: it needs a port to this kernel
KNOWN_ISSUE = "known-issue"  # passed but for a listed known issue (configs/known-issues.yaml)
KNOWN_GONE = "known-gone"  # ("fixed?") a known issue that reproduced here before did not tonight

STATUSES = (
    NEW,
    KNOWN,
    HARNESS,
    STALE,
    FLAKY,
    FIXED,
    KNOWN_GONE,
    KNOWN_ISSUE,
    PASS,
    CAUGHT,
    IN_TREE,
    SKIPPED,
)
FAILING = (NEW, KNOWN)  # the kernel fails this cell


@dataclass(frozen=True)
class Cell:
    """One target x scenario of the matrix."""

    target: str
    scenario: str
    canary: bool = False
    patches: bool = False  # the scenario patches the source tree: its run needs the tree alone

    @property
    def key(self) -> str:
        return f"{self.target}/{self.scenario}"

    @property
    def slug(self) -> str:
        return f"{self.target}--{self.scenario}"


@dataclass
class Attempt:
    """One `harness run` of a cell, as read back from its results folder."""

    verdict: str  # the run's verdict (pass, fail, build-error, canary-missed, ...)
    exit_code: int
    summary: str
    details: list[str] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)  # reports.json entries
    results_dir: Path | None = None
    canary: dict[str, Any] | None = None
    commit: str | None = None
    build_seconds: float = 0.0
    boot_seconds: float = 0.0
    started: str = ""
    seconds: float = 0.0  # wall time of the whole run
    run_id: str = ""
    known: list[dict[str, str]] = field(default_factory=list)  # known issues it showed
    variant: str = ""  # the scenario variant the run used
    cause: str = ""  # for a patch error: already applied, or does not apply
    # the kernel's own tests it ran (tests.json "units": path, status, reason, reports)
    tests: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""  # where it booted: "here", "ssh HOST", "lava job N on WORKER"

    @property
    def counted(self) -> list[dict[str, Any]]:
        """The reports that are not known issues."""
        return [r for r in self.reports if not r.get("known_issue")]

    @property
    def titles(self) -> list[str]:
        return [r.get("title", "") for r in self.counted]

    @property
    def title(self) -> str:
        """The report title, or a stand-in for failures without a crash report."""
        if self.counted:
            return self.counted[0].get("title", "")
        if self.verdict == Kind.BUILD_ERROR:
            return "build error"
        if self.verdict == Kind.FAIL:
            return self.summary  # a workload that failed without an oops
        return ""


@dataclass
class Classified:
    """A cell's result tonight and why it got its status."""

    cell: Cell
    status: str
    title: str = ""
    titles: list[str] = field(default_factory=list)
    reason: str = ""
    since: str = ""  # the ref of the nightly where a failure was first seen
    attempts: list[Attempt] = field(default_factory=list)
    previous: Previous | None = None
    bisection: Bisection | None = None
    shown: int = -1  # which attempt the reports show (the failing one of a flaky cell)
    tests: list[TestOutcome] = field(default_factory=list)  # per kernel test, when it ran any

    @property
    def final(self) -> Attempt | None:
        return self.attempts[self.shown] if self.attempts else None


@dataclass
class TestOutcome:
    """One kernel test (kselftest, KUnit) of a cell tonight, against its previous result.

    status: new, known, fixed, flaky, pass, skipped, or known-issue (a known failure of
    the scenario's list); result: what the test said (pass, fail, error, skip, xfail)."""

    path: str
    status: str
    result: str
    reason: str = ""
    since: str = ""
    reports: list[str] = field(default_factory=list)


@dataclass
class Previous:
    """The most recent informative result of a cell in an earlier nightly."""

    nightly_id: int
    ref: str
    commit: str
    status: str
    title: str
    titles: list[str]
    since: str = ""


@dataclass
class Bisection:
    """What `--bisect-new` found for one new regression."""

    good_ref: str
    good: str
    bad: str
    exit_code: int | None
    culprit: str | None
    summary: str
    folder: Path | None = None


@dataclass
class Nightly:
    """One nightly: which tree and ref, where its reports go, and how it ended."""

    tree: Path
    ref: str
    commit: str
    folder: Path
    stamp: str
    started: dt.datetime
    describe: str = ""
    subject: str = ""
    version: str = ""
    tags: list[str] = field(default_factory=list)
    remote_url: str = ""
    tree_name: str = "next"
    finished: dt.datetime | None = None
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)  # fetch problems and the like
    harness_failures: list[str] = field(default_factory=list)  # outside any cell
    nightly_id: int | None = None
    delivery: dict[str, str] = field(default_factory=dict)  # mail / kcidb: what became of it

    @property
    def name(self) -> str:
        return self.folder.name
