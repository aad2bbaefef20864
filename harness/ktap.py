"""KTAP / TAP 13 from a console: kselftest and KUnit results, per test, nested.

One reader for both producers. KUnit prints KTAP through printk (each line behind a
`[   1.234567]` timestamp, subtests indented by four spaces); kselftest's runners print TAP
13 from user space on the console, a nested test's whole output behind a "# " prefix. On a
console the two interleave with kernel messages, so each document keeps to the lines of
its own source: a user-space document ignores timestamped lines (kernel noise), a KUnit
document reads only them.

What the console does not say is said here rather than guessed: a test the plan counts
that never printed a result is an ERROR ("no result: the output ended"), and a test
whose output was cut by a crash is the one the crash is attributed to (attribute()).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

LOG_LINES = 200  # lines kept per test (the console has them all)

TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])?\s?")
VERSION = re.compile(r"^(?:KTAP version \d+|TAP version \d+)\s*$")
PLAN = re.compile(r"^1\.\.(\d+)\b")
RESULT = re.compile(r"^(ok|not ok)\b(?:\s+(\d+)\b)?\s*(?:-\s*)?(.*?)\s*$")
MAX_MISSING = 10000  # tests a plan may promise that never reported (a stray "1..N" is not a plan)
SUBTEST = re.compile(r"^# Subtest: (.*?)\s*$")
BAIL = re.compile(r"^Bail out!\s*(.*?)\s*$")
NESTING = ("    ", "# ")
# how kselftest's runners announce the test whose output follows (run_vmtests.sh's
# "running ./khugepaged", runner.sh's "selftests: mm: khugepaged"): the name of a test
# that never printed its result line
RUNNING = re.compile(r"^#?\s*(?:running|selftests: [^:\s]+:)\s+(?:bash\s+)?(?:\./)?(\S.*?)\s*$")


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    XFAIL = "xfail"  # a known failure (TODO / XFAIL directive, or the scenario's list)
    ERROR = "error"  # no result: the output ended, or the test crashed the kernel


@dataclass
class TestResult:
    name: str
    status: Status
    path: str = ""  # dotted: "kselftest.mm.khugepaged.collapse_full"
    number: int | None = None
    reason: str = ""  # the directive (SKIP reason, exit=N) or why the harness decided
    start: int = 0  # console offsets of the test's output, its result line included
    end: int = 0
    log: list[str] = field(default_factory=list)
    subtests: list[TestResult] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)  # indexes into the run's reports
    bug: bool = False  # the kernel reported a bug (not a known issue) while it ran
    doc: int = 0  # which document of the console (top-level tests)
    kernel: bool = False  # printed by the kernel (KUnit) rather than user space

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "path": self.path, "status": str(self.status)}
        if self.number is not None:
            d["number"] = self.number
        if self.reason:
            d["reason"] = self.reason
        if self.reports:
            d["reports"] = self.reports
        if self.subtests:
            d["subtests"] = [t.to_dict() for t in self.subtests]
        return d


@dataclass
class _Doc:
    prefix: str
    kernel: bool  # a printk document (KUnit) or a user-space one
    name: str = ""
    plan: int | None = None
    tests: list[TestResult] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    start: int = 0  # where the pending test's output began
    child: _Doc | None = None  # the last nested document, waiting for its result line
    bailed: str = ""  # "Bail out!" and why: the tests it did not run will not come
    versioned: bool = False  # it began with a version line, not a bare "1..N"


def _directive(text: str) -> tuple[str, str, str]:
    """'name # SKIP why' -> (name, directive word upper-cased, reason)."""
    name, sep, rest = text.partition(" # ")
    if not sep and text.startswith("# "):
        name, rest = "", text[2:]
    if not sep and not rest:
        return text.strip(), "", ""
    word, _, why = rest.strip().partition(" ")
    return name.strip(), word.upper(), rest.strip() if "=" in word else why.strip()


def _status(ok: bool, directive: str) -> Status:
    if directive.startswith("EXIT=") and directive != "EXIT=0":
        return Status.FAIL  # "ok ... # exit=1": a "not " lost on the way, the exit code says
    if directive == "SKIP":
        return Status.SKIP
    if directive in ("TODO", "XFAIL"):
        return Status.XFAIL
    if directive in ("TIMEOUT", "ERROR"):
        return Status.ERROR if not ok else Status.PASS
    return Status.PASS if ok else Status.FAIL


def _lines(text: str, user_from: int | None) -> Iterator[tuple[int, int, bool, str]]:
    """(start, end, printed by the kernel, content without timestamp or CR) per line. A
    line is the kernel's when it has a printk timestamp, or comes before user_from (where
    user space began: nothing else prints before init)."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, pos = pos, pos + len(raw)
        line = raw.rstrip("\r\n").replace("\r", "")
        m = TIMESTAMP.match(line)
        kernel = m is not None or (user_from is not None and start < user_from)
        yield start, pos, kernel, line[m.end() :] if m else line


