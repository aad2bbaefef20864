"""Kill `harness series` where it hurts: between two `git am`s, mid-build, mid-bisect.

After each kill nothing of ours is left running, the killed series' folder says
incomplete, your checkout is untouched, and the next series on the same worktree gives the
right answer (the small tree's fake QEMU oopses on a kernel built with the bug).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reltools import REPO, TARGET, Small
from small_linux import bug_patch, second_patch

pytestmark = pytest.mark.reliability

IDENTITY = ["-c", "user.name=Ada Author", "-c", "user.email=ada@example.org"]


@pytest.fixture(scope="module")
def posted(small: Small) -> tuple[Path, Path, str]:
    repo = small.root / "linux-series"
    subprocess.run(["git", "clone", "-q", str(small.repo), str(repo)], check=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *IDENTITY, *args], check=True,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip

    base = git("rev-parse", "HEAD")
    for n, (text, subject) in enumerate(
        [
            (second_patch(small.root / "s1", 5), "mm/f05: say it is patched"),
            (bug_patch(small.root / "s2"), "mm/f00: the bug"),
            (second_patch(small.root / "s3", 7), "mm/f07: say it is patched"),
        ]
    ):
        p = small.root / f"series-{n}.diff"
        p.write_text(text)
        git("apply", str(p))
        git("commit", "-q", "-a", "-m", subject)
    box = small.root / "series.mbox"
    box.write_text(git("format-patch", "--stdout", "--thread", "--cover-letter",
                       f"--base={base}", f"{base}..HEAD") + "\n")  # fmt: skip
    return repo, box, git("rev-parse", "HEAD")


def _argv(repo: Path, box: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "series", str(box), "--kernel", str(repo),
            "--targets", TARGET, "--scenarios", "boot", "--calibrate", "1", "-q"]  # fmt: skip


def _series(small: Small, repo: Path, box: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    results = small.new_results()
    proc = subprocess.Popen(
        _argv(repo, box), cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=small.env(HARNESS_RESULTS=str(results), HARNESS_MAIL_FROM="t <t@example.org>", **env),
    )  # fmt: skip
    return proc, results


def _right(small: Small, repo: Path, box: Path) -> None:
    proc, results = _series(small, repo, box)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, out + err
    assert "first bad patch 2/3" in out, out
    (folder,) = results.glob("series-*")
    data = json.loads((folder / "series.json").read_text())
    assert [c["culprit"] for c in data["cells"]] == ["2/3"]
    assert json.loads((folder / "metadata.json").read_text())["status"] == "complete"


def _wait(proc: subprocess.Popen, results: Path, what: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the series ended before {what}: {proc.communicate()[1][-2000:]}")
        if what == "build" and list(results.glob("series-*/builds/*/*.log")):
            return
        if what == "bisect" and list(results.glob("series-*/bisect/*/steps.jsonl")):
            return
        time.sleep(0.05)
    raise AssertionError(f"never reached {what}")


@pytest.mark.parametrize(
    ("where", "sig"),
    [
        ("series:am@1:kill", None),
        ("series:am@2:term", None),
        ("build", signal.SIGTERM),
        ("bisect", signal.SIGKILL),
    ],
)
def test_a_killed_series_leaves_nothing_and_the_next_is_right(small, posted, where, sig):
    repo, box, head = posted
    fault = {"HARNESS_FAULT": where} if ":" in where else {}
    proc, results = _series(small, repo, box, **fault)
    if sig is not None:
        _wait(proc, results, where)
        proc.send_signal(sig)
    proc.communicate(timeout=300)
    assert proc.returncode in (-signal.SIGKILL, 130), proc.returncode
    assert small.wait_no_leftovers() == []
    (folder,) = results.glob("series-*")
    assert json.loads((folder / "metadata.json").read_text())["status"] == "incomplete"
    git = ["git", "-C", str(repo)]
    assert subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip() == head  # fmt: skip
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True,
                          check=True).stdout == ""  # fmt: skip
    _right(small, repo, box)
