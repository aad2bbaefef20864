"""Child processes that never outlive the harness: own process group, killed on any exit.

Killed on any exit includes SIGKILL, which runs no cleanup: children also get a
parent-death signal, so a make or QEMU never keeps running after the harness is gone
(and never keeps writing into a build directory whose lock has been released).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
DIE_WITH_PARENT_ENV = "HARNESS_DIE_WITH_PARENT"  # set for processes a harness starts


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the thread that started it dies.

    make gets SIGTERM (it then stops its own jobs and deletes half-built targets); QEMU
    gets SIGKILL. Linux delivers it when the spawning *thread* exits, so only use it
    from a thread that waits for the child.
    """
    parent = os.getpid()

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - not Linux
            return
        if os.getppid() != parent:  # the parent died before prctl: do it now
            os.kill(os.getpid(), sig)

    return preexec


def die_with_parent_now(sig: int = signal.SIGTERM) -> None:
    """This process gets `sig` when its parent dies (a bisect step when `harness bisect`
    is killed: git bisect run and the step would otherwise go on building and booting)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() == 1:  # orphaned before the call
        os.kill(os.getpid(), sig)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done (a patch applied or reverted whole).

    SIGKILL cannot be held; the patch journal covers that. Outside the main thread,
    where handlers cannot be set, the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: object) -> None:  # noqa: ARG001 - handler signature
        pending.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if pending:
            raise KeyboardInterrupt


def kill_group(pid: int) -> None:
    """SIGTERM then SIGKILL a whole process group, ignoring ones already gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.2)


def spawn_stderr(cmd: list[str], *, text: bool = False) -> subprocess.Popen[Any]:
    """A child whose stderr we read (lava-run, git fetch): its own session, nothing on
    stdin or stdout, and it dies with us."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=text,
        errors="replace" if text else None,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )


def run_logged(
    cmd: list[str],
    log: IO[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    pass_fds: tuple[int, ...] = (),
    death_signal: int = signal.SIGTERM,
) -> int:
    """Run cmd with stdout+stderr appended to log (and to on_line); return its exit code.

    pass_fds hands lock files to the child: a flock stays held while any process that
    inherited it lives, so an orphaned compiler still counts as holding the build.
    """
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
        pass_fds=pass_fds,
        preexec_fn=die_with_parent(death_signal),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()  # `tail -f build.log` (and a watcher) sees make as it goes
            if on_line:
                on_line(line)
        return proc.wait()
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        log.flush()


class Progress:
    """One status line on a TTY, sparse plain lines otherwise (CI logs stay readable).

    On a TTY the line is cut to the terminal's width less one column, and cleared with
    an erase-to-end-of-line, so an update never wraps into a new line (80 columns
    included).
    """

    def __init__(self, label: str, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.start = time.monotonic()
        self.dirty = False

    def _columns(self) -> int:
        try:
            return max(20, os.get_terminal_size(self.stream.fileno()).columns - 1)
        except (OSError, ValueError, AttributeError):
            return 79

    def update(self, text: str, *, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        interval = 0.5 if self.tty else 60.0
        if not force and now - self.last < interval:
            return
        self.last = now
        elapsed = now - self.start
        msg = f"[{self.label} {_clock(elapsed)}] {text}"
        if self.tty:
            self.stream.write("\r" + msg[: self._columns()] + "\x1b[K")
            self.dirty = True
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()

    def done(self, text: str) -> None:
        if self.quiet:
            return
        if self.dirty:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"[{self.label}] {text}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def eta(done: float, total: float, elapsed: float) -> str:
    """ "42%, ~3m10s left" from a fraction done and the time it took so far."""
    if total <= 0 or done <= 0:
        return ""
    frac = min(done / total, 0.999)
    left = elapsed * (1 - frac) / frac
    return f"{int(frac * 100)}%, ~{_clock(left)} left"