def _opens(rest: str) -> bool:
    """A nested document begins with its version, its name (older KUnit) or its plan
    (mremap_test prints no version line)."""
    return bool(VERSION.match(rest) or SUBTEST.match(rest) or PLAN.match(rest))


def parse(text: str, user_from: int | None = None) -> list[TestResult]:
    """Every top-level test of every KTAP/TAP document in text, in console order.
    user_from: the console offset where user space began (the harness's START marker),
    so a kernel without printk timestamps still has its KUnit output told apart."""
    out: list[TestResult] = []
    stack: list[_Doc] = []
    end = docs = 0

    def close_to(depth: int, at: int) -> None:
        """Close the documents deeper than depth (their tests ended without a result)."""
        while len(stack) > depth + 1:
            doc = stack.pop()
            _finish(doc, at)
            stack[-1].child = doc

    for start, end, kernel, line in _lines(text, user_from):
        top = VERSION.match(line) is not None  # unindented: a document of its own
        if not stack or (top and (kernel != stack[0].kernel or stack[0].tests)):
            if not top:
                continue
            if stack:  # a new top-level document: the last one is over
                close_to(0, start)
                _finish(stack[0], start)
                out += _mark(stack[0], docs)
                docs += 1
            stack = [_Doc("", kernel, start=end)]
            continue
        if kernel != stack[0].kernel:
            doc = stack[-1]  # the other source: kept as log of the running test
            if len(doc.log) < LOG_LINES:
                doc.log.append(line)
            continue
        depth = max(i for i, d in enumerate(stack) if line.startswith(d.prefix))
        doc = stack[depth]
        rest = line[len(doc.prefix) :]
        m = RESULT.match(rest)
        if m:
            close_to(depth, start)
            name, directive, reason = _directive(m.group(3))
            child, doc.child = doc.child, None
            number = int(m.group(2)) if m.group(2) else len(doc.tests) + 1
            test = TestResult(
                name=name or (child.name if child else "") or f"test {number}",
                status=_status(m.group(1) == "ok", directive),
                number=number,
                reason=reason,
                start=doc.start,
                end=end,
                # the parent's own lines, then what its nested output said after its
                # last subtest (kselftest's "Totals", an exit message)
                log=[*doc.log, *(child.log if child else [])][-LOG_LINES:],
                subtests=child.tests if child else [],
            )
            if directive in ("TIMEOUT", "ERROR") and not reason:
                test.reason = directive.lower()
            if test.status == Status.SKIP:
                _not_run(test)
            doc.tests.append(test)
            doc.log, doc.start = [], end
            continue
        if depth == len(stack) - 1:
            nested = next((p for p in NESTING if rest.startswith(p) and _opens(rest[len(p) :])),
                          None)  # fmt: skip
            if nested is not None:
                sub = _Doc(doc.prefix + nested, kernel, start=start)
                stack.append(sub)
                _header(sub, rest[len(nested) :])
                continue
        if _header(doc, rest):
            continue
        if len(doc.log) < LOG_LINES:
            doc.log.append(rest)
    if stack:
        close_to(0, end)
        _finish(stack[0], end)
        out += _mark(stack[0], docs)
    return out


def _not_run(test: TestResult) -> None:
    """A test that skipped as a whole (kselftest's ksft_exit_skip() after its plan: "1..9",
    "ok 2 # SKIP open(...) failed", exit 4) did not run the rest of its plan: they are
    skips, not errors."""
    said = [t.reason for t in test.subtests if t.status == Status.SKIP and t.reason]
    why = said[-1] if said else test.reason or "it exited with the skip code"
    for t in test.subtests:
        if t.status == Status.ERROR and t.reason.startswith("no result"):
            t.status, t.reason = Status.SKIP, f"not run: {test.name} skipped ({why})"[:300]


def _mark(doc: _Doc, index: int) -> list[TestResult]:
    for t in doc.tests:
        t.doc, t.kernel = index, doc.kernel
    return doc.tests


