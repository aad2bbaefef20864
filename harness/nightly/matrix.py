"""The matrix: targets x scenarios, each cell a `harness run`, failures retried once.

Cells of one target run one after another (they share its build directory, and a run
boots the image it just built); different targets run side by side up to --jobs. Every
target builds the same source tree, so cells that patch it (canaries) run afterwards, one
at a time: the nightly holds the tree's lock for its runs, so they cannot wait on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def run_cell(cell: Cell, runner: Runner, root: Path, retries: int) -> list[Attempt]:
    attempts = [runner(cell, root)]
    while len(attempts) <= retries and needs_retry(cell, attempts):
        attempts.append(runner(cell, root))
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

    First the cells that only read the tree, targets side by side; then the ones that
    patch it, alone.
    """
    results: dict[Cell, list[Attempt]] = {}
    stop = threading.Event()

    def chain(group: list[Cell]) -> None:
        for c in group:
            if stop.is_set():
                return
            attempts = run_cell(c, runner, root / c.slug, retries)
            results[c] = attempts
            if progress:
                progress(c, attempts[-1], len(attempts))

    def abort() -> None:  # Ctrl-C or SIGTERM: start nothing new, stop what runs
        stop.set()
        terminate = getattr(runner, "terminate", None)
        if terminate:
            terminate()  # the runs unwind: patches reverted, QEMU killed

    readers: dict[str, list[Cell]] = {}
    for c in cells:
        if not c.patches:
            readers.setdefault(c.target, []).append(c)
    try:
        if jobs <= 1 or len(readers) <= 1:
            for group in readers.values():
                chain(group)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(chain, g) for g in readers.values()]
                try:
                    for fut in futures:
                        fut.result()
                except BaseException:
                    abort()  # before the pool waits for its threads
                    raise
        chain([c for c in cells if c.patches])
    except BaseException:
        abort()
        raise
    return {c: results[c] for c in cells}


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

    def __call__(self, cell: Cell, root: Path) -> Attempt:
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
