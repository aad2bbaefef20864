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
    r"\[ *(\d+\.\d+)\](\[ *[CT]\d+\])? "
)
_LEVEL_ONLY = re.compile(r"<\d>(?!\[)")
_XEN = re.compile(r"\(XEN\) (?:\[[ \d.]+\] )?")
# A " ? " frame marker (x86 unreliable frames) after the prefix.
_QUESTIONABLE = re.compile(r"(?:\[<[0-9a-f]+>\])? \? ")
TASK_CONTEXT = re.compile(r"\[ *T\d+\]")
CPU_CONTEXT = re.compile(r"\[ *C\d+\]")


def split_stamped(line: str) -> tuple[str, str, float | None]:
    """Return (context, line without prefix, printk time or None)."""
    first = line[:1]
    if first == "[" or first == "<" or first == "*" or "login: " in line:
        m = _LINUX.match(line)
        if m:
            return (m.group(2) or CONSOLE), line[m.end() :], float(m.group(1))
        if first == "<":
            m = _LEVEL_ONLY.match(line)
            if m:
                return "", line[m.end() :], None
    elif first == "(" and line.startswith("(XEN)"):
        m = _XEN.match(line)
        return XEN, line[m.end() :] if m else line[5:].lstrip(), None
    return "", line, None


def split(line: str) -> tuple[str, str]:
    """Return (context, line without prefix) for one console line."""
    ctx, stripped, _ = split_stamped(line)
    return ctx, stripped


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
