"""The matrix: plan order, retries, parallel targets, reading a run back from its folder."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from nightly_fakes import BOOT, BUG, CANARY, attempt, caught

from harness.errors import ConfigError
from harness.nightly import matrix
from harness.nightly.model import Cell


def test_plan_puts_canaries_last_and_checks_names():
    cells = matrix.plan(["arm32-highmem-ci"], ["pte-lockptr-highpte", "boot"])
    assert [c.scenario for c in cells] == ["boot", "pte-lockptr-highpte"]
    assert cells[1].canary and not cells[0].canary
    with pytest.raises(ConfigError):
        matrix.plan(["no-such-target"], ["boot"])
    with pytest.raises(ConfigError):
        matrix.plan(["arm32-highmem-ci"], ["no-such-scenario"])


def scripted(*verdicts):
    """A runner that answers each cell's runs in order from verdicts[cell.key]."""
    seen: dict[str, int] = {}

    def run(cell, root):
        i = seen.get(cell.key, 0)
        seen[cell.key] = i + 1
        return verdicts[0][cell.key][i]()

    run.seen = seen
    return run


@pytest.mark.parametrize(
    "runs, expected",
    [
        ([lambda: attempt("pass")], ["pass"]),
        ([lambda: attempt("fail", BUG), lambda: attempt("pass")], ["fail", "pass"]),
        ([lambda: attempt("fail", BUG), lambda: attempt("fail", BUG)], ["fail", "fail"]),
        ([lambda: attempt("infra-error"), lambda: attempt("pass")], ["infra-error", "pass"]),
        ([lambda: attempt("build-error")], ["build-error"]),
        ([lambda: attempt("not-applicable")], ["not-applicable"]),
    ],
)
def test_retries(tmp_path, runs, expected):
    out = matrix.run_matrix([BOOT], scripted({BOOT.key: runs}), tmp_path, retries=1)
    assert [a.verdict for a in out[BOOT]] == expected


def test_retry_budget_and_canaries(tmp_path):
    runs = {
        BOOT.key: [lambda: attempt("fail", BUG)] * 5,
        CANARY.key: [lambda: attempt("canary-missed"), caught],
    }
    out = matrix.run_matrix([BOOT, CANARY], scripted(runs), tmp_path, retries=3)
    assert len(out[BOOT]) == 2  # reproduced once: enough
    assert [a.verdict for a in out[CANARY]] == ["canary-missed", "fail"]
    out = matrix.run_matrix([BOOT], scripted(runs), tmp_path, retries=0)
    assert len(out[BOOT]) == 1


def test_targets_run_side_by_side_cells_of_a_target_in_order(tmp_path):
    cells = [Cell(t, s) for t in ("a", "b") for s in ("s1", "s2")]
    active, peak, order = set(), [0], []
    lock = threading.Lock()

    def run(cell, root):
        with lock:
            active.add(cell.target)
            peak[0] = max(peak[0], len(active))
            order.append(cell.key)
        time.sleep(0.05)
        with lock:
            active.discard(cell.target)
        return attempt("pass")

    progress = []
    out = matrix.run_matrix(
        cells, run, tmp_path, jobs=2, progress=lambda c, a, n: progress.append(c)
    )
    assert list(out) == cells and peak[0] == 2 and len(progress) == 4
    assert order.index("a/s1") < order.index("a/s2") and order.index("b/s1") < order.index("b/s2")


def test_read_attempt(tmp_path):
    rdir = tmp_path / "run"
    rdir.mkdir()
    (rdir / "metadata.json").write_text(
        json.dumps(
            {
                "kernel": {"commit": "c" * 40},
                "build": {"seconds": 12.5},
                "timings": {"boot": 31.0},
                "started": "2026-03-02T01:00:00+00:00",
            }
        )
    )
    (rdir / "reports.json").write_text(json.dumps([{"title": BUG}]))
    verdict = {
        "verdict": "fail",
        "exit_code": 1,
        "summary": "regression",
        "details": ["d"],
        "canary": None,
    }
    a = matrix.read_attempt({"verdict": verdict, "results_dir": str(rdir), "run_id": "r1"}, "", 1)
    assert (a.verdict, a.title, a.commit, a.build_seconds, a.boot_seconds, a.run_id) == (
        "fail",
        BUG,
        "c" * 40,
        12.5,
        31.0,
        "r1",
    )
    crashed = matrix.read_attempt({}, "Traceback...\nKeyError: x\n", 1)
    assert crashed.verdict == "infra-error" and "died" in crashed.summary
    assert crashed.details[-1] == "KeyError: x"
    early = matrix.read_attempt({"error": "unknown target", "exit_code": 4}, "", 4)
    assert early.verdict == "config-error"


def test_process_runner_reports_an_unknown_target(tmp_path):
    """The real worker process, failing before any build: a config error, not a crash."""
    runner = matrix.ProcessRunner("inplace:/nonexistent")
    a = runner(Cell("no-such-target", "boot"), tmp_path / "cell")
    assert a.verdict == "config-error" and "no-such-target" in a.summary
    assert (tmp_path / "cell" / "worker.log").exists()


