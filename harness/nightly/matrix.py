"""The matrix: targets x scenarios, each cell a `harness run`, failures retried once.

Cells of one target run one after another (they share its build directory, and a run
boots the image it just built); different targets run side by side up to --jobs. Every
target builds the same source tree, so cells that patch it (canaries) run afterwards, one
at a time: the nightly holds the tree's lock for its runs, so they cannot wait on it
(TreeGate keeps that order among the runs instead). Cells that boot in a LAVA lab are all
in flight at once, each holding the tree only while it builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.config import Scenario, load_scenario, load_target
from harness.errors import EXIT_INFRA
from harness.machine import RemoteOptions
from harness.nightly.model import Attempt, Cell
from harness.proc import die_with_parent
from harness.run import remote_argv
from harness.verdict import Kind

Runner = Callable[[Cell, Path], Attempt]
# Lab cells in flight at once: each is a worker process here (about 35 MB) waiting on its
# job; the lab queues what its devices cannot take yet, so more buys nothing.
LAB_IN_FLIGHT = 32
Progress = Callable[[Cell, Attempt, int], None]


def plan(targets: list[str], scenarios: list[str]) -> list[Cell]:
    """Every target x scenario, tests before canaries (a canary's patch forces a rebuild).

    Loading each target and scenario first turns a typo into a usage error before any
    build starts.
    """
    for t in targets:
        load_target(t)
    loaded = [load_scenario(s) for s in scenarios]
    ordered = [s for s in loaded if not s.canary] + [s for s in loaded if s.canary]

    def patches(s: Scenario) -> bool:
        return bool(s.patches) or any(v.patches for v in s.variants)

    return [Cell(t, s.name, s.canary, patches(s)) for t in targets for s in ordered]


def needs_retry(cell: Cell, attempts: list[Attempt]) -> bool:
    """Retry a failure until it reproduces once, an infrastructure error until it goes."""
    last = attempts[-1]
    if last.verdict in (Kind.INFRA_ERROR, Kind.TIMEOUT):
        return True
    if cell.canary:
        return last.verdict == Kind.CANARY_MISSED
    return last.verdict == Kind.FAIL and sum(a.verdict == Kind.FAIL for a in attempts) < 2


class TreeGate:
    """The one source tree every cell builds: clean builds side by side, or one patched
    run alone. A cell that boots elsewhere (a LAVA job) lets go of it once it is built."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def held(self, exclusive: bool) -> Iterator[Callable[[], None]]:
        """Yields the early release (idempotent); leaving the block releases in any case."""
        with self._cv:
            self._cv.wait_for(lambda: not self._writer and not (exclusive and self._readers))
            if exclusive:
                self._writer = True
            else:
                self._readers += 1
        gone = threading.Event()

        def release() -> None:
            with self._cv:
                if gone.is_set():
                    return
                gone.set()
                if exclusive:
                    self._writer = False
                else:
                    self._readers -= 1
                self._cv.notify_all()

        try:
            yield release
        finally:
            release()


def run_cell(
    cell: Cell,
    runner: Runner,
    root: Path,
    retries: int,
    gate: TreeGate | None = None,
    elsewhere: bool = False,
    built: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> list[Attempt]:
    """The cell's runs, each holding the tree while it uses it. `elsewhere`: the run
    boots away from here (a lab) and hands back the tree once built; `built` is set
    once the first run has done so."""
    gate = gate or TreeGate()
    attempts: list[Attempt] = []
    try:
        while not attempts or (len(attempts) <= retries and needs_retry(cell, attempts)):
            if stop is not None and stop.is_set():
                break
            with gate.held(cell.patches) as release:
                if stop is not None and stop.is_set():  # stopped while it waited for the tree
                    break
                if elsewhere:

                    def let_go(release: Callable[[], None] = release) -> None:
                        release()
                        if built is not None:
                            built.set()

                    attempts.append(runner(cell, root, release=let_go))  # type: ignore[call-arg]
                else:
                    attempts.append(runner(cell, root))
            if built is not None:
                built.set()
    finally:
        if built is not None:
            built.set()
    return attempts


def run_matrix(
    cells: list[Cell],
    runner: Runner,
    root: Path,
    *,
    jobs: int = 1,
    retries: int = 1,
    progress: Progress | None = None,
) -> dict[Cell, list[Attempt]]:
    """Run every cell (with retries); returns the attempts per cell in plan order.

    Here: first the cells that only read the tree, targets side by side; then the ones
    that patch it, alone. Cells the runner boots elsewhere (`runner.boots_elsewhere`, a
    lab's jobs) are all in flight at once: each holds the tree only while it builds, so
    the lab's scheduler, not this machine, decides how many boot together.
    """
    results: dict[Cell, list[Attempt]] = {}
    stop = threading.Event()
    gate = TreeGate()
    away = getattr(runner, "boots_elsewhere", None) or (lambda c: False)

    def run(c: Cell, built: threading.Event | None = None) -> None:
        attempts = run_cell(c, runner, root / c.slug, retries, gate, away(c), built, stop)
        if not attempts:
            return
        results[c] = attempts
        if progress:
            progress(c, attempts[-1], len(attempts))

    def chain(group: list[Cell]) -> None:
        for c in group:
            if stop.is_set():
                return
            run(c)

    def abort() -> None:  # Ctrl-C or SIGTERM: start nothing new, stop what runs
        stop.set()
        terminate = getattr(runner, "terminate", None)
        if terminate:
            terminate()  # the runs unwind: patches reverted, QEMU killed

    readers: dict[str, list[Cell]] = {}
    for c in cells:
        if not c.patches and not away(c):
            readers.setdefault(c.target, []).append(c)
    lab = [c for c in cells if away(c)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(lab), LAB_IN_FLIGHT)))
    in_lab: list[Future] = []

    def to_lab(c: Cell) -> threading.Event:
        built = threading.Event()
        in_lab.append(pool.submit(run, c, built))
        return built

    try:
        built = [to_lab(c) for c in lab if not c.patches]
        if jobs <= 1 or len(readers) <= 1:
            for group in readers.values():
                chain(group)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as local:
                futures = [local.submit(chain, g) for g in readers.values()]
                try:
                    for fut in futures:
                        fut.result()
                except BaseException:
                    abort()  # before the pool waits for its threads
                    raise
        for ev in built:  # every clean build is done before the first patch goes in
            _wait(ev, in_lab)
        for c in cells:
            if stop.is_set():
                break
            if c.patches and away(c):
                _wait(to_lab(c), in_lab)  # the next patch waits for this one's build
            elif c.patches:
                run(c)
        for fut in in_lab:
            fut.result()
    except BaseException:
        abort()
        raise
    finally:
        pool.shutdown(wait=True)
    return {c: results[c] for c in cells}


