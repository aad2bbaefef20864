#!/usr/bin/env python3
"""Regenerate the oops corpus from real boots: every report kind on every target.

    HARNESS_CACHE=... python3 tests/oops/corpus/regen.py [--targets T ...] [--kinds K ...]

Per target, one `harness run TARGET -s oops-kinds --patch oops-inject-6.12.patch
--cmdline oops_inject=KIND` builds the kernel (incrementally, in the target's normal
build directory) and boots the first kind; every further kind boots that same kernel
again through the harness's own QEMU command line and console reader, with only the
kernel command line changed. Each console is cut down to its reports (plus the
kernel's version line) and written to tests/golden/oops/corpus/TARGET/KIND.txt with
the header the parser gives it; a cell whose title is not the one tests/oops/
corpus_table.py expects is reported (and written, for review). The last lines list
the table of kinds x targets for docs/oops-corpus.md (also --table alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/oops: corpus_table

import corpus_table as C  # noqa: E402

from harness import console, qemu  # noqa: E402
from harness.config import load_scenario, load_target  # noqa: E402
from harness.oops import parse  # noqa: E402
from harness.oops.parser import parse_strict  # noqa: E402

PRE_LINES = 3  # console lines kept before a report
POST_LINES = 12  # and after it (the panic, Xen's crash note)
GAP_LINES = 24  # lines between two reports kept whole up to this many
# kept wherever they are: the version and command line, and the panic a report led to
# (a Xen dom0's comes many lines after its WARN)
KEEP = ("Linux version ", "oops_inject: ", "(XEN) Xen version", "Kernel command line:",
        "Kernel panic - not syncing", "Hardware Dom0 crashed", "Panic on CPU")  # fmt: skip


def log(msg: str) -> None:
    print(f"[regen {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def harness_env(results: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HARNESS_RESULTS"] = str(results)
    env["HARNESS_PATH"] = os.pathsep.join(
        p for p in (str(C.HARNESS_PATH), env.get("HARNESS_PATH", "")) if p
    )
    return env


def build_and_boot(target: str, kind: C.Kind, results: Path) -> Path:
    """`harness run` with the injection patch: the build, and the first kind's boot."""
    before = set(results.glob(f"*-{target}-{C.SCENARIO}-*"))
    argv = [sys.executable, "-m", "harness.cli", "run", target, "-s", C.SCENARIO, "-q",
            "--patch", str(C.PATCH), "--cmdline", kind.boot_args]  # fmt: skip
    log(f"{target}: harness run ({kind.name})")
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=C.REPO, env=harness_env(results), text=True,
                          capture_output=True)  # fmt: skip
    runs = sorted(set(results.glob(f"*-{target}-{C.SCENARIO}-*")) - before)
    if not runs or not (runs[-1] / "kernel").is_dir():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{target}: harness run failed (exit {proc.returncode})")
    meta = json.loads((runs[-1] / "metadata.json").read_text())
    t = meta.get("timings", {})
    log(f"{target}: build {t.get('build')}s ({meta['build']['steps']} steps), "
        f"boot {t.get('boot')}s, {time.monotonic() - t0:.0f}s in all")  # fmt: skip
    return runs[-1]


def boot_again(run: Path, target: str, kind: C.Kind, out: Path) -> str:
    """Boot the run's kernel and initramfs again with KIND on the command line."""
    meta = json.loads((run / "metadata.json").read_text())
    tgt = load_target(target)
    scen = load_scenario(C.SCENARIO)
    image = run / "kernel" / Path(tgt.image).name
    hv = meta["boot"].get("hypervisor", {}).get("image")
    cmdline = qemu.kernel_cmdline(tgt, scen.cmdline, kind.boot_args)
    argv = qemu.command_line(tgt, image, run / "initramfs.cpio.gz", cmdline,
                             meta["boot"]["accel"], Path(hv) if hv else None)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    log(f"{target}: boot {kind.name}")
    res = console.boot(argv, out / "console.log", meta["run_id"][-6:],
                       total_timeout=tgt.boot_timeout, silence_timeout=tgt.silence_timeout,
                       crash_quiet=tgt.crash_quiet, quiet=True)  # fmt: skip
    log(f"{target}: {kind.name}: {res.ending} after {res.seconds:.0f}s")
    return (out / "console.log").read_bytes().decode("utf-8", "replace")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def trim(text: str) -> str:
    """The console's reports, their surroundings and the version line, nothing else."""
    text = text.replace("\r", "")
    lines = text.split("\n")
    keep = {i for i, line in enumerate(lines) if any(k in line for k in KEEP)}
    spans = []
    for rep in parse_strict(text):
        spans.append((max(0, _line_of(text, rep.start) - PRE_LINES),
                      min(len(lines) - 1, _line_of(text, rep.end) + POST_LINES)))  # fmt: skip
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] <= GAP_LINES:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in merged:
        keep.update(range(a, b + 1))
    return "\n".join(lines[i] for i in sorted(keep)) + "\n"