def test_make_jobs_share_the_cpus(monkeypatch):
    monkeypatch.setattr(matrix.os, "cpu_count", lambda: 8)
    assert matrix.make_jobs_for(1) == 8 and matrix.make_jobs_for(2) == 4
    assert matrix.make_jobs_for(16) == 1


def test_interrupt_stops_the_other_targets(tmp_path):
    cells = [Cell(t, s) for t in ("a", "b") for s in ("s1", "s2")]
    ran = []

    def run(cell, root):
        ran.append(cell.key)
        if cell.key == "a/s1":
            time.sleep(0.05)
            raise KeyboardInterrupt
        time.sleep(0.2)
        return attempt("pass")

    run.terminate = lambda: ran.append("terminated")
    with pytest.raises(KeyboardInterrupt):
        matrix.run_matrix(cells, run, tmp_path, jobs=2)
    assert "terminated" in ran and "b/s2" not in ran and "a/s2" not in ran


def test_process_runner_terminate_stops_a_run(tmp_path):
    runner = matrix.ProcessRunner("inplace:/nonexistent")
    runner.command = [sys.executable, "-c", "import time; time.sleep(120)"]
    out = []
    t = threading.Thread(target=lambda: out.append(runner(BOOT, tmp_path / "cell")))
    t.start()
    for _ in range(100):
        if runner._children:
            break
        time.sleep(0.05)
    runner.terminate()
    t.join(timeout=30)
    assert not t.is_alive() and out[0].verdict == "infra-error" and "died" in out[0].summary


def test_cells_that_patch_the_tree_run_last_and_alone(tmp_path):
    cells = [
        Cell(t, s, s == "canary", s == "canary")
        for t in ("a", "b", "c")
        for s in ("boot", "canary")
    ]
    active, log = [0], []
    lock = threading.Lock()

    def run(cell, root):
        with lock:
            active[0] += 1
            log.append((cell.key, active[0]))
        time.sleep(0.03)
        with lock:
            active[0] -= 1
        return attempt("pass")

    out = matrix.run_matrix(cells, run, tmp_path, jobs=3)
    assert list(out) == cells
    keys = [k for k, _ in log]
    assert {k for k in keys[:3]} == {"a/boot", "b/boot", "c/boot"}
    assert keys[3:] == ["a/canary", "b/canary", "c/canary"]
    assert all(n == 1 for k, n in log if k.endswith("canary"))
    assert max(n for _, n in log) > 1  # the readers did run side by side
    planned = matrix.plan(["arm32-highmem-ci"], ["boot", "pte-lockptr-highpte"])
    assert [c.patches for c in planned] == [False, True]


def test_process_runner_passes_the_cells_host(tmp_path):
    """A cell whose target boots on a `hosts:` machine: the worker gets it (and a bad
    entry is that cell's config error, not a crash)."""
    from harness.machine import RemoteOptions

    remote = RemoteOptions.make("ci@kvm.lab:2222", "/nonexistent/known_hosts")
    runner = matrix.ProcessRunner("inplace:/nonexistent", hosts={"x86-64-ci": remote})
    att = runner(Cell("x86-64-ci", "boot"), tmp_path)
    assert att.verdict == "config-error", att
    assert "--known-hosts /nonexistent/known_hosts: no such file" in att.summary


class LabRunner:
    """Cells of targets in `lab` 'build' (holding the tree) for `build` seconds, hand the
    tree back, then 'boot in the lab' for `boot` seconds; the others run here."""

    def __init__(self, lab: set[str], build: float = 0.05, boot: float = 0.3):
        self.lab, self.build, self.boot = lab, build, boot
        self.lock = threading.Lock()
        self.building: list[str] = []  # cells holding the tree right now
        self.booting: set[str] = set()
        self.peak_booting = 0
        self.log: list[tuple[str, str, list[str]]] = []  # (event, cell, who builds)

    def boots_elsewhere(self, cell):
        return cell.target in self.lab

    def __call__(self, cell, root, release=None):
        assert (release is not None) == (cell.target in self.lab)
        with self.lock:
            self.building.append(cell.key)
            self.log.append(("build", cell.key, list(self.building)))
        time.sleep(self.build)
        with self.lock:
            self.building.remove(cell.key)
        if release is None:
            time.sleep(self.boot)
            return attempt("pass")
        release()
        with self.lock:
            self.booting.add(cell.key)
            self.peak_booting = max(self.peak_booting, len(self.booting))
            self.log.append(("boot", cell.key, list(self.building)))
        time.sleep(self.boot)
        with self.lock:
            self.booting.discard(cell.key)
        return caught() if cell.canary else attempt("pass")


def test_lab_cells_are_all_in_flight_at_once(tmp_path):
    """Six lab jobs boot together with --parallel 1; the target kept here runs beside them."""
    cells = [Cell(t, s) for t in ("lab-a", "lab-b", "here") for s in ("s1", "s2", "s3")]
    runner = LabRunner({"lab-a", "lab-b"})
    t0 = time.monotonic()
    out = matrix.run_matrix(cells, runner, tmp_path, jobs=1)
    assert list(out) == cells and all(a[-1].verdict == "pass" for a in out.values())
    assert runner.peak_booting == 6
    assert time.monotonic() - t0 < 3 * 0.35 + 6 * 0.05 + 1.0  # not 9 boots one by one


