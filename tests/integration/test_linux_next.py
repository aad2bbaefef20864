"""linux-next as it is: a 7.5.0-rc1-next-* version no canary was ported to, and daily tags
rebuilt on a moving mainline (no tag an ancestor of the next), fetched from a remote.

Three nightlies of arm32-highmem-ci x [boot, pte-lockptr-highpte] over the history of
tests/fakes/linux_next.py, published one tag a day on a bare "upstream" and fetched by a
the lab's repository: the canary follows the tree (the nearest port that applies), then turns
stale when the bug arrives in another form, which `boot` reports under the canary's
title: a new regression, bisected across the rebase from the merge base. Then a flaky
bug (one boot in two) is bisected with a confidence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git_env
from linux_next import BUG_TITLE, DAYS, FLAKY_TITLE_RX, History, build

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BOOT, CANARY = "arm32-highmem-ci/boot", "arm32-highmem-ci/pte-lockptr-highpte"


@pytest.fixture(scope="module")
def upstream(kernel_git_repo) -> tuple[History, Path, Path]:
    """The maintainers' tree, a bare upstream that publishes one tag a day, and the lab's
    repository: the fixture's own, so nightlies and bisects build in the harness worktree
    the other git tests warmed (another clone would be another cold kernel build)."""
    from harness import source

    root = source.cache_root() / "test-repos"
    work = root / "linux-next-work"
    if work.exists():
        shutil.rmtree(work)
    hist = build(kernel_git_repo, work)
    bare = root / "linux-next-upstream.git"
    if bare.exists():
        shutil.rmtree(bare)
    git_env(root, "init", "-q", "--bare", str(bare))
    alternates = [kernel_git_repo / ".git" / "objects", work / ".git" / "objects"]
    (bare / "objects" / "info" / "alternates").write_text("".join(f"{p}\n" for p in alternates))
    lab = kernel_git_repo
    ours = {f"next-{day}" for day in DAYS}  # tonight's tags come from upstream, one a day
    for tag in set(git_env(lab, "tag", "--list", "next-*").split()) & ours:
        git_env(lab, "tag", "-d", tag)
    if "linux-next" in git_env(lab, "remote").split():
        git_env(lab, "remote", "remove", "linux-next")
    return hist, bare, lab


def lab_state(lab: Path) -> tuple[str, str]:
    """The lab's own checkout: its HEAD and what git status says (never touched)."""
    return git_env(lab, "rev-parse", "HEAD"), git_env(lab, "status", "--porcelain")


def publish(hist: History, bare: Path, day: str) -> None:
    git_env(bare, "update-ref", f"refs/tags/next-{day}", hist.tags[f"next-{day}"])


def harness(*args: str, results: Path, timeout: int = 5400) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_RESULTS": str(results)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    sys.stderr.write(proc.stderr[-4000:])
    return proc


@pytest.fixture(scope="module")
def nights(upstream, tmp_path_factory):
    hist, bare, lab = upstream
    results = tmp_path_factory.mktemp("linux-next-results")
    before = lab_state(lab)
    out = {}
    matrix = ["--targets", "arm32-highmem-ci", "--scenarios", "boot", "pte-lockptr-highpte"]
    for n, day in enumerate(DAYS):
        publish(hist, bare, day)
        if n == 0:  # the first night names the URL; then the lab keeps it as a remote
            extra = ["--remote", f"file://{bare}"]
        else:
            if "linux-next" not in git_env(lab, "remote").split():
                git_env(lab, "remote", "add", "linux-next", f"file://{bare}")
            extra = ["--bisect-new"] if n == 1 else []
        proc = harness("nightly", "--kernel", str(lab), *matrix, *extra, results=results)
        (folder,) = results.glob(f"nightly-next-{day}-*")
        out[day] = (proc, folder, json.loads((folder / "summary.json").read_text()))
    assert lab_state(lab) == before  # the lab's checkout is untouched by nightlies and bisects
    return hist, lab, results, out