def check_options(target: C.Target, run: Path) -> None:
    """The table's idea of the target's options must be its .config's."""
    meta = json.loads((run / "metadata.json").read_text())
    config = Path(meta["build"]["dir"]) / ".config"
    have = {ln.split("=")[0] for ln in config.read_text().splitlines() if ln.endswith(("=y", "=m"))}
    table = set(target.options)
    wrong = sorted((set(C.OPTIONS) & have) ^ table)
    if wrong:
        raise SystemExit(f"{target.name}: corpus_table.py's options are wrong about {wrong}")


def write_golden(target: C.Target, kind: C.Kind, text: str, run: Path) -> tuple[str, bool]:
    full = parse(text.replace("\r", ""))
    cut = trim(text)
    reports = parse(cut)

    def key(reps: list) -> list:
        return [(r.title, r.count, r.panicked, r.corrupted, r.notes) for r in reps]

    same = key(reports) == key(full)
    if not same:  # the cut lost context: keep the console whole
        log(f"{target.name}: {kind.name}: the cut changes the reports, kept whole")
        cut, reports = text.replace("\r", ""), full
    meta = json.loads((run / "metadata.json").read_text())
    comments = [
        f"# oops corpus: kind {kind.name} ({kind.what}) on target {target.name}",
        f"# kernel {meta['kernel']['version']}, cmdline +{kind.boot_args}; a real boot, cut to "
        "its reports",
        f"# regenerate: tests/oops/corpus/regen.py --targets {target.name} --kinds {kind.name}",
    ]
    path = C.golden_path(target.name, kind.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(comments + C.header(reports)) + "\n\n" + cut)
    got = reports[0].title if reports else ""
    return got, got == C.expected_title(target, kind)


def table() -> str:
    """Markdown: one row per kind, one column per target, the title (or why not)."""
    cols = [t.name for t in C.TARGETS]
    out = ["| kind | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for kind in C.KINDS:
        cells = []
        for t in C.TARGETS:
            path = C.golden_path(t.name, kind.name)
            why = C.missing(t, kind)
            if why:
                cells.append("n/a: " + why)
            elif path.exists():
                title = next((ln[7:] for ln in path.read_text().splitlines()
                              if ln.startswith("TITLE: ")), "")  # fmt: skip
                cells.append(f"`{title}`" if title else "(no report)")
            else:
                cells.append("(not generated)")
        out.append(f"| {kind.name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=[t.name for t in C.TARGETS])
    ap.add_argument("--kinds", nargs="+", default=[k.name for k in C.KINDS])
    ap.add_argument("--results", type=Path, default=Path(os.environ.get(
        "HARNESS_RESULTS", "/tmp/oops-corpus-results")), help="where the runs go")  # fmt: skip
    ap.add_argument("--reuse", type=Path, help="boot this run's kernel instead of building")
    ap.add_argument("--table", action="store_true", help="only print the table")
    args = ap.parse_args()
    if args.table:
        print(table(), end="")
        return 0
    args.results.mkdir(parents=True, exist_ok=True)
    os.environ["HARNESS_PATH"] = harness_env(args.results)["HARNESS_PATH"]  # for load_*()
    bad = []
    for tname in args.targets:
        target = C.TARGET_BY_NAME[tname]
        kinds = [C.BY_NAME[k] for k in args.kinds if not C.missing(target, C.BY_NAME[k])]
        if not kinds:
            continue
        run = args.reuse
        first = None
        if run is None:
            first = kinds[0]
            run = build_and_boot(tname, first, args.results)
        check_options(target, run)
        for kind in kinds:
            if kind is first:
                text = (run / "console.log").read_bytes().decode("utf-8", "replace")
            else:
                out = args.results / f"boots-{tname}" / kind.name
                text = boot_again(run, tname, kind, out)
            got, ok = write_golden(target, kind, text, run)
            log(f"{tname}: {kind.name}: {'ok' if ok else 'UNEXPECTED'}: {got!r}")
            if not ok:
                bad.append((tname, kind.name, got, C.expected_title(target, kind)))
    for t, k, got, want in bad:
        print(f"unexpected title: {t} {k}: {got!r}, expected {want!r}", file=sys.stderr)
    print(table(), end="")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
