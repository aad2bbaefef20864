"""A board on the desk as the place of a boot: console by a command here, kernel by kexec.

The board runs its own system; the harness attaches to its serial console (a command such
as a console-server client, whose output is the console), powers it on if told how, waits
for SSH (host key checked), copies the run's kernel and initramfs over, loads them with
`kexec -l`, and boots them with `kexec -e`. From there the run is the same as under
QEMU: the harness's initramfs runs the scenario's steps between its markers on the
board's console, and the same parser and verdicts apply. What the console said before
the kexec goes to board-console.log, so the board's own boot is never judged.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from harness import console, qemu
from harness.config import SshBoard, Target
from harness.errors import ConfigError, InfraError
from harness.machine import BootRequest
from harness.ssh import Connection, HostSpec, SshOptions, check_remote_dir, connect

POWER_TIMEOUT = 120  # seconds for a power_on/power_off command
RETRY = 3.0  # seconds between SSH attempts while the board comes up
TAIL_LINES = 25  # console lines quoted when the board does not come up
T = TypeVar("T")


class _Late(Exception):
    """board.up_timeout passed while waiting for SSH."""


class _ConsoleGone(InfraError):
    """The console command ended: the board's line is gone, retrying cannot help."""


def _path(value: str, target: Target) -> Path | None:
    """A path from the target YAML: ~ expanded, relative to the YAML's folder."""
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else target.path.parent / p


class _Tail:
    """The last lines of what the board printed (for an error that says why)."""

    def __init__(self) -> None:
        self.buf = b""

    def add(self, data: bytes) -> None:
        self.buf = (self.buf + data)[-16384:]

    def lines(self) -> str:
        text = self.buf.decode(errors="replace").replace("\r", "")
        return "\n".join(text.splitlines()[-TAIL_LINES:])


class _BoardConsole:
    """The console from the kexec on (the same process that printed the board's boot)."""

    def __init__(self, machine: BoardMachine, proc: console.LocalProcess) -> None:
        self.machine, self.proc = machine, proc

    def read(self, size: int, timeout: float) -> bytes:
        return self.proc.read(size, timeout)

    def stop(self) -> None:
        self.machine.close()

    @property
    def exit_status(self) -> int | None:
        return self.proc.exit_status


