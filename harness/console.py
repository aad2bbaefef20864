"""Drive a guest's serial console: capture everything, watch the markers, enforce timeouts.

The verdict never comes from QEMU's exit status (a panic with panic=-1 and -no-reboot
exits 0); this module only reports what the console said and how the boot ended.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pexpect

from harness import markers
from harness.errors import InfraError
from harness.markers import StepResult
from harness.proc import Progress, die_with_parent, kill_group


@dataclass
class BootResult:
    """How one boot ended and what its console held."""

    console: str
    # poweroff | panic | qemu-exit | crash-quiet | timeout-total | timeout-silence | console-flood
    ending: str
    seconds: float
    exit_status: int | None
    started: bool
    done: bool
    failed_steps: int
    steps: list[StepResult] = field(default_factory=list)
    console_bytes: int = 0

    @property
    def timed_out(self) -> bool:
        return self.ending.startswith("timeout")


HEAD_KEEP = 8 << 20  # the first bytes (the boot and the first reports) stay in memory
TAIL_KEEP = 8 << 20  # and the last ones; the middle of a long console is on disk only
MAX_CONSOLE = 256 << 20  # a guest printing without end is stopped here: disk is finite too
_CRLF = re.compile(rb"\r+\n")


class ConsoleWindow:
    """What of a console is kept in memory: its head and its tail, at most a few MiB.

    A guest that prints at full speed would otherwise grow the harness without bound; the
    whole console still streams to console.log.
    """

    def __init__(self, head: int = HEAD_KEEP, tail: int = TAIL_KEEP) -> None:
        self.head_cap, self.tail_cap = head, tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        if len(self.tail) > 2 * self.tail_cap:  # trim rarely, at a line start
            cut = len(self.tail) - self.tail_cap
            nl = self.tail.find(b"\n", cut)
            cut = nl + 1 if nl != -1 else cut
            del self.tail[:cut]
            self.dropped += cut

    def text(self) -> str:
        data = bytes(self.head)
        if self.dropped:
            data += (
                f"\n[harness: {self.dropped} bytes of the console are not kept in memory; "
                "console.log has them all]\n"
            ).encode()
        data += bytes(self.tail)
        return data.decode("utf-8", errors="replace")


class _LineEnds:
    """CR LF, CR CR LF and a bare CR all end a line; NUL bytes are dropped."""

    def __init__(self) -> None:
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        chunk = self.held + chunk.replace(b"\0", b"")
        self.held = b""
        if chunk.endswith(b"\r"):  # its LF may be in the next chunk
            stripped = chunk.rstrip(b"\r")
            self.held = chunk[len(stripped) :]
            chunk = stripped
        return _CRLF.sub(b"\n", chunk).replace(b"\r", b"\n")

    def flush(self) -> bytes:
        out, self.held = (b"\n" if self.held else b""), b""
        return out


class ConsoleSource(Protocol):
    """Where a console's bytes come from: QEMU here, QEMU on a host over SSH, a board."""

    def read(self, size: int, timeout: float) -> bytes:
        """Up to size bytes; b"" when nothing came within timeout; EOFError at the end."""
        ...

    def stop(self) -> None:
        """End it (kill QEMU, close the channel); safe to call twice."""
        ...

    @property
    def exit_status(self) -> int | None: ...


class LocalProcess:
    """QEMU on this machine, on a pty, in its own process group, dying with the harness."""

    def __init__(self, argv: list[str]) -> None:
        if not shutil.which(argv[0]):
            raise InfraError(f"{argv[0]} not found; run ./bootstrap.sh")
        try:
            self.child = pexpect.spawn(
                argv[0],
                argv[1:],
                timeout=None,
                echo=False,
                use_poll=True,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        except pexpect.ExceptionPexpect as e:
            raise InfraError(f"cannot start {argv[0]}: {e}") from e

    def read(self, size: int, timeout: float) -> bytes:
        try:
            data: bytes = self.child.read_nonblocking(size, timeout=timeout)
        except pexpect.TIMEOUT:
            return b""
        except pexpect.EOF:
            raise EOFError from None
        return data

    def stop(self) -> None:
        if self.child.isalive():
            kill_group(self.child.pid)
            self.child.close(force=True)
        else:
            self.child.close()

    @property
    def exit_status(self) -> int | None:
        status: int | None = self.child.exitstatus
        return status


def boot(
    argv: list[str] | ConsoleSource,
    console_log: Path,
    nonce: str,
    *,
    total_timeout: float,
    silence_timeout: float,
    grace: float = 30.0,
    panic_grace: float = 10.0,
    quiet: bool = False,
    max_console: int = MAX_CONSOLE,
    crash_quiet: float = 0.0,
) -> BootResult:
    """Run QEMU until poweroff, panic, exit or a timeout; the whole console goes to
    console_log. argv: QEMU on this machine; or a started source (a remote QEMU).

    crash_quiet: after a fatal report (an oops, a BUG), end the boot once the console has
    been quiet that long (0: wait for the other endings); a wedged guest then costs
    seconds, not the silence timeout.
    """
    if total_timeout <= 0 or silence_timeout <= 0:
        raise InfraError(
            f"timeouts must be positive (total {total_timeout}, silence {silence_timeout})"
        )
    progress = Progress("boot", quiet)
    t0 = time.monotonic()
    source = LocalProcess(argv) if isinstance(argv, list) else argv
    window = ConsoleWindow()
    ends = _LineEnds()
    last = b""  # the end of what came before, so a marker split over two reads is seen
    ending = ""
    started = done = False
    failed = 0
    fatal_seen = False
    deadline: float | None = None
    last_data = time.monotonic()
    phase = "firmware"
    try:
        with open(console_log, "wb") as log:
            while True:
                now = time.monotonic()
                if deadline is not None and now > deadline:
                    ending = ending or "qemu-exit"
                    break
                if now - t0 > total_timeout:
                    ending = "timeout-total"
                    break
                if now - last_data > silence_timeout:
                    ending = "timeout-silence"
                    break
                if fatal_seen and crash_quiet and not ending and now - last_data > crash_quiet:
                    ending = "crash-quiet"
                    break
                if window.total > max_console:
                    ending = ending or "console-flood"
                    break
                try:
                    raw = source.read(65536, 0.5)
                except EOFError:
                    ending = ending or "qemu-exit"
                    break
                if not raw:
                    continue
                chunk = ends.feed(raw)
                log.write(chunk)
                log.flush()
                last_data = time.monotonic()
                tail = last + chunk
                last = tail[-256:]
                window.add(chunk)
                for rx, name in markers.PHASES:
                    if rx.search(tail):
                        phase = name
                started = started or markers.started(tail, nonce)
                if not done:
                    done, failed = markers.done(tail, nonce)
                    if done:
                        ending = "poweroff"
                        deadline = time.monotonic() + grace
                fatal_seen = fatal_seen or bool(markers.FATAL.search(tail))
                if not ending and markers.PANIC.search(tail):
                    ending = "panic"
                    deadline = time.monotonic() + panic_grace
                progress.update(f"{phase}, {window.total // 1024} KiB of console")
            rest = ends.flush()
            log.write(rest)
            window.add(rest)
    finally:
        source.stop()
    seconds = time.monotonic() - t0
    text = window.text()
    progress.done(f"{ending} after {seconds:.1f}s")
    return BootResult(
        console=text,
        ending=ending,
        seconds=seconds,
        exit_status=source.exit_status,
        started=started,
        done=done,
        failed_steps=failed if done else 0,
        steps=markers.steps(text),
        console_bytes=window.total,
    )
