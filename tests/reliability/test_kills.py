"""Kill `harness run` at every phase; the next run must find a pristine tree and be right.

A run here injects two patches (the canary-like bug and a second one, both named
fix.patch), so a kill can land between them, in either journal write, and in the revert.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from reltools import ROUNDS, TABLE, Small

pytestmark = pytest.mark.reliability

# phase -> how the kill lands: ("fault", POINT) is a named point in the harness (it kills
# itself there), ("watch", WHAT) a signal sent from here when WHAT is seen
PHASES = {
    "before-apply": ("fault", "lock:acquired"),
    "mid-journal-write (apply)": ("fault", "write:journal.json@1"),
    "mid-apply (git apply)": ("watch", "apply"),
    "between two patches": ("fault", "apply:after@1"),
    "after apply": ("fault", "apply:after@2"),
    "mid-build": ("watch", "build"),
    "mid-revert": ("fault", "revert:mid"),
    "mid-journal-write (revert)": ("fault", "write:journal.json@3"),
    "mid-boot": ("watch", "boot"),
}
GIT_PHASES = ["mid-apply (git apply)", "after apply", "mid-revert", "mid-boot"]
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def _wait_for(what: str, small: Small, kind: str, results: Path, mark: Path, proc) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read()[-2000:]}")
        if what == "apply" and mark.exists():
            return
        if what == "build":
            log = small.build_log(kind)
            if log.exists() and "  CC      mm/" in log.read_text(errors="replace"):
                return
        if what == "boot":
            for c in results.glob("*/console.log"):
                if "HARNESS: STEP 1/" in c.read_text(errors="replace"):
                    return
        time.sleep(0.05)
    raise AssertionError(f"never reached {what}")


def kill_once(small: Small, kind: str, phase: str, sig_name: str) -> dict[str, int]:
    """One kill and the run after it; returns this cycle's counters."""
    how, detail = PHASES[phase]
    sig = SIGNALS[sig_name]
    mark = small.root / f"mark-{small.runs}"
    env = {}
    if how == "fault":
        env["HARNESS_FAULT"] = f"{detail}:{'kill' if sig == signal.SIGKILL else 'term'}"
    elif detail == "apply":
        env.update(RELIABILITY_SLOW_APPLY="mm/f00.c", RELIABILITY_MARK=str(mark))
    if detail == "build":
        small.build_log(kind).unlink(missing_ok=True)
    # mid-boot: the patches are out again by then; the bug would end the boot at once
    patched = small.patches[1:] if detail == "boot" else True
    proc, results = small.start(kind, patched=patched, **env)
    if how == "watch":
        _wait_for(detail, small, kind, results, mark, proc)
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    want_code = 130 if sig == signal.SIGTERM else -signal.SIGKILL
    c = {"kills": 1, "pristine": 0, "leftover": 0, "wrong": 0, "incomplete": 0}
    problems = []
    if proc.returncode != want_code:
        problems.append(f"killed run exited {proc.returncode}, not {want_code}: {err[-1500:]}")
    left = small.wait_no_leftovers()
    if left:
        c["leftover"] = 1
        problems.append(f"left running: {left}")
    metas = list(results.glob("*/metadata.json"))
    if metas and json.loads(metas[0].read_text()).get("status") == "incomplete":
        c["incomplete"] = 1
    else:
        problems.append(f"results not marked incomplete: {metas}")
    after, _ = small.run(kind, "-q")
    diffs = small.differences(kind)
    if not diffs:
        c["pristine"] = 1
    else:
        problems.append(f"tree differs from pristine after the next run: {diffs}")
    if after.returncode != 0:
        c["wrong"] = 1
        problems.append(f"next clean run exited {after.returncode}: {after.stdout[-1500:]}")
    for k, v in c.items():
        TABLE[(kind, phase, sig_name)][k] += v
    if problems:
        small.notes.append(f"{kind} {phase} {sig_name}: " + "; ".join(problems))
    return c


CASES = [("tarball", p, s) for p in PHASES for s in SIGNALS] + [
    ("git", p, s) for p in GIT_PHASES for s in SIGNALS
]


@pytest.mark.parametrize(("kind", "phase", "sig"), CASES, ids=[" ".join(c) for c in CASES])
def test_kill(small, kind, phase, sig):
    before = len(small.notes)
    for _ in range(ROUNDS):
        kill_once(small, kind, phase, sig)
    assert small.notes[before:] == []


def test_the_canary_still_applies_and_is_caught_after_all_the_kills(small):
    for kind in ("tarball", "git"):
        proc, _ = small.run(kind, "-q", patched=True)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert small.differences(kind) == []