def _close_quietly(value: object) -> None:
    close = getattr(value, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


class BoardMachine:
    kind = "board"

    def __init__(self, target: Target) -> None:
        board = target.board
        if board is None:
            raise ConfigError(f"{target.path}: no board: block")
        self.board: SshBoard = board
        where = f"{target.path}: board.host"
        self.ssh = SshOptions(
            HostSpec.parse(board.host, what=where),
            _path(board.known_hosts, target),
            _path(board.identity, target),
        )
        self.workdir = check_remote_dir(board.workdir, f"{target.path}: board.workdir")
        self.proc: console.LocalProcess | None = None
        self.facts: dict[str, Any] = {}
        self.closed = False

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": str(self.ssh.host), "console": list(self.board.console),
                **self.facts}  # fmt: skip

    def open(self) -> None:
        """Nothing before the boot: the board may be off until power_on."""

    def choose_accel(self, target: Target, forced: str | None) -> qemu.AccelChoice:
        if forced and forced != "auto":
            raise ConfigError(f"--accel {forced}: {target.name} is a board, nothing is emulated")
        return qemu.AccelChoice("none", f"a board over SSH ({self.ssh.host}): no emulation")

    def _power(self, which: str, argv: tuple[str, ...], log: IO[bytes] | None) -> None:
        if not argv:
            return
        try:
            proc = subprocess.run(list(argv), capture_output=True, timeout=POWER_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InfraError(f"board.{which} {shlex.join(argv)}: {e}") from None
        if log is not None:
            log.write(f"[harness: board.{which} exited {proc.returncode}]\n".encode())
        if proc.returncode:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise InfraError(
                f"board.{which} {shlex.join(argv)} failed ({proc.returncode})"
                + (f": {err[-1]}" if err else "")
            )

    def _drained(self, call: Callable[[], T], proc: console.LocalProcess, log: IO[bytes],
                 tail: _Tail, deadline: float | None = None) -> T:  # fmt: skip
        """call() in a thread while the console goes on into board-console.log: a board
        that boots while the harness connects or copies must not fill the console line
        (and what it prints then is the board's own boot, not the run's)."""
        box: list[Any] = []
        lock = threading.Lock()
        abandoned = False

        def work() -> None:
            result: tuple[bool, Any]
            try:
                result = (True, call())
            except BaseException as e:  # handed to the caller's thread
                result = (False, e)
            with lock:
                box.append(result)
                late = abandoned
            if late and result[0]:
                _close_quietly(result[1])  # a connection made after the caller gave up

        worker = threading.Thread(target=work, name="board-ssh", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    raise _Late()
                try:
                    data = proc.read(65536, 0.2)
                except EOFError:
                    raise _ConsoleGone(
                        f"board console command {shlex.join(self.board.console)} ended "
                        f"before the kernel was booted; its last lines:\n{tail.lines()}"
                    ) from None
                log.write(data)
                log.flush()
                tail.add(data)
        except BaseException:
            with lock:
                abandoned = True
                done = list(box)
            if done and done[0][0]:
                _close_quietly(done[0][1])
            raise
        ok, value = box[0]
        if not ok:
            raise value
        return cast(T, value)

    def _wait_up(self, proc: console.LocalProcess, log: IO[bytes], tail: _Tail) -> Connection:
        """SSH to the board as it boots, draining its console meanwhile."""
        t0 = time.monotonic()
        deadline = t0 + self.board.up_timeout
        last_err = "no attempt yet"
        try:
            while True:
                try:
                    conn = self._drained(lambda: connect(self.ssh, timeout=10), proc, log,
                                         tail, deadline)  # fmt: skip
                except (ConfigError, _ConsoleGone):
                    raise  # a refused host key, a console gone: retrying cannot help
                except InfraError as e:
                    last_err = str(e)
                else:
                    self.facts["up_seconds"] = round(time.monotonic() - t0, 1)
                    return conn
                self._drained(lambda: time.sleep(RETRY), proc, log, tail, deadline)
        except _Late:
            raise InfraError(
                f"board {self.ssh.host} did not come up: no SSH after "
                f"{self.board.up_timeout}s ({last_err}); its console's last lines:\n" + tail.lines()
            ) from None

    def _install(self, conn: Connection, req: BootRequest) -> None:
        """Copy, `kexec -l`, remove the copies, then `kexec -e` (detached: the SSH
        session dies with the kernel)."""
        d = conn.make_run_dir(self.workdir)
        try:
            kernel, initrd = d / req.kernel.name, d / "initramfs.cpio.gz"
            t0 = time.monotonic()
            conn.put(req.kernel, kernel)
            conn.put(req.initrd, initrd)
            self.facts["copy_seconds"] = round(time.monotonic() - t0, 2)
            load = ["kexec", "-l", str(kernel), f"--initrd={initrd}",
                    f"--command-line={req.cmdline}"]  # fmt: skip
            rc, _, err = conn.run(load, check=False)
            self.facts["kexec_load"] = shlex.join(load)
            if rc:
                last = (err.strip().splitlines() or [f"exit {rc}"])[-1]
                raise InfraError(f"board {self.ssh.host}: kexec -l failed: {last}")
        finally:
            with contextlib.suppress(InfraError):
                conn.run(["rm", "-rf", str(d)])
        # detached, and deaf to the hang-up when this session closes (no nohup needed:
        # busybox systems often lack it); the pause lets the session end cleanly first
        conn.run_shell("sh -c 'trap \"\" HUP; sleep 1; exec kexec -e' </dev/null >/dev/null 2>&1 &")
        self.facts["host_key"] = f"{conn.host_key_type} {conn.host_key_fingerprint}"

    def start(self, req: BootRequest) -> console.ConsoleSource:
        assert req.rdir is not None
        self.proc = console.LocalProcess(list(self.board.console))
        tail = _Tail()
        with open(req.rdir / "board-console.log", "wb") as log:
            self._power("power_on", self.board.power_on, log)
            conn = self._wait_up(self.proc, log, tail)
            try:
                self._drained(lambda: self._install(conn, req), self.proc, log, tail)
            finally:
                conn.close()
            # the old kernel's last words (kexec -e waits a second): still the board's
            self._drained(lambda: time.sleep(0.5), self.proc, log, tail)
        return _BoardConsole(self, self.proc)

    def close(self) -> None:
        """The console command stopped, the board powered off (when told how); once."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.proc is not None:
                self.proc.stop()
        finally:
            self._power("power_off", self.board.power_off, None)
