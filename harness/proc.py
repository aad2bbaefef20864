"""Child processes that never outlive the harness: own process group, killed on any exit."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


def kill_group(pid: int) -> None:
    """SIGTERM then SIGKILL a whole process group, ignoring ones already gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.2)


def run_logged(
    cmd: list[str],
    log: IO[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Run cmd with stdout+stderr appended to log (and to on_line); return its exit code."""
    log.write(f"$ {shlex.join(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        errors="replace",
        bufsize=1,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if on_line:
                on_line(line)
        return proc.wait()
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        log.flush()


class Progress:
    """One status line on a TTY, sparse plain lines otherwise (CI logs stay readable)."""

    def __init__(self, label: str, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.start = time.monotonic()
        self.dirty = False

    def update(self, text: str, *, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        interval = 0.5 if self.tty else 60.0
        if not force and now - self.last < interval:
            return
        self.last = now
        elapsed = now - self.start
        msg = f"[{self.label} {elapsed:5.0f}s] {text}"
        if self.tty:
            cols = 120
            self.stream.write("\r" + msg[:cols].ljust(cols))
            self.dirty = True
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()

    def done(self, text: str) -> None:
        if self.quiet:
            return
        if self.dirty:
            self.stream.write("\r" + " " * 120 + "\r")
        self.stream.write(f"[{self.label}] {text}\n")
        self.stream.flush()
