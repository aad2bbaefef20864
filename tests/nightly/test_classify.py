"""Classification of a cell's attempts against the previous nightly, and the exit code."""

from __future__ import annotations

from nightly_fakes import BOOT, BUG, CANARY, attempt, caught

from harness.config import Expectation
from harness.nightly.classify import classify, exit_code, outcome, settle_in_tree
from harness.nightly.model import (
    CAUGHT,
    FIXED,
    FLAKY,
    HARNESS,
    IN_TREE,
    KNOWN,
    NEW,
    PASS,
    SKIPPED,
    Cell,
    Previous,
)

WARN = "WARNING in move_page_tables"


def prev(status: str, title: str = "", ref: str = "next-20260301", since: str = "") -> Previous:
    return Previous(1, ref, "a" * 40, status, title, [title] if title else [], since)


def test_outcome_kinds():
    assert outcome(BOOT, [attempt("pass")])[0] == "pass"
    assert outcome(BOOT, [attempt("fail", BUG), attempt("fail", BUG)]) == (
        "fail",
        0,
        "reproduced on the retry",
    )
    assert outcome(BOOT, [attempt("fail", BUG), attempt("pass")])[:2] == ("flaky", 0)
    assert outcome(BOOT, [attempt("fail", BUG)])[2] == "not retried"
    kind, _, why = outcome(BOOT, [attempt("fail", BUG), attempt("timeout")])
    assert kind == "fail" and "could not tell: timeout" in why
    assert outcome(BOOT, [attempt("build-error", summary="kernel build failed")])[0] == "fail"
    kind, shown, why = outcome(BOOT, [attempt("infra-error"), attempt("pass")])
    assert (kind, shown) == ("pass", 1) and "after" in why
    assert outcome(BOOT, [attempt("infra-error"), attempt("timeout")])[0] == "harness"
    assert outcome(BOOT, [attempt("not-applicable")])[0] == "skipped"
    assert outcome(BOOT, [])[0] == "harness"


def test_canary_outcomes():
    assert outcome(CANARY, [caught()])[0] == "caught"
    kind, shown, why = outcome(CANARY, [attempt("canary-missed"), caught()])
    assert (kind, shown) == ("caught", 1) and "flaky detection" in why
    assert outcome(CANARY, [attempt("canary-missed"), attempt("canary-missed")])[0] == "harness"
    in_tree = attempt(
        "patch-error",
        cause="already applied",
        summary="patch p is already applied in t (its reverse applies)",
        details=[],
    )
    assert outcome(CANARY, [in_tree])[0] == "in-tree"
    assert outcome(CANARY, [attempt("config-error", summary="hunk FAILED")])[0] == "harness"
    assert outcome(CANARY, [attempt("build-error")])[0] == "harness"


def test_new_known_fixed():
    failing = [attempt("fail", BUG), attempt("fail", BUG)]
    c = classify(BOOT, failing, None, "next-20260302")
    assert c.status == NEW and c.since == "next-20260302" and c.title == BUG
    assert "no earlier nightly" in c.reason
    c = classify(BOOT, failing, prev(PASS), "next-20260302")
    assert c.status == NEW and "passed on next-20260301" in c.reason
    c = classify(BOOT, failing, prev(NEW, BUG, since="next-20260302"), "next-20260303")
    assert c.status == KNOWN and c.since == "next-20260302"
    c = classify(
        BOOT, failing, prev(KNOWN, BUG, ref="next-20260303", since="next-20260302"), "next-20260304"
    )
    assert c.status == KNOWN and c.since == "next-20260302"
    c = classify(BOOT, failing, prev(FLAKY, BUG), "next-20260302")
    assert c.status == KNOWN
    c = classify(BOOT, [attempt("fail", WARN)] * 2, prev(NEW, BUG), "next-20260303")
    assert c.status == NEW and "failed differently" in c.reason and c.title == WARN
    c = classify(BOOT, [attempt("pass")], prev(NEW, BUG, ref="next-20260302"), "next-20260303")
    assert c.status == FIXED and BUG in c.reason and "next-20260302" in c.reason
    assert classify(BOOT, [attempt("pass")], prev(PASS), "x").status == PASS
    assert classify(BOOT, [attempt("pass")], None, "x").status == PASS
    c = classify(BOOT, [attempt("fail", BUG), attempt("pass")], prev(PASS), "x")
    assert c.status == FLAKY and c.final.verdict == "fail"