def statuses(summary: dict) -> dict[str, str]:
    return {f"{c['target']}/{c['scenario']}": c["status"] for c in summary["cells"]}


def cell(summary: dict, key: str) -> dict:
    return next(c for c in summary["cells"] if f"{c['target']}/{c['scenario']}" == key)


def test_first_night_the_canary_follows_the_tree(nights):
    hist, _, _, out = nights
    proc, folder, s = out[DAYS[0]]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert s["commit"] == hist.tags[f"next-{DAYS[0]}"]
    assert s["version"].startswith("7.5")
    assert statuses(s) == {BOOT: "pass", CANARY: "caught"}
    run = Path(cell(s, CANARY)["attempts"][-1]["results_dir"])
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["kernel"]["version"] == f"7.5.0-rc1-next-{DAYS[0]}"
    assert meta["variant"] == ">=6.12,<6.13"  # the nearest port that applies
    assert "nearest variant that applies" in meta["variant_note"]
    tried = [t["kernel"] for t in meta["variants_tried"]]
    assert ">=7.3,<7.4" in tried and tried.index(">=7.3,<7.4") == 0  # nearest first
    assert any("fetched" in n for n in s["notes"]), s["notes"]


def test_second_night_a_stale_canary_never_buries_the_regression(nights):
    hist, _, _, out = nights
    proc, folder, s = out[DAYS[1]]
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]  # the finding, not 3 or 5
    assert statuses(s) == {BOOT: "new", CANARY: "stale"}
    boot, canary = cell(s, BOOT), cell(s, CANARY)
    assert boot["title"] == BUG_TITLE
    assert "needs a port to 7.5" in canary["reason"]
    assert "boot reports exactly its expected title" in canary["reason"]
    b = boot["bisection"]
    assert b["culprit"] == hist.bug and b["exit_code"] == 0, b["summary"]
    assert b["good"] == hist.tags[f"next-{DAYS[0]}"]  # not an ancestor of tonight's tag
    assert "merge base" in b["summary"] and "range searched" in b["summary"]
    assert "deterministic" in b["summary"]
    mail = (folder / "mail.txt").read_text()
    assert "STALE" in mail and "NEW REGRESSIONS (1)" in mail
    junit = (folder / "junit.xml").read_text()
    assert "STALE (needs a port)" in junit
    assert "STALE" in (folder / "index.html").read_text()


def test_third_night_classifies_across_the_rebase(nights):
    _, lab, _, out = nights
    proc, _, s = out[DAYS[2]]
    boot = cell(s, BOOT)
    # the flaky bug shows in about half the boots: new (twice), flaky (once) or fixed
    assert boot["status"] in ("new", "flaky", "fixed"), boot
    if boot["status"] in ("new", "flaky"):
        assert re.search(FLAKY_TITLE_RX, boot["title"]), boot["title"]
    assert proc.returncode in (0, 1), proc.stdout
    assert cell(s, CANARY)["status"] == "caught"  # mm dropped the bug: the port applies again


def test_flaky_bug_bisected_with_confidence(upstream, nights, tmp_path):
    hist, _, lab = upstream
    proc = harness(
        "bisect", "arm32-highmem-ci", "--kernel", str(lab),
        "--good", f"next-{DAYS[0]}", "--bad", f"next-{DAYS[2]}",
        "--scenario", "smoke", "--calibrate", "8", "--confidence", "0.9",
        results=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"first bad commit: {hist.flaky}" in proc.stdout
    m = re.search(r"confidence: ([0-9.]+) \(asked 0\.9\)", proc.stdout)
    assert m and float(m.group(1)) >= 0.9, proc.stdout
    assert "flaky: a good verdict needs" in proc.stdout
    assert "culprit touches nothing in the trace" not in proc.stdout
    (folder,) = tmp_path.glob("bisect-*")
    steps = [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines()]
    goods = [s for s in steps if s["code"] == 0]
    assert goods and all(s["runs"] > 1 for s in goods)  # repeat counts per step
    mail = (folder / "mail.txt").read_text()
    assert "Bisection confidence:" in mail
