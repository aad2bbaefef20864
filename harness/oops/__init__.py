"""Oops parser: console logs to structured, syzkaller-style crash reports.

    from harness.oops import parse
    for report in parse(console_text):
        print(report.title, report.type, report.cpu, report.frames[:3])

Modules: prefix (printk prefixes and contexts), segment (finding reports),
formats + stack (the declarative oops table and guilty-frame rules), title
(titles, normalisation, types), fields and frames (structured data),
symbolize (addr2line), cmd (`harness parse`).
"""

from .model import Frame, Report
from .parser import parse

__all__ = ["Frame", "Report", "parse"]