def _wait(ev: threading.Event, futures: list[Future]) -> None:
    """Until `ev`, re-raising at once what a lab cell's thread raised."""
    while not ev.wait(0.2):
        for fut in futures:
            if fut.done() and fut.exception() is not None:
                fut.result()


class ProcessRunner:
    """Runs a cell as `python -m harness.nightly.worker` and reads its results folder."""

    command = [sys.executable, "-m", "harness.nightly.worker"]

    def __init__(
        self,
        kernel: str,
        make_jobs: int | None = None,
        boot_timeout: int | None = None,
        say: Callable[[str], None] | None = None,
        hosts: dict[str, RemoteOptions | None] | None = None,
        lava: dict[str, dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.hosts = hosts or {}
        self.lava = lava or {}  # target -> the lab its cells run in (lab.LabPlan.spec)
        self.env = env  # the runs' environment (the lab's token goes this way, not argv)
        self.kernel = kernel
        self.make_jobs = make_jobs
        self.boot_timeout = boot_timeout
        self.say = say
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def boots_elsewhere(self, cell: Cell) -> bool:
        """A lab's job boots the cell: the matrix keeps all of them in flight at once."""
        return cell.target in self.lava

    def __call__(
        self, cell: Cell, root: Path, release: Callable[[], None] | None = None
    ) -> Attempt:
        """One run. `release`: called once the run's build is done and its job is in the
        lab (the worker says so in a file), so the tree can go to the next cell."""
        root.mkdir(parents=True, exist_ok=True)
        spec = {
            "target": cell.target,
            "scenario": cell.scenario,
            "kernel": self.kernel,
            "jobs": self.make_jobs,
            "results_root": str(root),
            "boot_timeout": self.boot_timeout,
            "remote": remote_argv(self.hosts.get(cell.target)),
            "lava": self.lava.get(cell.target),
        }
        t0 = time.monotonic()
        if self.say:
            self.say(f"running {cell.key}")
        with tempfile.TemporaryDirectory(prefix="harness-nightly-") as tmp:
            spec_file, out_file = Path(tmp, "spec.json"), Path(tmp, "out.json")
            submitted = Path(tmp, "submitted")
            if release is not None:
                spec["submitted"] = str(submitted)
            spec_file.write_text(json.dumps(spec))
            cmd = [*self.command, str(spec_file), str(out_file)]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                preexec_fn=die_with_parent(signal.SIGTERM),  # a killed nightly takes it along
                env=self.env,
            )
            with self._lock:
                self._children.add(proc)
            if release is not None:
                threading.Thread(
                    target=self._watch, args=(proc, submitted, cell, release), daemon=True
                ).start()
            try:
                output, _ = proc.communicate()
            except BaseException:  # interrupted: the run unwinds (patches out, QEMU killed)
                _stop(proc)
                raise
            finally:
                with self._lock:
                    self._children.discard(proc)
            result = json.loads(out_file.read_text()) if out_file.exists() else {}
        with open(root / "worker.log", "a") as fh:  # warnings and tracebacks of the run
            fh.write(f"$ {' '.join(cmd[:3])} ({cell.key})\n{output}")
        attempt = read_attempt(result, output, proc.returncode)
        attempt.seconds = round(time.monotonic() - t0, 1)
        return attempt

    def _watch(
        self, proc: subprocess.Popen, submitted: Path, cell: Cell, release: Callable[[], None]
    ) -> None:
        """Hand back the tree when the worker has submitted its job (or has ended)."""
        while proc.poll() is None and not submitted.exists():
            time.sleep(0.2)
        if submitted.exists() and self.say:
            job = submitted.read_text().strip()
            self.say(f"{cell.key}: built; LAVA job {job} is in the lab")
        release()

    def terminate(self) -> None:
        """SIGTERM every run in flight (they revert their patches and kill QEMU) and wait."""
        with self._lock:
            children = list(self._children)
        for p in children:
            _stop(p)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the worker turns it into Ctrl-C), then SIGKILL if it does not end."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_attempt(result: dict, output: str, returncode: int) -> Attempt:
    """An Attempt from the worker's verdict and the run's results folder."""
    if "error" in result:
        kind = Kind(result.get("kind", Kind.CONFIG_ERROR))
        return Attempt(kind, result.get("exit_code", EXIT_INFRA), result["error"])
    if not result.get("verdict"):
        tail = "\n".join(output.strip().splitlines()[-20:])
        return Attempt(
            Kind.INFRA_ERROR,
            EXIT_INFRA,
            f"the run process died (exit {returncode}) before its verdict",
            tail.splitlines(),
        )
    v = result["verdict"]
    rdir = Path(result["results_dir"])
    meta = _json(rdir / "metadata.json") or {}
    reports = _json(rdir / "reports.json") or []
    tests = (_json(rdir / "tests.json") or {}).get("units") or []
    return Attempt(
        verdict=v["verdict"],
        exit_code=v["exit_code"],
        summary=v["summary"],
        details=list(v.get("details") or []),
        reports=reports,
        results_dir=rdir,
        canary=v.get("canary"),
        commit=(meta.get("kernel") or {}).get("commit"),
        build_seconds=(meta.get("build") or {}).get("seconds", 0.0),
        boot_seconds=(meta.get("timings") or {}).get("boot", 0.0),
        started=meta.get("started", ""),
        run_id=result.get("run_id", rdir.name),
        known=list(v.get("known") or []),
        cause=v.get("cause") or "",
        variant=meta.get("variant") or "",
        tests=tests,
        where=where_it_ran(meta),
    )


def where_it_ran(meta: dict) -> str:
    """Where a run booted, for the reports: a lab's job and worker, an SSH host, or here."""
    lava = meta.get("lava") or {}
    if lava.get("job_id") is not None:
        on = lava.get("worker") or lava.get("actual_device")
        return f"lava job {lava['job_id']}" + (f" on {on}" if on else "")
    machine = (meta.get("boot") or {}).get("machine") or {}
    if machine.get("kind") == "ssh":
        return f"ssh {machine.get('host', '?')}"
    return "here"


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def make_jobs_for(jobs: int) -> int:
    """make -j for each of `jobs` concurrent runs, sharing the CPUs."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))
