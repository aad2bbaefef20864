"""Throughput and memory of the oops parser on big console logs.

    python3 bench/bench_oops.py [--sizes 8 64] [--repeat 3]

Logs are built from the QEMU boot logs in tests/golden/oops: "nightly" is
boot noise with a handful of crashes (what a long run produces), "dense"
has a crash every ~30 KB (a worst case).  Peak memory is what parse()
allocates on top of the log text itself, measured with tracemalloc in a
separate run so that tracing does not slow the timed runs down.  Target:
>= 20 MB/s on nightly logs, and peak memory that does not grow with the log
size (for dense logs it grows with the number of reports, which are kept).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.oops import parse  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "oops"


def _logs() -> tuple[list[str], list[str]]:
    clean, crashing = [], []
    for path in sorted(GOLDEN.glob("*.txt")):
        header, _, log = path.read_text(errors="replace").partition("\n\n")
        (clean if header.strip() == "TITLE:" else crashing).append(log)
    return clean, crashing


def build(size_mb: int, mix: str) -> str:
    """A console log of about `size_mb` MB."""
    clean, crashing = _logs()
    target = size_mb * 1024 * 1024
    parts: list[str] = []
    total = 0
    if mix == "dense":
        unit = "".join(clean[:1] + crashing)
        while total < target:
            parts.append(unit)
            total += len(unit)
        return "".join(parts)
    noise = "".join(clean)
    crashes = iter(crashing * 2)
    step = max(1, target // (len(noise) * 8))
    i = 0
    while total < target:
        parts.append(noise)
        total += len(noise)
        i += 1
        if i % step == 0:
            crash = next(crashes, None)
            if crash:
                parts.append(crash)
                total += len(crash)
    return "".join(parts)


def measure(text: str, repeat: int) -> tuple[float, int, int]:
    """(best MB/s, reports found, peak bytes allocated by parse)."""
    best = float("inf")
    reports = 0
    for _ in range(repeat):
        start = time.perf_counter()
        reports = len(parse(text))
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    parse(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(text) / 1e6 / best, reports, peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64], help="log sizes in MB")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'mix':8} {'size MB':>8} {'MB/s':>8} {'reports':>8} {'peak MB':>8}")
    slow = False
    for mix in ("nightly", "dense"):
        for size in args.sizes:
            text = build(size, mix)
            rate, reports, peak = measure(text, args.repeat)
            slow |= mix == "nightly" and rate < 20
            print(f"{mix:8} {len(text) / 1e6:8.1f} {rate:8.1f} {reports:8d} {peak / 1e6:8.2f}")
    print("target: >= 20 MB/s on nightly logs" + ("  (NOT MET)" if slow else "  (met)"))
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
