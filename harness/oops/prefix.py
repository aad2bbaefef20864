"""Console line prefixes: printk timestamps, caller ids, log levels, `(XEN)`.

The *context* of a line decides which lines belong to one report when CPUs
and tasks interleave: `[T123]`/`[C1]` from CONFIG_PRINTK_CALLER, "console"
when only a timestamp is present, "xen" for hypervisor lines and "" for bare
lines.  This mirrors syzkaller's rule so that reports of interleaved tasks are
kept apart.
"""

from __future__ import annotations

import re

CONSOLE = "console"
XEN = "xen"

# "** 5 printk messages dropped ** ", a "login: " echo, "<6>", "[  1.2]" and an
# optional "[T12]"/"[C1]" caller id.  Only a timestamped line has a context.
_LINUX = re.compile(
    r"(?:\*\* \d+ printk messages dropped \*\* )?(?:.* login: )?(?:<\d+>)?"
    r"\[ *\d+\.\d+\](\[ *[CT]\d+\])? "
)
_LEVEL_ONLY = re.compile(r"<\d>(?!\[)")
_XEN = re.compile(r"\(XEN\) (?:\[[ \d.]+\] )?")
# A " ? " frame marker (x86 unreliable frames) after the prefix.
_QUESTIONABLE = re.compile(r"(?:\[<[0-9a-f]+>\])? \? ")
TASK_CONTEXT = re.compile(r"\[ *T\d+\]")
CPU_CONTEXT = re.compile(r"\[ *C\d+\]")


def split(line: str) -> tuple[str, str]:
    """Return (context, line without prefix) for one console line."""
    first = line[:1]
    if first == "[" or first == "<" or first == "*" or "login: " in line:
        m = _LINUX.match(line)
        if m:
            return (m.group(1) or CONSOLE), line[m.end() :]
        if first == "<":
            m = _LEVEL_ONLY.match(line)
            if m:
                return "", line[m.end() :]
    elif first == "(" and line.startswith("(XEN)"):
        m = _XEN.match(line)
        return XEN, line[m.end() :] if m else line[5:].lstrip()
    return "", line


_STAMP = re.compile(r"(?:<\d+>)?\[ *(\d+\.\d+)\]")


def timestamp(line: str) -> float | None:
    """printk time of a line in seconds, if it has one."""
    if line[:1] not in ("[", "<"):
        return None
    m = _STAMP.match(line)
    return float(m.group(1)) if m else None


def context_of(line: str) -> str:
    """Return only the context of a console line."""
    return split(line)[0]


def is_questionable(stripped: str, context: str) -> bool:
    """True for x86 `? func` frames, which syzkaller ignores when a prefix exists."""
    if not context or context == XEN or "<EOI>" in stripped:
        return False
    return " ? " in stripped and _QUESTIONABLE.search(stripped) is not None


def same_context(report_ctx: str, line_ctx: str, cpu_traceback: bool) -> bool:
    """Whether a line of context `line_ctx` belongs to a report of `report_ctx`."""
    if line_ctx == report_ctx:
        return True
    return cpu_traceback and CPU_CONTEXT.fullmatch(line_ctx) is not None
