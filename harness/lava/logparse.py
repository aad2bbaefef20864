"""Read a LAVA job log back into the console and the facts `harness run` judges.

A LAVA log is one YAML mapping per line ({dt, lvl, msg}); lava-run writes them bare on
stderr, lava-server serves them as a YAML list ("- {...}"). `lvl: target` lines (and
`lvl: feedback`, read after the test) are the guest's console. LAVA calls a kernel panic
with -no-reboot "Connection closed", an infrastructure error: the console decides
instead, through the same markers and the same crash parser as a local boot.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness import console, markers
from harness.errors import InfraError

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

_PHASES = (b"Booting Linux", b"Linux version")
# console lines: 'target' while an action reads the DUT, 'feedback' for what is read after
# it (the DONE marker can land there when the monitor stops on it mid-buffer)
_CONSOLE = ("target", "feedback")


@dataclass
class LavaLog:
    """What one LAVA job said: its console, its results and how LAVA judged it."""

    console: str
    results: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    boot_command: str = ""
    seconds: float = 0.0

    @property
    def job_result(self) -> dict:
        """LAVA's own verdict: the 'job' case of the 'lava' definition."""
        for r in reversed(self.results):
            if r.get("definition") == "lava" and r.get("case") == "job":
                return r
        return {}

    @property
    def test_cases(self) -> list[dict]:
        """The monitor's cases (one per scenario step), not LAVA's own actions."""
        return [r for r in self.results if r.get("definition") != "lava"]


def _entry(line: str) -> dict | None:
    line = line.strip()
    if line.startswith("- "):
        line = line[2:]
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:  # lava-run writes some values YAML-only (e.g. '! "123"')
        try:
            data = yaml.load(line, Loader=_Loader)
        except yaml.YAMLError:
            return None
    return data if isinstance(data, dict) and "lvl" in data else None


def _time(entry: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(entry.get("dt")))
    except ValueError:
        return None


def parse_log(text: str) -> LavaLog:
    """Split a LAVA log into console lines, results and errors; unreadable lines are skipped."""
    lines: list[str] = []
    log = LavaLog("")
    first = last = None
    for raw in text.splitlines():
        entry = _entry(raw)
        if entry is None:
            continue
        lvl, msg = entry["lvl"], entry.get("msg")
        if lvl in _CONSOLE:
            line = msg if isinstance(msg, str) else str(msg)
            # after the test LAVA reads what is left as 'feedback'; an echo can repeat
            if not (lvl == "feedback" and lines and lines[-1] == line):
                lines.append(line)
            when = _time(entry)
            first = first or when
            last = when or last
        elif lvl == "results" and isinstance(msg, dict):
            log.results.append(msg)
        elif lvl == "error":
            log.errors.append(str(msg))
        elif lvl == "info" and isinstance(msg, str) and msg.startswith("Boot command: "):
            log.boot_command = msg[len("Boot command: ") :]
    log.console = "".join(f"{line}\n" for line in lines)
    if first and last:
        log.seconds = (last - first).total_seconds()
    return log


def boot_result(log: LavaLog, nonce: str, *, timed_out: bool = False) -> console.BootResult:
    """The BootResult a local boot of the same console would have given.

    A job that failed before the kernel printed anything is LAVA's (or the lab's)
    failure, not the kernel's: that is an InfraError carrying LAVA's own message.
    """
    raw = log.console.encode()
    job = log.job_result
    if not timed_out and job.get("result") != "pass" and not any(p in raw for p in _PHASES):
        what = job.get("error_type", "no result")
        msg = job.get("error_msg") or "; ".join(log.errors[-2:]) or "no console output"
        raise InfraError(f"LAVA job failed before the kernel booted: {what}: {msg}")
    done, failed = markers.done(raw, nonce)
    if done:
        ending = "poweroff"
    elif markers.PANIC.search(raw):
        ending = "panic"
    elif timed_out or "timed out" in str(job.get("error_msg", "")):
        ending = "timeout-total"
    else:
        ending = "qemu-exit"  # LAVA: "Connection closed"
    return console.BootResult(
        console=log.console,
        ending=ending,
        seconds=log.seconds,
        exit_status=None,
        started=markers.started(raw, nonce),
        done=done,
        failed_steps=failed,
        steps=markers.steps(log.console),
    )