def test_build_error_is_a_regression_with_a_title():
    c = classify(BOOT, [attempt("build-error", summary="kernel build failed")], prev(PASS), "x")
    assert c.status == NEW and c.title == "build error"
    c = classify(BOOT, [attempt("build-error")], prev(NEW, "build error"), "y")
    assert c.status == KNOWN


def test_canary_statuses_and_exit_codes():
    ok = classify(CANARY, [caught()], None, "x")
    assert ok.status == CAUGHT and ok.title == BUG
    missed = classify(CANARY, [attempt("canary-missed"), attempt("canary-missed")], None, "x")
    assert missed.status == HARNESS
    boot_pass = classify(BOOT, [attempt("pass")], None, "x")
    new = classify(BOOT, [attempt("fail", BUG)] * 2, None, "x")
    flaky = classify(BOOT, [attempt("fail", BUG), attempt("pass")], None, "x")
    skipped = classify(Cell("t", "thp"), [attempt("not-applicable")], None, "x")
    assert skipped.status == SKIPPED
    assert exit_code([boot_pass, ok, skipped, flaky]) == 0
    assert exit_code([new, ok]) == 1
    assert exit_code([boot_pass, missed]) == 3
    assert exit_code([new, missed]) == 1  # a finding is never buried under a harness failure
    assert exit_code([boot_pass, ok], ["git fetch linux-next failed"]) == 3


def test_canary_in_tree_needs_a_witness():
    exp = Expectation(title=BUG, frames_include=("handle_mm_fault",))
    in_tree = attempt(
        "patch-error",
        cause="already applied",
        summary="patch is already applied in t (its reverse applies)",
        details=[],
    )
    boot = classify(BOOT, [attempt("fail", BUG)] * 2, None, "x")
    canary = classify(CANARY, [in_tree], None, "x")
    assert canary.status == IN_TREE
    settle_in_tree([boot, canary], {CANARY.scenario: [exp]})
    assert canary.status == IN_TREE and "boot reports its bug" in canary.reason
    assert canary.title == BUG
    # no other scenario saw the expected report: detection is unproven
    canary = classify(CANARY, [in_tree], None, "x")
    quiet = classify(BOOT, [attempt("pass")], None, "x")
    settle_in_tree([quiet, canary], {CANARY.scenario: [exp]})
    assert canary.status == HARNESS and "unproven" in canary.reason
    # a witness on another target does not count
    canary = classify(CANARY, [in_tree], None, "x")
    other = classify(Cell("arm32-highmem-lpae-ci", "boot"), [attempt("fail", BUG)] * 2, None, "x")
    settle_in_tree([other, canary], {CANARY.scenario: [exp]})
    assert canary.status == HARNESS


def test_stale_canary_is_its_own_status_and_never_buries_a_finding():
    from harness.nightly.classify import settle_stale
    from harness.nightly.model import STALE

    stale = attempt("stale", summary="canary stale: c needs a port to 7.5 (kernel 7.5.0-rc1)")
    canary = classify(CANARY, [stale], prev(CAUGHT), "next-20261202")
    assert canary.status == STALE and "needs a port to 7.5" in canary.reason
    boot = classify(BOOT, [attempt("fail", BUG), attempt("fail", BUG)], prev(PASS), "n")
    assert exit_code([boot, canary]) == 1  # the regression is the night's news
    assert exit_code([classify(BOOT, [attempt("pass")], None, "n"), canary]) == 5
    settle_stale([boot, canary], {CANARY.scenario: [Expectation(title=BUG)]})
    assert canary.status == STALE and "boot reports exactly its expected title" in canary.reason


def test_known_issue_passes_and_its_absence_is_flagged():
    from harness.nightly.model import KNOWN_GONE, KNOWN_ISSUE

    warn = attempt("pass", summary="pass, with known issue arm64-racy-af: W")
    warn.reports = [{"title": "WARNING in x", "known_issue": "arm64-racy-af"}]
    warn.known = [{"id": "arm64-racy-af", "title": "WARNING in x", "link": "docs/k.md"}]
    assert warn.titles == [] and warn.title == ""
    c = classify(BOOT, [warn], prev(PASS), "n2")
    assert c.status == KNOWN_ISSUE and c.title == "known issue arm64-racy-af"
    assert "docs/k.md" in c.reason and exit_code([c]) == 0
    gone = classify(BOOT, [attempt("pass")], prev(KNOWN_ISSUE, c.title), "n3")
    assert gone.status == KNOWN_GONE and "fixed?" in gone.reason
