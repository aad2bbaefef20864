"""A report as a person reads it: syzkaller's header lines, key fields, the call trace.

Used by `harness parse`, report.txt and the mails alike.
"""

from __future__ import annotations

from .model import Report


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