def _header(doc: _Doc, rest: str) -> bool:
    """A version, plan, subtest-name or bail-out line of doc (True), or something else."""
    if VERSION.match(rest):
        doc.versioned = True
        return True
    m = BAIL.match(rest)
    if m:
        doc.bailed = m.group(1).replace("\t", " ") or "no reason given"
        doc.log.append(rest)
        return True
    m = SUBTEST.match(rest)
    if m:
        doc.name = m.group(1)
        return True
    m = PLAN.match(rest)
    if m and doc.plan is None:
        doc.plan = int(m.group(1))
        if rest.strip().endswith("# SKIP") or " # SKIP" in rest:
            doc.plan = 0
        return True
    return False


RUNNER_VERDICT = re.compile(r"^\[(?:PASS|FAIL|SKIP)\]$")  # run_vmtests.sh's own line


def _last_words(log: list[str]) -> str:
    """What a test printed last, not counting the runner's [PASS]/[FAIL] line."""
    for ln in reversed(log):
        text = ln.lstrip("# ").strip()
        if text and not RUNNER_VERDICT.match(text):
            return text
    return ""


def _finish(doc: _Doc, at: int) -> None:
    """The end of a document: the test that was running, and the ones the plan promised
    but never reported, have no result."""
    if doc.child is not None:  # a nested document whose parent never printed a result
        child, doc.child = doc.child, None
        announced = [m.group(1) for m in map(RUNNING.match, doc.log) if m]
        doc.tests.append(
            TestResult(
                child.name or (announced[-1] if announced else f"test {len(doc.tests) + 1}"),
                Status.ERROR,
                number=len(doc.tests) + 1,
                reason="no result: the output ended",
                start=doc.start,
                end=at,
                log=doc.log[-LOG_LINES:],
                subtests=child.tests,
            )
        )
        doc.log = []
    else:
        announced = [m.group(1) for m in map(RUNNING.match, doc.log) if m]
        if announced:  # a test without TAP of its own was running when the output ended
            doc.tests.append(
                TestResult(
                    announced[-1],
                    Status.ERROR,
                    number=len(doc.tests) + 1,
                    reason=f"no result: the output ended after: {_last_words(doc.log)[:200]}",
                    start=doc.start,
                    end=at,
                    log=doc.log[-LOG_LINES:],
                )  # fmt: skip
            )
            doc.log = []
    seen = {t.number for t in doc.tests}
    # a plan is believed from a real document: one with a version line or a result (a
    # stray "1..2000000" in a test's output promises nothing)
    believed = doc.versioned or bool(doc.tests)
    plan = min(doc.plan or 0, MAX_MISSING) if believed else 0
    missing = [n for n in range(1, plan + 1) if n not in seen]
    last = _last_words(doc.log)

    why = (f"no result: bailed out: {doc.bailed}" if doc.bailed
           else f"no result: the output ended after: {last[:200]}" if last
           else "no result: the output ended")  # fmt: skip
    for i, n in enumerate(missing):  # the first was running: the output since is its
        doc.tests.append(
            TestResult(
                f"test {n}",
                Status.ERROR,
                number=n,
                reason=why,
                start=doc.start if i == 0 else at,
                end=at,
                log=doc.log[-LOG_LINES:] if i == 0 else [],
            )  # fmt: skip
        )
    if missing:  # the first missing test took the log; else it stays the parent's
        doc.log = []


def name_slug(name: str) -> str:
    """A test name as one dotted-path component ("./uffd-stress anon 20" -> uffd-stress_anon_20)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name.removeprefix("./")).strip("_")
    return slug or "unnamed"


def assign_paths(tests: list[TestResult], root: str) -> None:
    """Dotted paths under root, unique among siblings (a second 'khugepaged' is
    'khugepaged_2'); components are KCIDB's ([A-Za-z0-9_-]+)."""
    seen: dict[str, int] = {}
    for t in tests:
        slug = name_slug(t.name)
        seen[slug] = seen.get(slug, 0) + 1
        if seen[slug] > 1:
            slug += f"_{seen[slug]}"
        t.path = f"{root}.{slug}" if root else slug
        assign_paths(t.subtests, t.path)


def walk(tests: list[TestResult]) -> Iterator[TestResult]:
    for t in tests:
        yield t
        yield from walk(t.subtests)


