"""Tonight's cells against the previous nightly: new, known, fixed, flaky; canaries apart.

What a lab reads first is what changed since yesterday, so a failure is only "new" when the
previous informative result of the same cell passed or failed differently. A canary is a
test of the harness: caught is the expected outcome, missed is a harness failure, which is
kept out of the kernel's regressions and decides the exit code on its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.config import Expectation
from harness.errors import EXIT_INFRA, EXIT_PASS, EXIT_REGRESSION, EXIT_STALE
from harness.nightly.model import (
    CAUGHT,
    FAILING,
    FIXED,
    FLAKY,
    HARNESS,
    IN_TREE,
    KNOWN,
    KNOWN_GONE,
    KNOWN_ISSUE,
    NEW,
    PASS,
    SKIPPED,
    STALE,
    Attempt,
    Cell,
    Classified,
    Previous,
)
from harness.oops.model import Report
from harness.patches import ALREADY_APPLIED
from harness.verdict import Kind, expectation_matches


def outcome(cell: Cell, attempts: list[Attempt]) -> tuple[str, int, str]:
    """What the attempts at one cell amount to: (kind, attempt to show, why).

    Kinds: pass, fail, flaky, caught, in-tree, skipped, harness.
    """
    if not attempts:
        return "harness", -1, "the cell was not run"
    if attempts[-1].verdict == Kind.STALE:  # the tree moved under its patches: needs a port
        return "stale", len(attempts) - 1, attempts[-1].summary
    if cell.canary:
        return _canary_outcome(attempts)
    last = attempts[-1]
    failing = [i for i, a in enumerate(attempts) if a.verdict in (Kind.FAIL, Kind.BUILD_ERROR)]
    if failing:
        first = failing[0]
        if attempts[first].verdict == Kind.BUILD_ERROR:
            return "fail", first, attempts[first].summary
        if len(failing) >= 2:
            return "fail", first, "reproduced on the retry"
        if last.verdict == Kind.PASS:
            return "flaky", first, "failed, then passed on the retry"
        if last is attempts[first]:
            return "fail", first, "not retried"
        return "fail", first, f"the retry could not tell: {last.verdict}: {last.summary}"
    if last.verdict == Kind.PASS:
        why = "passed on the retry after: " + attempts[0].summary if len(attempts) > 1 else ""
        if last.known:
            return "known-issue", len(attempts) - 1, _join(last.summary, why)
        return "pass", len(attempts) - 1, why
    if last.verdict == Kind.NOT_APPLICABLE:
        return "skipped", len(attempts) - 1, last.summary
    return "harness", len(attempts) - 1, f"{last.verdict}: {last.summary}"


def _canary_outcome(attempts: list[Attempt]) -> tuple[str, int, str]:
    for i, a in enumerate(attempts):
        if a.verdict == Kind.FAIL and (a.canary or {}).get("caught"):
            if i == 0:
                return "caught", i, ""
            return (
                "caught",
                i,
                "missed on the first attempt (flaky detection): " + (attempts[0].summary),
            )
    last = attempts[-1]
    if last.verdict == Kind.PATCH_ERROR and last.cause == ALREADY_APPLIED:
        return "in-tree", len(attempts) - 1, "the canary's patch is already in the tree"
    if last.verdict == Kind.NOT_APPLICABLE:
        return "skipped", len(attempts) - 1, last.summary
    return "harness", len(attempts) - 1, f"{last.verdict}: {last.summary}"


def classify(
    cell: Cell, attempts: list[Attempt], previous: Previous | None, ref: str
) -> Classified:
    """One cell's status tonight, given its previous informative result."""
    kind, shown, why = outcome(cell, attempts)
    a = attempts[shown] if attempts else None
    titles = a.titles if a else []
    title = a.title if a and kind in ("fail", "flaky", "caught", "harness") else ""
    c = Classified(cell, PASS, title, titles, why, "", attempts, previous, shown=shown)
    if kind == "fail":
        seen = set(previous.titles) | {previous.title} if previous else set()
        if previous is None:
            c.status, c.since = NEW, ref
            c.reason = _join("no earlier nightly has a result for this cell", why)
        elif previous.status in (*FAILING, FLAKY) and title in seen:
            c.status, c.since = KNOWN, previous.since or previous.ref
            c.reason = _join(f"failing since {c.since}", why)
        elif previous.status in FAILING:
            c.status, c.since = NEW, ref
            c.reason = _join(f"failed differently on {previous.ref}: {previous.title}", why)
        else:
            c.status, c.since = NEW, ref
            was = "passed" if previous.status in (PASS, FIXED) else f"was {previous.status}"
            c.reason = _join(f"{was} on {previous.ref}", why)
    elif kind == "pass":
        if previous is not None and previous.status in FAILING:
            c.status = FIXED
            c.reason = _join(f"failed on {previous.ref}: {previous.title}", why)
        elif previous is not None and previous.status == KNOWN_ISSUE:
            c.status = KNOWN_GONE
            c.reason = _join(
                f"{previous.title} reproduced here on {previous.ref} and not tonight: fixed? "
                "(check before taking it off the known-issues list)",
                why,
            )
    elif kind == "known-issue":
        a = attempts[shown]
        c.status = KNOWN_ISSUE
        c.title = "known issue " + ", ".join(k["id"] for k in a.known)
        c.titles = [k["title"] for k in a.known]
        c.reason = "; ".join(
            f"{k['id']}: {k['title']}" + (f" ({k['link']})" if k.get("link") else "")
            for k in a.known
        )
    else:
        c.status = {
            "flaky": FLAKY,
            "caught": CAUGHT,
            "in-tree": IN_TREE,
            "skipped": SKIPPED,
            "harness": HARNESS,
            "stale": STALE,
        }[kind]
    return c


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _light(report: dict[str, Any]) -> Report:
    return Report.from_dict(report)


