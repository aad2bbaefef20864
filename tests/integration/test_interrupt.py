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
from procs import qemu_pids_using

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


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
    assert qemu_pids_using(run_dir), "QEMU should be running now"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "marked incomplete" in err
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "incomplete"
    assert "verdict" not in meta
    time.sleep(0.5)
    assert qemu_pids_using(run_dir) == []


def _pristine_sha(tree: Path, rel: str) -> str:
    from harness import patches
    from harness.state import tree_state_dir

    for line in (tree_state_dir(tree) / patches.MANIFEST).read_text().splitlines():
        sha, _mode, path = line.split(" ", 2)
        if path == rel:
            return sha
    raise AssertionError(f"{rel} not in the manifest")


def test_sigkill_mid_canary_build_leaves_nothing_behind(tmp_path, source_612):
    """The issue's case on the real thing: the harness SIGKILLed while make compiles the
    canary's patched file in Debian's tree. make must go with it, and the next clean run
    must build without the bug, from a tree byte-identical to the tarball."""
    import hashlib

    from harness import build, source
    from harness.config import load_target

    rel = "mm/pgtable-generic.c"
    pristine = _pristine_sha(source_612, rel)
    src = source.resolve("debian-6.12")
    blog = build.build_dir_for(load_target("arm32-highmem-ci"), src, source.cache_root())
    blog = blog / "build.log"
    blog.unlink(missing_ok=True)
    root = tmp_path / "results"
    env = {**os.environ, "HARNESS_RESULTS": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "arm32-highmem-ci", "-q",
         "-s", "pte-lockptr-highpte"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if blog.exists() and "mm/pgtable-generic.o" in blog.read_text(errors="replace"):
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    assert hashlib.sha256((source_612 / rel).read_bytes()).hexdigest() != pristine  # patched
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    time.sleep(3)
    makes = [
        d.name
        for d in Path("/proc").iterdir()
        if d.name.isdigit() and _cmdline(d).startswith("make") and str(blog.parent) in _cmdline(d)
    ]
    assert makes == [], "make outlived the harness"
    (run,) = list(root.iterdir())
    assert json.loads((run / "metadata.json").read_text())["status"] == "incomplete"
    clean = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "arm32-highmem-ci", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert hashlib.sha256((source_612 / rel).read_bytes()).hexdigest() == pristine


def _cmdline(d: Path) -> str:
    try:
        return (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