def leaves(tests: list[TestResult]) -> Iterator[TestResult]:
    """The tests that have no subtests: what per-test results and counts are made of."""
    for t in walk(tests):
        if not t.subtests:
            yield t


def units(tests: list[TestResult]) -> Iterator[TestResult]:
    """What results are counted over: the leaves, and a test that failed although none
    of its subtests did (it exited non-zero after them, or the plan was not met)."""
    bad = (Status.FAIL, Status.ERROR)
    for t in walk(tests):
        if not t.subtests or (
            t.status in bad and not any(x.status in bad for x in leaves(t.subtests))
        ):
            yield t


def counts(tests: list[TestResult]) -> dict[str, int]:
    out = {str(s): 0 for s in Status}
    for t in units(tests):
        out[str(t.status)] += 1
    return out


def attribute(tests: list[TestResult], hits: list[tuple[int, int, str, bool]]) -> None:
    """A crash report inside a test's output is that test's: a test that passed (or had
    no result) while the kernel reported a bug fails, with the report named. hits: (console
    offset, report index, title, a known issue) for each report and each of its repeats.
    A known issue is recorded on the test but does not fail it."""
    for at, i, title, known_issue in hits:
        inner = None
        for t in walk(tests):
            if t.start <= at < t.end:
                inner = t  # walk is parents first: the last hit is the innermost
        if inner is None:
            continue
        if i not in inner.reports:
            inner.reports.append(i)
        if known_issue:
            continue
        inner.bug = True
        if inner.status in (Status.PASS, Status.SKIP, Status.XFAIL):
            was = str(inner.status)
            inner.status = Status.FAIL
            inner.reason = f"{was}, but the kernel reported: {title}"
        elif title not in inner.reason:  # failed or crashed anyway: the report is part of why
            inner.reason = f"{inner.reason}; the kernel reported: {title}".lstrip("; ")
        for parent in walk(tests):  # the failure shows on the way up
            if inner in list(walk(parent.subtests)) and parent.status == Status.PASS:
                parent.status = Status.FAIL
                parent.reason = f"subtest {inner.name} failed"


def name_all(tests: list[TestResult], suites: tuple[str, ...]) -> None:
    """Dotted paths: KUnit's as kunit.<suite>.<test>, the n-th user-space document's as
    kselftest.<the n-th suite the scenario runs>.<test>..."""
    user_docs = sorted({t.doc for t in tests if not t.kernel})
    groups: dict[str, list[TestResult]] = {}
    for t in tests:
        if t.kernel:
            root = "kunit"
        else:
            n = user_docs.index(t.doc)
            root = f"kselftest.{suites[n]}" if n < len(suites) else "ktap"
        groups.setdefault(root, []).append(t)
    for root, group in groups.items():
        assign_paths(group, root)


def apply_known(
    tests: list[TestResult], why: Callable[[str], tuple[Status, str] | None]
) -> list[TestResult]:
    """Failures the scenario knows become what why(path) says, (xfail or skip, reason),
    unless the kernel reported a bug inside them; returns them."""
    out = []
    for t in list(units(tests)):
        if t.status in (Status.FAIL, Status.ERROR) and not t.bug:
            known = why(t.path)
            if known:
                status, reason = known
                t.reason = reason + (f" ({t.reason})" if t.reason else "")
                t.status = status
                out.append(t)
    bad, changed = (Status.FAIL, Status.ERROR), {id(t) for t in out}
    for t in reversed(list(walk(tests))):  # children before parents
        below = list(leaves(t.subtests)) if t.subtests else []
        if (
            t.status in bad
            and "the kernel reported" not in t.reason
            and any(id(x) in changed for x in below)
        ):
            if not any(x.status in bad for x in below):  # it failed for its subtests alone
                mine = [x for x in below if id(x) in changed]
                skipped = all(x.status == Status.SKIP for x in mine)
                t.status = Status.SKIP if skipped else Status.XFAIL
                word = "cannot run here" if skipped else "are known failures"
                t.reason = f"its failing subtests {word}" + (f" ({t.reason})" if t.reason else "")
    return out


def failures(tests: list[TestResult]) -> list[TestResult]:
    return [t for t in units(tests) if t.status in (Status.FAIL, Status.ERROR)]


def summary(tests: list[TestResult]) -> str:
    c = counts(tests)
    ran = sum(c.values())
    return (f"{ran} tests: {c['pass']} passed, {c['fail'] + c['error']} failed, "
            f"{c['skip']} skipped, {c['xfail']} known failures")  # fmt: skip
