"""A run killed mid-boot leaves its results marked incomplete and no QEMU behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _qemu_pids_using(path: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmd and str(path) in cmd:
                pids.append(int(d.name))
    return pids


def test_sigterm_during_boot(tmp_path):
    root = tmp_path / "results"
    env = {**os.environ, "HARNESS_RESULTS": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "arm32-highmem-ci", "-q"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 900
    run_dir = None
    while time.monotonic() < deadline:
        runs = list(root.glob("*")) if root.exists() else []
        if runs and (runs[0] / "console.log").exists():
            if "HARNESS: STEP 1/" in (runs[0] / "console.log").read_text(errors="replace"):
                run_dir = runs[0]
                break
        if proc.poll() is not None:
            pytest.fail(f"run ended before the workload started: {proc.stderr.read()}")
        time.sleep(0.2)
    assert run_dir, "the guest never reached the workload"
    assert _qemu_pids_using(run_dir), "QEMU should be running now"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "marked incomplete" in err
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "incomplete"
    assert "verdict" not in meta
    time.sleep(0.5)
    assert _qemu_pids_using(run_dir) == []
