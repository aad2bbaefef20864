"""`harness parse LOG|-`: print the crash reports found in a console log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from . import parse
from .model import Report
from .symbolize import symbolize

EXIT_NONE, EXIT_FOUND, EXIT_INPUT = 0, 1, 4


def register(subparsers: Any) -> None:
    """Add the `parse` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "parse",
        help="find crash reports (oops, WARN, lockdep, ...) in a console log",
        description="Exit status: 0 no report, 1 reports found, 4 unreadable input.",
    )
    p.add_argument("log", help="console log file, or - for standard input")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--vmlinux", type=Path, help="vmlinux of the kernel, to add file:line to frames")
    p.add_argument("--addr2line", default="addr2line", help="addr2line of the target toolchain")
    p.set_defaults(func=handler)


def _read(name: str) -> str:
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    return data.decode("utf-8", "replace")


def handler(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the subcommand; returns the exit code."""
    out = out or sys.stdout
    try:
        text = _read(args.log)
    except OSError as exc:
        print(f"harness parse: cannot read {args.log}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    reports = parse(text)
    if args.vmlinux:
        symbolize(reports, args.vmlinux, args.addr2line)
    if args.json:
        json.dump({"log": args.log, "reports": [r.to_dict() for r in reports]}, out, indent=2)
        out.write("\n")
    else:
        for i, rep in enumerate(reports):
            if i:
                out.write("\n")
            out.write(render(rep, text, i + 1, len(reports)))
        if not reports:
            out.write(f"{args.log}: no crash report found\n")
    return EXIT_FOUND if reports else EXIT_NONE


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def render(rep: Report, log_text: str = "", index: int = 1, total: int = 1) -> str:
    """Human-readable report: a syzkaller-style header, key fields, call trace."""
    lines = [f"TITLE: {rep.title}"]
    lines += [f"ALT: {alt}" for alt in rep.alt_titles]
    lines += [f"TYPE: {rep.type}", f"FRAME: {rep.frame}"]
    corrupted = _yn(rep.corrupted) + (f" ({rep.corrupted_reason})" if rep.corrupted else "")
    lines += [f"CORRUPTED: {corrupted}", f"PANICKED: {_yn(rep.panicked)}"]
    where = f"report {index} of {total}"
    if log_text:
        first = log_text.count("\n", 0, rep.start) + 1
        last = log_text.count("\n", 0, rep.end) + 1
        where += f", log lines {first}-{last}"
    lines.append(f"WHERE: {where}")
    if rep.count > 1:
        again = ""
        if log_text and rep.repeats:
            again = ", again at log lines " + ", ".join(
                str(log_text.count("\n", 0, pos) + 1) for pos in rep.repeats
            )
        lines.append(f"SEEN: x{rep.count} (repeats merged, the first is shown{again})")
    fields = [
        ("ARCH", rep.arch),
        ("VERSION", rep.version),
        ("CPU", rep.cpu),
        ("PID", rep.pid),
        ("COMM", rep.comm),
        ("TAINTED", rep.tainted if rep.tainted else "not tainted" if rep.version else None),
        ("HARDWARE", rep.hardware),
        ("FAULT ADDRESS", rep.fault_address),
        ("PC", rep.pc),
        ("LR", rep.lr),
        ("CODE", rep.code),
    ]
    lines += [f"{key}: {value}" for key, value in fields if value is not None]
    lines += [f"NOTE: {note}" for note in rep.notes]
    if rep.registers:
        regs = [f"{k}={v}" for k, v in rep.registers.items()]
        lines.append("REGISTERS:")
        lines += ["  " + " ".join(regs[i : i + 4]) for i in range(0, len(regs), 4)]
    if rep.frames:
        lines.append("CALL TRACE:")
        for frame in rep.frames:
            for inl in frame.inlined:
                lines.append(f"  {inl['function']} {inl['file']}:{inl['line']} [inline]")
            text = ("? " if not frame.reliable else "") + frame.location()
            if frame.file:
                text += f" {frame.file}" + (f":{frame.line}" if frame.line else "")
            if frame.tag:
                text += f" ({frame.tag})"
            lines.append("  " + text)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m harness.oops.cmd parse LOG`."""
    parser = argparse.ArgumentParser(prog="harness")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
