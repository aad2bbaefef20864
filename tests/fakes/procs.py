"""Processes seen from /proc: the QEMUs a test left behind (or did not)."""

from __future__ import annotations

from pathlib import Path


def qemu_pids_using(path: Path) -> list[int]:
    """PIDs of qemu-system-* processes whose command line names path."""
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
