#!/usr/bin/env python3
"""A developer's loop, the harness against the raw steps, measured in one run.

- patch-to-verdict: a one-file mm change on a warm build. The harness side is
  `harness run TARGET -s boot --patch P`; the raw side applies P with `patch -p1`, runs the
  incremental `make` the harness recorded, boots the recorded `qemu-system-*` line on the
  image it built until QEMU exits, and reverts P. Each round's change is new (a static
  variable with a fresh value in mm/mremap.c), so neither make nor ccache can skip it.
- scenario switch: a canary and back. The harness side is `harness run TARGET -s CANARY`
  then `harness run TARGET -s boot`; the raw side applies the canary's patches (the ones
  the harness run recorded), makes, boots the canary's QEMU line, reverts, makes, boots
  the boot scenario's line.

Both sides build in the same build directory, as a developer's tree would; rounds
alternate harness and raw so that other load hits both alike; the medians are compared
(goal: <= 1.05x). Usage:
    .venv/bin/python bench/bench_loop.py [--target arm32-highmem-ci] [--rounds 3]
        [--canary pte-lockptr-highpte] [--kernel debian-6.12]
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
from typing import IO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import source  # noqa: E402
from harness.build import build_dir_for  # noqa: E402
from harness.config import load_target  # noqa: E402

CHANGED = "mm/mremap.c"


def raw_step(cmd: list[str], log: IO[str], cwd: Path | None = None,
             stdin: Path | None = None, *, env: dict[str, str] | None = None,
             timeout: float | None = 1800) -> float:  # fmt: skip
    """One raw command, timed; its output goes to the bench's raw.log."""
    t0 = time.monotonic()
    with open(stdin) if stdin else open(os.devnull) as fin:
        rc = subprocess.run(cmd, cwd=cwd, stdin=fin, stdout=log, stderr=subprocess.STDOUT,
                            env=env, timeout=timeout).returncode  # fmt: skip
    if rc:
        sys.exit(f"raw step failed ({rc}): {shlex.join(cmd)}; see {log.name}")
    return time.monotonic() - t0


def med(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.env = {**os.environ, "HARNESS_RESULTS": str(work / "results")}
        self.target = load_target(args.target)
        self.src = source.resolve(args.kernel)
        self.bdir = build_dir_for(self.target, self.src, source.cache_root())
        self.log = open(work / "raw.log", "w")  # noqa: SIM115 - lives as long as the bench

    def harness(self, scenario: str, *extra: str) -> tuple[float, dict]:
        """One `harness run`, wall time and its metadata.json."""
        cmd = [sys.executable, "-m", "harness.cli", "run", self.args.target, "-s", scenario,
               "-q", *extra]  # fmt: skip
        if self.args.kernel:
            cmd += ["--kernel", self.args.kernel]
        before = set((self.work / "results").glob("*"))
        t0 = time.monotonic()
        subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True)
        wall = time.monotonic() - t0
        (rdir,) = set((self.work / "results").glob("*")) - before
        meta = json.loads((rdir / "metadata.json").read_text())
        if meta.get("status") != "complete" or meta.get("exit_code") not in (0, 1):
            sys.exit(f"harness run {scenario} did not finish: {meta.get('summary')} ({rdir})")
        return wall, meta

    def raw(self, cmd: list[str], cwd: Path | None = None, stdin: Path | None = None) -> float:
        return raw_step(cmd, self.log, cwd, stdin)

    def raw_make(self, meta: dict) -> float:
        """The final make the harness recorded (configuring is not part of a developer's loop:
        the .config did not change)."""
        return self.raw(shlex.split(meta["reproducer"]["build"][-1]))

    def raw_boot(self, meta: dict) -> float:
        """The recorded QEMU line on the image just built (not the run's kept copy), until
        QEMU exits (the guest powers off, or panics with panic=-1 and -no-reboot)."""
        kept, built = meta["build"]["image"], meta["build"]["built_image"]
        argv = [a.replace(kept, built) for a in meta["boot"]["argv"]]
        return self.raw(argv)

    def patch(self, p: Path, *flags: str) -> float:
        return self.raw(["patch", "-p1", "--no-backup-if-mismatch", *flags], self.src.tree, p)

    def change(self, n: int) -> Path:
        """A unified diff that adds a fresh static variable at the end of mm/mremap.c."""
        path = self.src.tree / CHANGED
        if not path.exists():  # a git source's worktree is checked out by the first run
            self.harness("boot")
        lines = path.read_text().splitlines(keepends=True)
        tail, start = lines[-3:], len(lines) - 2
        new = f"static int harness_bench_{n} __used = {n};\n"
        diff = [f"--- a/{CHANGED}\n", f"+++ b/{CHANGED}\n",
                f"@@ -{start},{len(tail)} +{start},{len(tail) + 1} @@\n",
                *(" " + t for t in tail), "+" + new]  # fmt: skip
        out = self.work / f"change-{n}.patch"
        out.write_text("".join(diff))
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="arm32-highmem-ci")
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--canary", default="pte-lockptr-highpte")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-loop-"))
    b = Bench(args, work)
    print(f"[bench] warming {args.target} ({b.src.description}); work in {work}", flush=True)
    _, boot_meta = b.harness("boot")
    n = int(time.time())

    h_patch, r_patch = [], []
    for i in range(args.rounds):
        p = b.change(n + 2 * i)
        wall, meta = b.harness("boot", "--patch", str(p))
        assert meta["verdict"] == "pass", meta.get("summary")
        h_patch.append(wall)
        p = b.change(n + 2 * i + 1)
        t = b.patch(p)
        try:
            t += b.raw_make(boot_meta) + b.raw_boot(boot_meta)
        finally:
            t += b.patch(p, "-R")
        r_patch.append(t)
        print(f"[bench] patch round {i + 1}: harness {wall:.1f}s, raw {t:.1f}s", flush=True)

    h_switch, r_switch = [], []
    canary_meta: dict = {}
    for i in range(args.rounds):
        w1, canary_meta = b.harness(args.canary)
        w2, _ = b.harness("boot")
        h_switch.append(w1 + w2)
        patches = [Path(p["path"]) for p in canary_meta.get("patches") or []]
        t = 0.0
        for p in patches:
            t += b.patch(p)
        try:
            t += b.raw_make(canary_meta) + b.raw_boot(canary_meta)
        finally:
            for p in reversed(patches):
                t += b.patch(p, "-R")
        t += b.raw_make(boot_meta) + b.raw_boot(boot_meta)
        r_switch.append(t)
        print(f"[bench] switch round {i + 1}: harness {w1 + w2:.1f}s, raw {t:.1f}s", flush=True)

    print(f"target {args.target}, kernel {boot_meta['kernel']['version']}, "
          f"canary {args.canary} ({canary_meta.get('verdict')}), {args.rounds} rounds")  # fmt: skip
    rows = (("patch-to-verdict", h_patch, r_patch), ("scenario switch", h_switch, r_switch))
    for name, h, r in rows:
        ratio = med(h) / med(r)
        print(f"{name:17} harness {med(h):7.1f}s  raw {med(r):7.1f}s  ratio {ratio:.3f}  "
              f"(goal <= 1.05) {'OK' if ratio <= 1.05 else 'OVER'}")  # fmt: skip
        print(f"  harness {[round(x, 1) for x in h]}, raw {[round(x, 1) for x in r]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
