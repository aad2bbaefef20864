"""Run a LAVA job on this machine with lava-run: no server, the lab's dispatcher code.

lava-run writes its whole log as YAML lines on stderr and result.yaml into --output-dir.
It runs QEMU through pexpect in a session of its own, so stopping it is a SIGTERM (it
then cancels the job and stops QEMU itself), and only after a grace period a SIGKILL
plus whatever QEMU still runs from this job's own staging folder.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import InfraError
from harness.proc import Progress, spawn_stderr

DISPATCHER_TMP = Path("/var/lib/lava/dispatcher/tmp")
TERM_GRACE = 20.0


@dataclass
class LocalRun:
    """One lava-run: its exit code, its log (LAVA's own YAML) and result.yaml."""

    argv: list[str]
    returncode: int
    log: Path
    result: dict
    seconds: float
    timed_out: bool = False


def command(job: Path, device: Path, out: Path, job_id: str) -> list[str]:
    return [
        "lava-run",
        "--job-id",
        job_id,
        "--device",
        str(device),
        "--output-dir",
        str(out),
        str(job),
    ]


def _kill_strays(job_id: str) -> None:
    """Kill processes (QEMU) whose command line names this job's staging folder."""
    mark = str(DISPATCHER_TMP / job_id).encode() + b"/"
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def stop(proc: subprocess.Popen, job_id: str) -> None:
    """SIGTERM lava-run (it cancels the job), then SIGKILL it and any QEMU it left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(TERM_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    _kill_strays(job_id)


def _phase(line: str) -> str | None:
    if '"lvl": "info"' in line and '"msg": "start: ' in line:
        return line.split('"msg": "start: ', 1)[1].split(" (", 1)[0]
    return None


def run(
    job: Path, device: Path, out: Path, job_id: str, *, timeout: float, quiet: bool
) -> LocalRun:
    """Run lava-run to the end (or the wall-clock limit) and keep its log in out/lava.log."""
    if not shutil.which("lava-run"):
        raise InfraError("lava-run not found: apt-get install lava-dispatcher (./bootstrap.sh)")
    argv = command(job, device, out, job_id)
    log_path = out / "lava.log"
    progress = Progress("lava", quiet)
    t0 = time.monotonic()
    proc = spawn_stderr(argv, text=True)
    timer = threading.Timer(timeout, stop, (proc, job_id))
    timer.start()
    phase, console_lines = "validate", 0
    try:
        assert proc.stderr is not None
        with open(log_path, "w") as log:
            for line in proc.stderr:
                log.write(line)
                if (p := _phase(line)) is not None:
                    phase = p
                console_lines += '"lvl": "target"' in line
                progress.update(f"{phase}, {console_lines} console lines")
        rc = proc.wait()
    finally:
        timer.cancel()
        stop(proc, job_id)
        shutil.rmtree(DISPATCHER_TMP / job_id, ignore_errors=True)
    seconds = time.monotonic() - t0
    result_file = out / "result.yaml"
    result = yaml.safe_load(result_file.read_text()) if result_file.exists() else {}
    progress.done(f"lava-run exit {rc} after {seconds:.1f}s: {result.get('result', 'no result')}")
    return LocalRun(argv, rc, log_path, result or {}, seconds, timed_out=seconds >= timeout)


def shell_line(argv: list[str]) -> str:
    return shlex.join(argv)
