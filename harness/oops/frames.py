"""Call traces as data: one Frame per line, for every arch we boot.

Formats handled:
  x86_64/arm64/riscv  ` [<addr>] ? func+0x1/0x2 [mod] (P)`
  arm verbose         `[<c01>] (f) from [<c02>] (g+0x1/0x2)`
  arm short (6.x)     ` f from g+0x1/0x2`
  Xen                 `[<ffff82d0...>] R file.c#func+0x1/0x2` / `... (PC)`
  symbolised inlines  ` func file.c:12 [inline]`
"""

from __future__ import annotations

import re

from .model import Frame

_GENERIC = re.compile(
    r"^\s*(?:\[<(?P<addr>(?:0x)?[0-9a-f]+)>\]\s+)?(?P<q>\?\s+)?(?P<func>[A-Za-z0-9_.]+)"
    r"\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)"
    r"(?:\s+\[(?P<mod>[^\]\s]+)(?:\s+[0-9a-f]+)?\])?"
    r"(?:\s+(?P<file>[^\s:]+\.[a-zA-Z]+):(?P<line>\d+)(?::\d+)?)?"
    r"(?:\s+\((?P<tag>[A-Z]{1,3})\))?\s*$"
)
_ARM = re.compile(
    r"^\s*(?:\[<(?P<a1>[0-9a-f]+)>\] \()?(?P<f1>[A-Za-z0-9_.]+)(?:\+0x(?P<o1>[0-9a-f]+)/0x"
    r"(?P<s1>[0-9a-f]+))?"
    r"(?: \[(?P<m1>[^\]\s]+)\])?\)? from (?:\[<(?P<a2>[0-9a-f]+)>\] \()?(?P<f2>[A-Za-z0-9_.]+)"
    r"\+0x(?P<o2>[0-9a-f]+)/0x(?P<s2>[0-9a-f]+)(?: \[(?P<m2>[^\]\s]+)\])?\)?\s*$"
)
_XEN = re.compile(
    r"^\s*\[<(?P<addr>[0-9a-f]+)>\] (?:(?P<tag>[RFSCE]) )?(?:[^\s#]+#)?(?P<func>[A-Za-z0-9_.]+)"
    r"\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)(?: \((?P<tag2>PC|LR)\))?\s*$"
)
_INLINE = re.compile(
    r"^\s*(?P<func>[A-Za-z0-9_.]+) (?P<file>\S+):(?P<line>\d+)(?::\d+)? \[inline\]\s*$"
)
_START = re.compile(r"(?:Call (?:T|t)race:|Backtrace:|Xen call trace:)(?P<rest>.*)$")
# Lines that may sit inside a trace without ending it.
_MARKER = re.compile(
    r"^\s*(?:</?(?:TASK|IRQ|NMI|EOI|SOFTIRQ|#DF|#MC|DB|VE)>|Exception stack\(.*"
    r"|[0-9a-f]{3,4}:(?:\s+[0-9a-f]{8})*\s*|--- interrupt: .*"
    r"|(?:(?:r\d+|fp|ip|sp|lr|pc):[0-9a-f]{8}\s*)+|\s*)$"
)


def _int(value: str | None) -> int | None:
    return int(value, 16) if value else None


def parse_line(line: str) -> list[Frame] | None:
    """Frames on one trace line ([] for a marker line, None if not a trace line)."""
    m = _GENERIC.match(line)
    if m:
        return [
            Frame(
                function=m["func"],
                offset=_int(m["off"]),
                size=_int(m["size"]),
                module=m["mod"],
                reliable=m["q"] is None,
                address=m["addr"],
                file=m["file"],
                line=int(m["line"]) if m["line"] else None,
                tag=m["tag"],
            )
        ]
    m = _ARM.match(line)
    if m:
        first = Frame(m["f1"], _int(m["o1"]), _int(m["s1"]), m["m1"], address=m["a1"])
        second = Frame(m["f2"], _int(m["o2"]), _int(m["s2"]), m["m2"], address=m["a2"])
        return [first, second]
    m = _XEN.match(line)
    if m:
        return [
            Frame(
                m["func"],
                _int(m["off"]),
                _int(m["size"]),
                address=m["addr"],
                tag=m["tag"] or m["tag2"],
            )
        ]
    return None


# Lines after which no frame of the same trace can follow.
_END = re.compile(
    r"^\s*(?:---\[ end |Code: |Modules linked in|irq event stamp|R?IP: |pc : |Kernel panic"
    r"|Allocated by task|Freed by task|Call (?:T|t)race|Backtrace:|Xen call trace)"
)
MAX_STRAY_LINES = 2  # other CPUs' lines interleaved into a trace


def parse_trace(lines: list[str]) -> list[Frame]:
    """Frames of the first call trace in the report (unreliable ones included)."""
    frames: list[Frame] = []
    pending_inline: list[dict[str, object]] = []
    started = False
    stray = 0
    for line in lines:
        if not started:
            m = _START.search(line) if "race:" in line else None
            if m:
                line = m["rest"]
            elif not (" from " in line and _ARM.match(line)):
                continue  # (arm32's unwinder on 6.1 prints its frames with no header)
            started = True
            if not line.strip():
                continue
        m = _INLINE.match(line) if "[inline]" in line else None
        if m:
            pending_inline.append(
                {"function": m["func"], "file": m["file"], "line": int(m["line"])}
            )
            continue
        parsed = parse_line(line)
        if parsed is None:
            if _MARKER.match(line):
                continue
            stray += 1
            if stray > MAX_STRAY_LINES or _END.match(line):
                break
            continue
        stray = 0
        if len(parsed) == 2 and frames and frames[-1].function == parsed[0].function:
            parsed = parsed[1:]  # arm: the callee was the previous line's caller
        if pending_inline and parsed:
            parsed[0].inlined = pending_inline
            pending_inline = []
        frames.extend(parsed)
    return frames
