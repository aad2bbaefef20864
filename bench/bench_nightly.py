#!/usr/bin/env python3
"""A nightly against the raw steps it stands for, measured in one run.

`harness nightly` over TARGETS x SCENARIOS (one run at a time, no fetch), then a raw
replay of every run it made, in the order they ran: the run's patches applied with
`patch -p1`, the incremental `make` it recorded, its `qemu-system-*` line on the image
just built until QEMU exits, the patches reverted. The ratio is the nightly's wall time
over the replay's (goal: <= 1.05x); the rest is what the nightly adds (checkout, the
worker processes, retries, classification, history and reports). Usage:
    .venv/bin/python bench/bench_nightly.py --kernel ~/linux --ref v6.12 \
        [--targets arm32-highmem-ci arm64-bbml2-ci] [--scenarios boot smoke pte-lockptr-highpte]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import REPO, raw_step  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True, help="a git tree")
    ap.add_argument("--ref", required=True)
    ap.add_argument("--targets", nargs="+", default=["arm32-highmem-ci", "arm64-bbml2-ci"])
    ap.add_argument("--scenarios", nargs="+", default=["boot", "smoke", "pte-lockptr-highpte"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-nightly-"))
    env = {**os.environ, "HARNESS_RESULTS": str(work / "results")}
    cmd = [sys.executable, "-m", "harness.cli", "nightly", "--kernel", args.kernel,
           "--ref", args.ref, "--no-fetch", "--parallel", "1", "--targets", *args.targets,
           "--scenarios", *args.scenarios]  # fmt: skip
    print(f"[bench] harness nightly ({len(args.targets)} x {len(args.scenarios)}); work in {work}",
          flush=True)  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - t0
    (folder,) = (work / "results").glob("nightly-*")
    summary = json.loads((folder / "summary.json").read_text())
    if proc.returncode not in (0, 1):
        sys.exit(f"the nightly failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")

    runs = []
    for cell in summary["cells"]:
        for a in cell["attempts"]:
            rdir = a.get("results_dir")
            meta_file = Path(rdir) / "metadata.json" if rdir else None
            if meta_file and meta_file.exists():
                meta = json.loads(meta_file.read_text())
                if meta.get("boot", {}).get("argv"):
                    runs.append(meta)
    runs.sort(key=lambda m: m.get("started", ""))
    log = open(work / "raw.log", "w")  # noqa: SIM115
    raw = {"patch": 0.0, "make": 0.0, "boot": 0.0}
    for meta in runs:
        tree = Path(meta["kernel"]["tree"])
        patches = [Path(p["path"]) for p in meta.get("patches") or []]
        for p in patches:
            raw["patch"] += raw_step(["patch", "-p1", "--no-backup-if-mismatch"], log, tree, p)
        try:
            raw["make"] += raw_step(shlex.split(meta["reproducer"]["build"][-1]), log)
            kept, built = meta["build"]["image"], meta["build"]["built_image"]
            raw["boot"] += raw_step([x.replace(kept, built) for x in meta["boot"]["argv"]], log)
        finally:
            for p in reversed(patches):
                raw["patch"] += raw_step(["patch", "-p1", "-R", "--no-backup-if-mismatch"], log,
                                         tree, p)  # fmt: skip
    total = sum(raw.values())
    ratio = wall / total
    print(f"nightly {len(summary['cells'])} cells, {len(runs)} runs booted (exit "
          f"{proc.returncode}): harness {wall:.1f}s  raw replay {total:.1f}s  ratio {ratio:.3f}  "
          f"(goal <= 1.05) {'OK' if ratio <= 1.05 else 'OVER'}")  # fmt: skip
    # where the difference goes: the runs' own build and boot, each run's set-up and
    # reports, and the nightly's own work (checkout, classification, history, reports)
    h_build = sum(m["build"]["seconds"] for m in runs)
    h_boot = sum(m["timings"]["boot_to_verdict"] for m in runs)
    spans = [(_t(m["started"]), _t(m["finished"])) for m in runs]
    in_runs = sum(b - a for a, b in spans)
    print(
        f"  builds: harness {h_build:.1f}s, raw make {raw['make']:.1f}s; boots to verdict: "
        f"harness {h_boot:.1f}s, raw qemu {raw['boot']:.1f}s; raw patch {raw['patch']:.1f}s"
    )
    print(f"  inside the runs besides build and boot: {in_runs - h_build - h_boot:.1f}s; "
          f"the nightly outside its runs: {wall - in_runs:.1f}s")  # fmt: skip
    return 0


def _t(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


if __name__ == "__main__":
    sys.exit(main())
