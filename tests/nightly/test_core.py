"""Three nightlies on a fake linux-next tree with a fake runner: classification, history,
bisection, reports and exit codes, end to end in a second."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gitutil import git_env
from nightly_fakes import BUG, FakeRunner, attempt

from harness import source
from harness.bisect import BisectResult
from harness.nightly import core
from harness.nightly.core import NightlyOptions
from harness.nightly.reports import kcidb

CELLS = ["arm32-highmem-ci/boot", "arm32-highmem-ci/pte-lockptr-highpte"]


@pytest.fixture
def env(fake_linux, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    wt = cache / "worktrees" / source.worktree_name(fake_linux.resolve())
    bisects = []

    def bisector(opts):
        bisects.append(opts)
        folder = opts.results_root / "bisect-x"
        folder.mkdir(parents=True)
        culprit = git_env(fake_linux, "rev-parse", "next-20260302")
        return BisectResult(0, f"first bad commit: {culprit}\n  subject: mm\n", folder, culprit)

    def nightly(ref: str | None, runner=None, **kw):
        opts = NightlyOptions(
            kernel=str(fake_linux),
            ref=ref,
            targets=["arm32-highmem-ci"],
            scenarios=["boot", "pte-lockptr-highpte"],
            results_root=tmp_path / "results",
            quiet=True,
            **kw,
        )
        return core.run(opts, runner=runner or FakeRunner(lambda: wt), bisector=bisector)

    nightly.bisects = bisects
    nightly.repo = fake_linux
    nightly.worktree = wt
    return nightly


def statuses(result) -> dict[str, str]:
    return {c.cell.key: c.status for c in result.cells}


def test_three_nightlies(env):
    n1 = env("next-20260301")
    assert statuses(n1) == {CELLS[0]: "pass", CELLS[1]: "caught"}
    assert n1.exit_code == 0, n1.mail
    n2 = env("next-20260302", bisect_new=True)
    assert statuses(n2) == {CELLS[0]: "new", CELLS[1]: "in-tree"}
    assert n2.exit_code == 1, n2.mail
    boot = n2.cells[0]
    assert boot.title == BUG and len(boot.attempts) == 2  # reproduced on the retry
    assert "boot reports its bug" in n2.cells[1].reason
    # --bisect-new: between the last nightly where boot passed and tonight
    (b,) = env.bisects
    assert b.good == n1.nightly.commit and b.bad == n2.nightly.commit
    assert b.target == "arm32-highmem-ci" and b.scenario == "boot"
    assert b.kernel == str(env.repo.resolve())
    assert boot.bisection.culprit == n2.nightly.commit
    n3 = env(None)  # default ref: the newest next- tag, the revert
    assert n3.nightly.ref == "next-20260303"
    assert statuses(n3) == {CELLS[0]: "fixed", CELLS[1]: "caught"}
    assert n3.exit_code == 0
    assert "next-20260302" in n3.cells[0].reason and BUG in n3.cells[0].reason

    folder = n2.nightly.folder
    assert folder.name.startswith("nightly-next-20260302-")
    for name in (
        "junit.xml",
        "kcidb.json",
        "index.html",
        "trend.html",
        "mail.txt",
        "summary.json",
        "cells/arm32-highmem-ci--boot.html",
    ):
        assert (folder / name).exists(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["counts"] == {"new": 1, "in-tree": 1}
    assert summary["cells"][0]["bisection"]["culprit"] == n2.nightly.commit
    kcidb.validate(json.loads((folder / "kcidb.json").read_text()))
    suites = ET.parse(folder / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["nightly.arm32-highmem-ci"]
    failure = suites[0].find("testcase[@name='boot']/failure")
    assert failure.get("message") == f"NEW regression: {BUG}"
    mail = n2.mail
    assert mail.startswith("Subject: [harness nightly] next-20260302: 1 new regression")
    assert "NEW REGRESSIONS (1)" in mail and "bisect: first bad commit" in mail
    trend = (n3.nightly.folder / "trend.html").read_text()
    assert trend.count('data-status="new"') == 1 and trend.count('data-status="fixed"') == 1


def test_flaky_and_missed_canary(env):
    script = {
        CELLS[0]: lambda n, f: (
            attempt("fail", BUG, folder=f) if n == 1 else attempt("pass", folder=f)
        ),
        CELLS[1]: lambda n, f: attempt(
            "canary-missed", folder=f, summary="HARNESS FAILURE: canary expected x"
        ),
    }
    wt = env.worktree
    r = env("next-20260301", runner=FakeRunner(lambda: wt, script))
    assert statuses(r) == {CELLS[0]: "flaky", CELLS[1]: "harness-failure"}
    assert r.exit_code == 3
    assert "HARNESS FAILURES (1)" in r.mail and "NOT CAUGHT" in r.mail
    assert "FLAKY" in r.mail and BUG in r.mail


def test_checkout_failure_fails_every_cell(env):
    env("next-20260301")
    (env.worktree / "mm" / "a.c").write_text("someone's edit\n")  # the worktree is dirty
    r = env("next-20260302")
    assert set(statuses(r).values()) == {"harness-failure"} and r.exit_code == 3
    assert any("cannot check out" in f for f in r.nightly.harness_failures)
    assert (r.nightly.folder / "index.html").exists()


def test_worktree_moved_under_the_matrix(env):
    wt = env.worktree
    runner = FakeRunner(lambda: wt)

    def moving(cell, root):
        a = runner(cell, root)
        a.commit = "f" * 40
        return a

    r = env("next-20260301", runner=moving)
    assert set(statuses(r).values()) == {"harness-failure"}
    assert "the worktree moved" in r.cells[0].reason


def test_bisect_new_needs_an_ancestor_that_passed(env):
    # the first nightly already fails: nothing to bisect from
    r = env("next-20260302", bisect_new=True)
    assert r.cells[0].status == "new" and not env.bisects
    assert r.cells[0].bisection.summary.startswith("not bisected: no earlier nightly")


def test_usage_errors(env, tmp_path):
    with pytest.raises(Exception, match="not a git tree"):
        core.run(
            NightlyOptions(kernel=str(tmp_path), targets=["arm32-highmem-ci"], scenarios=["boot"])
        )
    with pytest.raises(Exception, match="no-such"):
        core.run(NightlyOptions(kernel=str(env.repo), targets=["no-such"], scenarios=["boot"]))


def test_cli_names_and_exit_code(env, tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.nightly import matrix

    wt = env.worktree
    monkeypatch.setattr(matrix, "ProcessRunner", lambda *a, **k: FakeRunner(lambda: wt))
    code = main(
        [
            "nightly",
            "--kernel",
            str(env.repo),
            "--ref",
            "next-20260301",
            "--targets",
            "arm32-highmem-ci",
            "--scenarios",
            "boot,pte-lockptr-highpte",
            "--results",
            str(tmp_path / "res"),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0 and out.startswith("Subject: [harness nightly] next-20260301"), captured.err
    assert Path(tmp_path / "res" / "nightly.sqlite").exists()
    assert main(["nightly", "--kernel", str(tmp_path / "nope"), "--targets", "x"]) == 4


def test_the_nightly_holds_the_worktree_for_its_runs(env):
    import fcntl

    from harness import patches
    from harness.state import tree_state_dir

    wt = env.worktree
    runner = FakeRunner(lambda: wt)
    seen = []

    def run(cell, root):
        lock = tree_state_dir(wt) / "lock"
        with open(lock, "a") as fh:  # someone else's run cannot take the tree
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        seen.append(os.environ.get(patches.HELD_ENV))
        return runner(cell, root)

    r = env("next-20260301", runner=run)
    assert r.exit_code == 0
    assert seen == ["held", str(wt), "held", str(wt)]
    assert patches.HELD_ENV not in os.environ
