"""Find oops headers in a console log and cut out the lines of each report.

Scanning is done with `str.find` per trigger substring (C speed), so clean
megabytes cost almost nothing; only lines around a hit are split and
prefix-parsed, and only a bounded number of them per report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import formats as F
from . import prefix as P

MAX_SCAN_LINES = 4000  # console lines looked at per report
MAX_TEXT_LINES = 1500  # lines kept in one report
EXTRA_LINES = 600  # lines looked at past the end of a report
MAX_LINE_CHARS = 4096
REPLAY = "** replaying previous printk message **"
FOLLOW_GAP_LINES = 64  # a panic this many lines after a report still belongs to it
PREFIX_LOOKBACK = 6  # lines before the header searched for "cut here"


@dataclass
class Hit:
    """A console line that contains an oops header."""

    start: int
    end: int
    kind: F.Kind
    context: str
    line: str


@dataclass
class Region:
    """The lines that make up one report (console prefixes stripped).

    `display` is what the report shows: the oops itself, x86 `? func` frames
    included.  `body` is syzkaller's description text, which runs on to the
    next report header; `full` goes a little further still, for per-task
    (`[T123]`) logs and for the truncation check.
    """

    hit: Hit
    start: int
    end: int
    prefix: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    display: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)
    # Header lines swallowed by this report (follow-ups such as the panic).
    consumed: set[int] = field(default_factory=set)
    panic_line: str | None = None

    @property
    def per_task(self) -> bool:
        return per_task(self.hit)


def per_task(hit: Hit) -> bool:
    """CONFIG_PRINTK_CALLER logs: each task's lines form their own stream."""
    return hit.context not in ("", P.CONSOLE, P.XEN)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _line(text: str, start: int, end: int) -> str:
    # Serial consoles behind a pty end lines with "\r\r\n"; printk lines are
    # < 1 KB, so anything much longer is garbage and is cut for analysis.
    while end > start and text[end - 1] == "\r":
        end -= 1
    return text[start : min(end, start + MAX_LINE_CHARS)]


def _classify(line: str, context: str) -> F.Kind | None:
    xen = context == P.XEN
    for kind in F.KINDS:
        if kind.xen != xen or kind.header not in line:
            continue
        if kind.suppressions_re is not None and kind.suppressions_re.search(line):
            continue
        return kind
    return None


def _replayed(text: str, end: int) -> bool:
    """A line cut short and printed again: the next line says so."""
    return text.startswith(REPLAY, end + 1) or text.startswith(REPLAY, end + 2)


def find_hits(text: str) -> list[Hit]:
    """All header lines of the log, in order (at most one kind per line).

    Only real header lines are kept, so memory grows with the number of
    reports, not with the size of the log.
    """
    hits: dict[int, Hit] = {}
    for trigger in F.TRIGGERS:
        pos = text.find(trigger)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            end = _line_end(text, pos)
            if start not in hits:
                line = _line(text, start, end)
                context, _ = P.split(line)
                kind = _classify(line, context)
                if kind is not None and not _replayed(text, end):
                    hits[start] = Hit(start, end, kind, context, line)
            pos = text.find(trigger, end)
    return [hits[start] for start in sorted(hits)]


def _is_follow_up(hit: Hit, first: Hit) -> bool:
    if first.kind.xen:
        return hit.kind.xen
    return F.FOLLOW_UPS.search(hit.line) is not None


def _ends_report(hit: Hit, first: Hit) -> bool:
    """Whether header `hit` (after `first`) starts a report of its own."""
    if hit.kind.xen != first.kind.xen or _is_follow_up(hit, first):
        return False
    if first.context in ("", P.CONSOLE, P.XEN):
        return True
    return hit.context == first.context


def _min_lines(first: Hit) -> int:
    return 16 if "BUG: KMSAN:" in first.line else 22


# After "---[ end trace", x86 repeats the registers and the task exit notes.
_TAIL = re.compile(
    r"(?:RIP|RSP|R[A-D]X|RSI|RDI|RBP|R\d\d|[CDEFGS]S|CR\d|DR\d|PKRU|Code|pc|lr|sp|x\d+|pstate)\s?:"
    r"|note: |Kernel Offset|---\[ end |Fixing recursive fault"
)
QUIET_SECONDS = 5.0  # a printk gap this long ends a report


