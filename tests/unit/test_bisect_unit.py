"""bisect-step's mapping from run outcomes to git bisect exit codes."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from harness.bisect import ABORT, BAD, GOOD, SKIP, StepRecord, _table, classify
from harness.verdict import Verdict


def _outcome(verdict: str, summary: str = "", titles: tuple[str, ...] = ()):
    reps = [SimpleNamespace(title=t) for t in titles]
    return SimpleNamespace(verdict=Verdict(verdict, 0, summary), reports=reps, results_dir=Path())


HUNTED = re.compile(r"^BUG: unable to handle kernel NULL pointer dereference in __pte_offset")


def test_classify():
    assert classify(_outcome("pass"), HUNTED) == (GOOD, "")
    assert classify(_outcome("fail", titles=("BUG: unable to handle kernel NULL pointer "
                                               "dereference in __pte_offset_map_lock",)),
                    HUNTED)[0] == BAD  # fmt: skip
    code, note = classify(_outcome("fail", titles=("WARNING in foo",)), HUNTED)
    assert code == SKIP and "a different failure: WARNING in foo" in note
    code, note = classify(_outcome("build-error", "kernel build failed"), HUNTED)
    assert code == SKIP and note.startswith("build-error")
    assert classify(_outcome("config-error", "patch does not apply"), HUNTED)[0] == SKIP
    assert classify(_outcome("infra-error", "qemu died"), HUNTED)[0] == ABORT
    assert classify(_outcome("timeout", "no output"), HUNTED)[0] == ABORT
    # without --match any failure is the regression
    assert classify(_outcome("fail", "workload failed: x (rc 1)"), None)[0] == BAD


def test_table_lists_times():
    r = StepRecord("a" * 40, "subj", BAD, "fail", "BUG: X", "", 812.4, 1106, 4.4, 1)
    s = StepRecord("b" * 40, "subj", SKIP, "build-error", "", "build-error: failed", 9.0, 3,
                   0.0, 1)  # fmt: skip
    text = _table([r, s])
    assert "aaaaaaaaaaaa  bad" in text and "812s" in text and "1106" in text
    assert "bbbbbbbbbbbb  skip" in text and "build-error: failed" in text
