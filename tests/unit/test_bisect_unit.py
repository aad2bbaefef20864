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


def test_runs_for_a_flaky_bug():
    from harness.bisect import bisection_confidence, runs_for

    assert runs_for(1.0, 0.95, 4) == 1  # seen every time: deterministic
    assert runs_for(1.0, 0.95, 4, floor=3) == 3
    n = runs_for(0.5, 0.95, 4)
    assert 0.5**n <= 0.05 / 4 < 0.5 ** (n - 1)
    assert runs_for(0.05, 0.99, 10, cap=20) == 20  # capped
    assert bisection_confidence(1.0, [1, 1]) == 1.0
    assert abs(bisection_confidence(0.5, [7, 7]) - (1 - 2 * 0.5**7)) < 1e-9


def test_trace_check_names_a_culprit_far_from_the_crash(tmp_path):
    import subprocess

    from harness.bisect import trace_check

    repo = tmp_path / "r"
    (repo / "mm").mkdir(parents=True)
    (repo / "mm" / "mremap.c").write_text("int move_page_tables(void)\n{\n\treturn 0;\n}\n")
    (repo / "fs").mkdir()
    (repo / "fs" / "exec.c").write_text("int x;\n")
    g = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*g, "init", "-q"], check=True)
    subprocess.run([*g, "add", "-A"], check=True)
    subprocess.run([*g, "commit", "-qm", "base"], check=True)
    (repo / "fs" / "exec.c").write_text("int x;\nint y;\n")
    subprocess.run([*g, "commit", "-qam", "far"], check=True)
    far = subprocess.run([*g, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "frames": [
            {"function": "move_page_tables", "file": "../../../src/debian-6.12/mm/mremap.c"},
            {"function": "setup_arg_pages.isra.0", "file": None},
        ]
    }
    warning = trace_check(repo, far, report)
    assert warning.startswith("culprit touches nothing in the trace: verify")
    assert "fs/exec.c" in warning and "move_page_tables" in warning
    (repo / "mm" / "mremap.c").write_text("int move_page_tables(void)\n{\n\treturn 1;\n}\n")
    subprocess.run([*g, "commit", "-qam", "near"], check=True)
    near = subprocess.run([*g, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert trace_check(repo, near, report) == ""


def test_bisect_reset_ends_a_bisection_left_in_a_worktree(tmp_path):
    """A bisection left in the harness worktree made the next one search the old range:
    `git bisect start` went back to the old starting commit first."""
    import subprocess

    from harness.bisect import bisect_reset

    repo, wt = tmp_path / "repo", tmp_path / "wt"

    def git(where, *args):
        return subprocess.run(
            ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    repo.mkdir()
    git(repo, "init", "-q")
    for name in ("A", "B", "C", "D"):
        git(repo, "commit", "-q", "--allow-empty", "-m", name)
        git(repo, "tag", name)
    git(repo, "worktree", "add", "-q", "--detach", str(wt), "D")
    git(wt, "bisect", "start", "D", "A")
    assert (Path(git(wt, "rev-parse", "--absolute-git-dir")) / "BISECT_START").exists()
    bisect_reset(wt)
    assert not (Path(git(wt, "rev-parse", "--absolute-git-dir")) / "BISECT_START").exists()
    assert git(wt, "rev-parse", "HEAD") == git(repo, "rev-parse", "D")
    bisect_reset(wt)  # nothing to end: fine
