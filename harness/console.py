"""Drive a guest's serial console: capture everything, watch the markers, enforce timeouts.

The verdict never comes from QEMU's exit status (a panic with panic=-1 and -no-reboot
exits 0); this module only reports what the console said and how the boot ended.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from harness.errors import InfraError
from harness.proc import Progress, kill_group

_START = re.compile(rb"HARNESS: START (\S+)")
_DONE = re.compile(rb"HARNESS: DONE (\S+) failed=(\d+)")
_STEP_END = re.compile(r"HARNESS: STEP (\d+)/(\d+) END (.*?) rc=(\d+)")
_PANIC = re.compile(rb"Kernel panic - not syncing|Hardware Dom0 crashed|---\[ end Kernel panic")
_PHASES = [
    (re.compile(rb"Booting Linux|Linux version"), "kernel"),
    (re.compile(rb"Run /init|Freeing unused kernel"), "init"),
    (_START, "workload"),
]


@dataclass
class StepResult:
    index: int
    name: str
    rc: int


@dataclass
class BootResult:
    """How one boot ended and what its console held."""

    console: str
    ending: str  # poweroff | panic | qemu-exit | timeout-total | timeout-silence
    seconds: float
    exit_status: int | None
    started: bool
    done: bool
    failed_steps: int
    steps: list[StepResult] = field(default_factory=list)

    @property
    def timed_out(self) -> bool:
        return self.ending.startswith("timeout")


def parse_steps(text: str) -> list[StepResult]:
    return [
        StepResult(int(m.group(1)), m.group(3), int(m.group(4))) for m in _STEP_END.finditer(text)
    ]


def boot(
    argv: list[str],
    console_log: Path,
    nonce: str,
    *,
    total_timeout: float,
    silence_timeout: float,
    grace: float = 30.0,
    panic_grace: float = 10.0,
    quiet: bool = False,
) -> BootResult:
    """Run QEMU until poweroff, panic, exit or a timeout; the whole console goes to console_log."""
    progress = Progress("boot", quiet)
    t0 = time.monotonic()
    try:
        child = pexpect.spawn(argv[0], argv[1:], timeout=None, echo=False, use_poll=True)
    except pexpect.ExceptionPexpect as e:
        raise InfraError(f"cannot start {argv[0]}: {e}") from e
    buf = bytearray()
    ending = ""
    started = done = False
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
                try:
                    chunk = child.read_nonblocking(65536, timeout=0.5)
                except pexpect.TIMEOUT:
                    continue
                except pexpect.EOF:
                    ending = ending or "qemu-exit"
                    break
                chunk = chunk.replace(b"\r\n", b"\n")
                log.write(chunk)
                log.flush()
                last_data = time.monotonic()
                tail = bytes(buf[-256:]) + chunk
                buf += chunk
                for rx, name in _PHASES:
                    if rx.search(tail):
                        phase = name
                if not started and (m := _START.search(tail)) and m.group(1) == nonce.encode():
                    started = True
                if not done and (m := _DONE.search(tail)) and m.group(1) == nonce.encode():
                    done = True
                    ending = "poweroff"
                    deadline = time.monotonic() + grace
                if not ending and _PANIC.search(tail):
                    ending = "panic"
                    deadline = time.monotonic() + panic_grace
                progress.update(f"{phase}, {len(buf) // 1024} KiB of console")
    finally:
        if child.isalive():
            kill_group(child.pid)
            child.close(force=True)
        else:
            child.close()
    seconds = time.monotonic() - t0
    text = bytes(buf).decode("utf-8", errors="replace")
    dm = _DONE.search(bytes(buf))
    failed = int(dm.group(2)) if dm and done else 0
    progress.done(f"{ending} after {seconds:.1f}s")
    return BootResult(
        console=text,
        ending=ending,
        seconds=seconds,
        exit_status=child.exitstatus,
        started=started,
        done=done,
        failed_steps=failed,
        steps=parse_steps(text),
    )