def _witness(c: Classified, cells: list[Classified], expects: list[Expectation]):
    """Another (non-canary) cell of c's target whose reports include what c expects."""
    for other in cells:
        a = other.final
        if other.cell.target != c.cell.target or other.cell.canary or a is None:
            continue
        if any(expectation_matches(e, _light(r)) for e in expects for r in a.counted):
            return other
    return None


def settle_in_tree(cells: list[Classified], expect: dict[str, list[Expectation]]) -> None:
    """A canary whose bug is already in the tree proves nothing by itself.

    It counts as good only when another scenario on the same target reported what the
    canary expects (detection demonstrably works); otherwise it is a harness failure.
    """
    for c in cells:
        if c.status != IN_TREE:
            continue
        expects = expect.get(c.cell.scenario) or []
        witness = _witness(c, cells, expects)
        if witness is not None:
            c.title = witness.title
            c.reason = (
                f"its patch is already in the tree, and {witness.cell.scenario} reports its bug"
            )
        else:
            wanted = " or ".join(e.describe() for e in expects) or "its expected report"
            c.status = HARNESS
            c.reason = (
                f"the canary's patch is already in the tree and no other scenario on "
                f"{c.cell.target} reported {wanted}: detection is unproven"
            )


def counts(cells: list[Classified]) -> Counter:
    return Counter(c.status for c in cells)


def exit_code(cells: list[Classified], harness_failures: list[str] | None = None) -> int:
    """1 for a new regression, whatever else went wrong (a finding is never buried under
    infrastructure noise; the reports list both); else 3 if the harness failed anywhere (a
    night it cannot vouch for); else 5 if a canary needs a port; else 0."""
    if any(c.status == NEW for c in cells):
        return EXIT_REGRESSION
    if harness_failures or any(c.status == HARNESS for c in cells):
        return EXIT_INFRA
    if any(c.status == STALE for c in cells):
        return EXIT_STALE
    return EXIT_PASS


def settle_stale(cells: list[Classified], expect: dict[str, list[Expectation]]) -> None:
    """A stale canary whose bug another scenario reported anyway says so: the bug it
    models has likely arrived in another form, which that scenario's report shows."""
    for c in cells:
        if c.status != STALE or not c.cell.canary:
            continue
        other = _witness(c, cells, expect.get(c.cell.scenario) or [])
        if other is not None and other.final is not None:
            c.reason = _join(
                c.reason.splitlines()[0] if c.reason else "",
                f"{other.cell.scenario} reports exactly its expected title "
                f"({other.final.title}): the bug it models is likely in the tree, in another "
                "form",
            )