def test_lab_canaries_take_the_tree_alone_and_boot_side_by_side(tmp_path):
    """A patched build never shares the tree; every clean build is done before the first
    patch; the next canary builds while the previous one's job runs in the lab."""
    cells = [
        Cell(t, s, s.startswith("canary"), s.startswith("canary"))
        for t in ("lab-a", "here")
        for s in ("boot", "canary1", "canary2")
    ]
    runner = LabRunner({"lab-a"}, build=0.05, boot=0.4)
    out = matrix.run_matrix(cells, runner, tmp_path, jobs=2)
    assert list(out) == cells
    assert [a.verdict for a in out[cells[1]]] == ["fail"]  # caught, through the lab
    builds = [(c, who) for ev, c, who in runner.log if ev == "build"]
    order = [c for c, _ in builds]
    first_patch = min(i for i, (c, _) in enumerate(builds) if "canary" in c)
    assert {"lab-a/boot", "here/boot"} == set(order[:first_patch])
    for c, who in builds:
        if "canary" in c:
            assert who == [c], (c, who)  # alone on the tree
    assert [c for c in order if "canary" in c] == [
        "lab-a/canary1", "lab-a/canary2", "here/canary1", "here/canary2"
    ]  # fmt: skip
    boots = [(c, set(who)) for ev, c, who in runner.log if ev == "boot"]
    assert ("lab-a/canary1" in {c for c, _ in boots}) and runner.peak_booting >= 2


def test_a_lab_cells_retry_waits_for_the_patched_tree(tmp_path):
    """A clean cell retried (resubmitted) while a canary builds waits for the tree."""
    cells = [Cell("lab-a", "boot"), Cell("lab-a", "canary", True, True)]
    runner = LabRunner({"lab-a"}, build=0.3, boot=0.2)
    first = [True]
    real = runner.__call__

    def flaky(cell, root, release=None):
        if cell.scenario == "boot" and first[0]:
            first[0] = False
            release()
            time.sleep(0.05)  # the canary is building by now
            return attempt("infra-error")
        return real(cell, root, release)

    flaky.boots_elsewhere = runner.boots_elsewhere
    out = matrix.run_matrix(cells, flaky, tmp_path)
    assert [a.verdict for a in out[cells[0]]] == ["infra-error", "pass"]
    assert [c for ev, c, _ in runner.log if ev == "build"] == ["lab-a/canary", "lab-a/boot"]
    assert all(len(who) == 1 for ev, _, who in runner.log if ev == "build"), runner.log


def test_process_runner_hands_the_tree_back_when_the_job_is_submitted(tmp_path):
    """The real worker protocol: the run writes the job id to the spec's `submitted` file;
    the runner calls `release` then, long before the run ends."""
    runner = matrix.ProcessRunner("inplace:/nonexistent", lava={"lab-a": {"server": "x"}})
    runner.command = [
        sys.executable, "-c",
        "import json, sys, time; spec = json.load(open(sys.argv[1]));"
        "open(spec['submitted'], 'w').write('42\\n'); time.sleep(1.5)",
    ]  # fmt: skip
    said, released = [], []
    runner.say = said.append
    t0 = time.monotonic()
    a = runner(Cell("lab-a", "boot"), tmp_path, release=lambda: released.append(time.monotonic()))
    assert released and released[0] - t0 < 1.2
    assert "lab-a/boot: built; LAVA job 42 is in the lab" in said
    assert a.verdict == "infra-error"  # no verdict written: the run "died"
    assert runner.boots_elsewhere(Cell("lab-a", "boot"))
    assert not runner.boots_elsewhere(Cell("here", "boot"))


def test_lab_cells_in_flight_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "LAB_IN_FLIGHT", 3)
    cells = [Cell("lab-a", f"s{i}") for i in range(7)]
    runner = LabRunner({"lab-a"}, build=0.01, boot=0.1)
    out = matrix.run_matrix(cells, runner, tmp_path)
    assert len(out) == 7 and runner.peak_booting == 3


def test_a_lab_cell_waiting_for_the_tree_starts_nothing_once_stopped(tmp_path):
    """Ctrl-C while a lab retry waits for a canary's patched build: it never runs."""
    cells = [Cell("lab-a", "boot"), Cell("here", "canary", True, True)]
    ran: list[str] = []
    first = [True]

    def run(cell, root, release=None):
        ran.append(cell.key)
        if cell.key == "lab-a/boot" and first[0]:
            first[0] = False
            release()
            time.sleep(0.3)  # the canary holds the tree by now
            return attempt("infra-error")  # a retry, which must wait for the tree
        if cell.key == "here/canary":
            time.sleep(0.6)
            raise KeyboardInterrupt
        return attempt("pass")

    run.boots_elsewhere = lambda c: c.target == "lab-a"
    with pytest.raises(KeyboardInterrupt):
        matrix.run_matrix(cells, run, tmp_path)
    assert ran == ["lab-a/boot", "here/canary"]
