"""Verdicts from console facts and reports: pass needs a positive marker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.config import Expectation, Scenario
from harness.console import BootResult, StepResult
from harness.verdict import decide


def _scenario(canary: bool = False) -> Scenario:
    return Scenario("s", Path("s.yaml"), "", canary, (), (), (), (), "", (), "")


def _boot(ending="poweroff", started=True, done=True, failed=0, steps=()) -> BootResult:
    return BootResult("", ending, 5.0, 0, started, done, failed, list(steps))


def _report(title, frames=("handle_mm_fault",)):
    return SimpleNamespace(
        title=title, frames=[SimpleNamespace(function=f) for f in frames], text=title
    )


EXP = Expectation(title="BUG: X in f", frames_include=("handle_mm_fault",))


def test_pass_needs_done_marker():
    assert decide(_boot(), [], _scenario(), None).verdict == "pass"
    v = decide(_boot(ending="qemu-exit", done=False), [], _scenario(), None)
    assert v.verdict == "infra-error" and v.exit_code == 3
    v = decide(_boot(ending="qemu-exit", started=False, done=False), [], _scenario(), None)
    assert "never reached" in v.summary


def test_report_is_regression_even_if_guest_finished():
    # a WARN does not stop the guest: the console, not the workload, decides
    v = decide(_boot(), [_report("WARNING in __check_safe_pte_update")], _scenario(), None)
    assert v.verdict == "fail" and v.exit_code == 1
    assert "WARNING in __check_safe_pte_update" in v.summary


def test_workload_failure_and_skip():
    steps = [StepResult(1, "a", 0), StepResult(2, "b", 1), StepResult(3, "c", 77)]
    v = decide(_boot(failed=1, steps=steps), [], _scenario(), None)
    assert v.verdict == "fail" and "b (rc 1)" in v.summary
    assert any("does not apply" in d for d in v.details)


def test_timeout():
    v = decide(_boot(ending="timeout-silence", done=False), [], _scenario(), None)
    assert v.verdict == "timeout" and v.exit_code == 3


def test_canary_caught_missed_and_wrong_title():
    s = _scenario(canary=True)
    v = decide(_boot(ending="panic", done=False), [_report("BUG: X in f")], s, EXP)
    assert v.exit_code == 1 and v.canary["caught"] and "caught as expected" in v.summary
    v = decide(_boot(), [], s, EXP)
    assert v.verdict == "canary-missed" and v.exit_code == 3 and "HARNESS FAILURE" in v.summary
    v = decide(_boot(ending="panic"), [_report("BUG: X in g")], s, EXP)
    assert v.exit_code == 3 and "BUG: X in g" in v.summary
    # right title but the call trace lacks the expected frame
    v = decide(_boot(ending="panic"), [_report("BUG: X in f", frames=("other",))], s, EXP)
    assert v.exit_code == 3


def test_canary_title_regex():
    s = _scenario(canary=True)
    exp = Expectation(title_regex=r"^WARNING in (pageattr_pmd_entry|update_range_prot)$")
    v = decide(_boot(), [_report("WARNING in update_range_prot", frames=())], s, exp)
    assert v.exit_code == 1


BBM = (r"CPU features: detected: BBM Level [23]",)


def test_feature_asked_for_but_missing_is_infra_not_pass():
    boot = _boot()
    v = decide(boot, [], _scenario(), None, BBM)
    assert v.verdict == "infra-error" and v.exit_code == 3 and "BBM Level" in v.summary
    boot.console = "[    0.19] CPU features: detected: BBM Level 3\n"
    assert decide(boot, [], _scenario(), None, BBM).verdict == "pass"


def test_feature_missing_canary_is_infra_but_a_caught_canary_stands():
    s = _scenario(canary=True)
    v = decide(_boot(), [], s, EXP, BBM)
    assert v.verdict == "infra-error" and "BBM Level" in v.summary
    v = decide(_boot(ending="panic", done=False), [_report("BUG: X in f")], s, EXP, BBM)
    assert v.verdict == "fail" and v.canary["caught"]
    # a real crash on a plain scenario is reported even if the feature line is missing
    v = decide(_boot(), [_report("BUG: Y in g")], _scenario(), None, BBM)
    assert v.verdict == "fail" and "BUG: Y in g" in v.summary
