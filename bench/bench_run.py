#!/usr/bin/env python3
"""Overhead of the harness against the raw commands it records, measured in one run.

1. `harness run TARGET` from an empty build directory (cold build + boot + verdict).
2. The raw reproducer from that run's metadata.json: the same make commands into another
   empty build directory, then the same qemu-system-* command line until the guest exits.
3. Ratios: build (harness build seconds / raw make seconds) and boot+verdict (harness
   QEMU start to verdict / raw QEMU wall time). Goals: build <= 1.03x, boot <= 1.05x.

ccache is disabled for both builds (CCACHE_DISABLE=1) so neither side profits from the
other's compiles; pass --ccache to keep it. Usage:
    .venv/bin/python bench/bench_run.py [--target arm32-highmem] [--boots 3]
The default target is the full exynos one (two cold builds: about 30 minutes here).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import REPO, med, raw_step  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="arm32-highmem")
    ap.add_argument("--scenario", default="boot")
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--boots", type=int, default=3, help="boots per side (median is used)")
    ap.add_argument("--ccache", action="store_true", help="leave ccache enabled")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    env = dict(os.environ)
    if not args.ccache:
        env["CCACHE_DISABLE"] = "1"
    env["HARNESS_RESULTS"] = str(work / "results")

    from harness import source
    from harness.build import build_dir_for
    from harness.config import load_target

    target = load_target(args.target)
    src = source.resolve(args.kernel)
    bdir = build_dir_for(target, src, source.cache_root())
    shutil.rmtree(bdir, ignore_errors=True)

    def harness_run() -> dict:
        cmd = [sys.executable, "-m", "harness.cli", "run", args.target, "-s", args.scenario, "-q"]
        if args.kernel:
            cmd += ["--kernel", args.kernel]
        rc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        runs = sorted((work / "results").glob("*"))
        meta = json.loads((runs[-1] / "metadata.json").read_text())
        if meta.get("verdict") != "pass":
            sys.exit(f"harness run did not pass ({rc.returncode}): {meta.get('summary')}")
        return meta

    print(f"[bench] harness cold build + boot of {args.target} ...", flush=True)
    first = harness_run()
    h_build = first["build"]["seconds"]

    raw_dir = work / "raw-build"
    old = str(bdir)
    build_cmds = [
        [c.replace(old, str(raw_dir)) for c in shlex.split(line)]
        for line in first["reproducer"]["build"]
    ]
    print(f"[bench] raw make into {raw_dir} ...", flush=True)
    with open(work / "raw-build.log", "w") as log:
        r_build = 0.0
        for cmd in build_cmds:
            cwd = src.tree if cmd[0].endswith("merge_config.sh") else None
            r_build += raw_step(cmd, log, cwd, env=env, timeout=None)

    # boots alternate harness / raw so that load from anything else hits both sides alike
    argv = shlex.split(first["reproducer"]["boot"])
    h_boots, r_boots = [], []
    for i in range(args.boots):
        h_boots.append(harness_run()["timings"]["boot_to_verdict"])
        with open(work / f"raw-console-{i}.log", "wb") as log:
            t0 = time.monotonic()
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=first.get("boot_timeout", 1200),
            )
            r_boots.append(time.monotonic() - t0)

    b_ratio = h_build / r_build
    v_ratio = med(h_boots) / med(r_boots)
    print(
        f"target {args.target}, kernel {first['kernel']['version']}, ccache "
        f"{'on' if args.ccache else 'off'}"
    )
    print(
        f"build:        harness {h_build:8.1f}s  raw make {r_build:8.1f}s  ratio {b_ratio:.3f}"
        f"  (goal <= 1.03) {'OK' if b_ratio <= 1.03 else 'OVER'}"
    )
    print(
        f"boot+verdict: harness {med(h_boots):8.1f}s  raw qemu {med(r_boots):8.1f}s  ratio "
        f"{v_ratio:.3f}  (goal <= 1.05) {'OK' if v_ratio <= 1.05 else 'OVER'}"
    )
    print(
        f"  harness boots {[round(x, 1) for x in h_boots]}, raw boots "
        f"{[round(x, 1) for x in r_boots]}"
    )
    shutil.rmtree(raw_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