class _Display:
    """Decides where the report, as shown to people, ends."""

    def __init__(self, boxed: bool) -> None:
        self.boxed = boxed  # the report opened with a "=====" line
        self.after_end_trace = False
        self.last_time: float | None = None
        self.done = False

    def accept(self, stamp: float | None, stripped: str, is_first: bool) -> bool:
        """Whether a line still belongs to the displayed report."""
        if self.done:
            return False
        if stamp is not None:
            if self.last_time is not None and stamp - self.last_time > QUIET_SECONDS:
                self.done = True
                return False
            self.last_time = stamp
        if is_first:
            return True
        if self.after_end_trace and not _TAIL.match(stripped):
            self.done = True
            return False
        if stripped.startswith("=========="):
            self.done = True
            return self.boxed
        if stripped.startswith("---[ end trace"):
            self.after_end_trace = True
        return True


def build_region(
    text: str, first: Hit, hits_at: dict[int, Hit], floor: int, extra: int = EXTRA_LINES
) -> Region:
    """Collect the lines of the report that starts at `first`.

    Lines of other contexts and x86 `? func` frames are left out.  Like
    syzkaller, the text analysed for the title ends at the next report header
    (per task with CONFIG_PRINTK_CALLER) or where a panic follows enough
    report lines; the text shown ends earlier, at the end of the oops.
    """
    ctx = first.context
    region = Region(first, first.start, first.end)
    region.consumed.add(first.start)
    _add_prefix(text, region, floor)
    display = _Display(bool(region.prefix) and region.prefix[0].startswith("====="))
    cpu_traceback = False
    text_lines = 0
    cut = False
    after_display = 0
    console = not region.per_task
    min_lines = _min_lines(first)
    n = len(text)
    pos = first.start
    for _ in range(MAX_SCAN_LINES):
        # Inlined _iter_lines()/_line(): this loop runs for every report line.
        if pos > n or (pos == n and pos != first.start):
            break
        start = pos
        end = text.find("\n", pos)
        if end < 0:
            end = n
        pos = end + 1
        stop = end
        while stop > start and text[stop - 1] == "\r":
            stop -= 1
        line = text[start : min(stop, start + MAX_LINE_CHARS)]
        is_first = start == first.start
        line_ctx, stripped, stamp = P.split_stamped(line)
        other = None if is_first else hits_at.get(start)
        if not is_first and not cut:
            if other is not None and _ends_report(other, first):
                cut = True
            elif (
                console
                and ("ailure" in line or "FAULT_FLAG" in line)
                and F.INFO_WITH_STACK.search(line)
            ):
                cut = True
        if cut:
            extra -= 1
            if extra < 0:
                break
        if not is_first and not P.same_context(ctx, line_ctx, cpu_traceback):
            continue
        shown = not cut and display.accept(stamp, stripped, is_first)
        if not is_first and P.is_questionable(stripped, line_ctx):
            if shown:
                region.display.append(stripped)
            continue
        if display.done and not cut:
            after_display += 1
            if after_display > FOLLOW_GAP_LINES:
                break  # well past the end of the oops: nothing more to learn
        text_lines += 1
        if not is_first:
            if "Disabling lock debugging due to kernel taint" in line:
                continue
            if "Sending NMI from CPU" in line:
                cpu_traceback = True
            elif text_lines > min_lines and (
                F.PANIC_MARK in line
                or "WARNING: possible circular locking dependency detected" in line
            ):
                if F.PANIC_MARK in line and not cut and after_display <= FOLLOW_GAP_LINES:
                    region.consumed.add(start)
                    region.panic_line = stripped
                break
        region.full.append(stripped)
        if cut:
            continue
        region.body.append(stripped)
        if other is not None and _is_follow_up(other, first) and after_display <= FOLLOW_GAP_LINES:
            region.consumed.add(start)
            if F.PANIC_MARK in stripped and region.panic_line is None:
                region.panic_line = stripped
        if shown:
            region.display.append(stripped)
            region.end = end
        if first.kind.xen and (
            stripped.startswith("Reboot in ") or stripped.startswith("Manual reset required")
        ):
            break
        if len(region.body) >= MAX_TEXT_LINES:
            break
    return region


def _add_prefix(text: str, region: Region, floor: int) -> None:
    """Prepend the "cut here"/"=====" lines (and a WARN message) before the header."""
    ctx = region.hit.context
    pos = region.hit.start
    taken: list[tuple[int, str]] = []
    for _ in range(PREFIX_LOOKBACK):
        if pos <= floor or pos == 0:
            break
        start = text.rfind("\n", 0, pos - 1) + 1
        if start < floor:
            break
        line = _line(text, start, pos - 1)
        pos = start
        line_ctx, stripped = P.split(line)
        if line_ctx != ctx or not stripped.strip():
            continue
        taken.append((start, stripped))
        if "cut here" in stripped or stripped.startswith("====="):
            region.prefix = [s for _, s in reversed(taken)]
            region.start = start
            return
