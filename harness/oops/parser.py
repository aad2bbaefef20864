"""parse(): console log text -> list of Reports, in log order."""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable

from . import fields as fields_mod
from . import formats as F
from . import paths, segment
from . import prefix as P
from . import title as T
from .frames import parse_trace
from .model import Report

log = logging.getLogger(__name__)

_BANNER = re.compile(r"Linux version (\S+)")
_XEN_PANIC = re.compile(r"Panic on CPU \d+:")


def parse(text: str, *, merge: bool = True, source_prefixes: Iterable[str] = ()) -> list[Report]:
    """Every crash report in a console log, in order, repeats merged.  Never raises.

    One report per bug: later reports with the title of an earlier one are folded
    into it (`count`), so a bug hit at every exec is one report "x6", shown as its
    first occurrence.  `source_prefixes` are the spellings of the kernel tree a
    build prints (paths.prefixes_for); report texts name files relative to it.

    A parser bug is logged and yields no reports rather than killing a run
    that already has a console log worth keeping.
    """
    try:
        return parse_strict(text, merge=merge, source_prefixes=source_prefixes)
    except Exception:  # pragma: no cover - a parser bug must not kill a run
        log.exception("oops parser failed; reporting what could be parsed")
        return []


def merge_repeats(reports: list[Report]) -> list[Report]:
    """Fold each report into the first earlier one with the same title.

    The first occurrence is kept in full; it counts the others (`count`), remembers
    where they start (`repeats`), and takes their notes and a panic that followed one.
    """
    first: dict[str, Report] = {}
    out: list[Report] = []
    for rep in reports:
        seen = first.get(rep.title)
        if seen is None:
            first[rep.title] = rep
            out.append(rep)
            continue
        seen.count += rep.count
        seen.repeats.append(rep.start)
        seen.panicked = seen.panicked or rep.panicked
        seen.notes.extend(n for n in rep.notes if n not in seen.notes)
    return out


def _find_all(text: str, needle: str) -> list[int]:
    out = []
    pos = text.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = text.find(needle, pos + len(needle))
    return out


class _BootVersion:
    """Kernel release from the last "Linux version" banner before a position.

    Reports come in log order, so each stretch of the log is searched once.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.searched = 0
        self.version: str | None = None

    def before(self, pos: int) -> str | None:
        if pos > self.searched:
            at = self.text.rfind("Linux version ", self.searched, pos)
            m = _BANNER.match(self.text, at) if at >= 0 else None
            if m:
                self.version = m.group(1)
            self.searched = pos
        return self.version


def parse_strict(
    text: str, *, merge: bool = False, source_prefixes: Iterable[str] = ()
) -> list[Report]:
    """Like parse(), but lets parser bugs raise and keeps repeats apart by default
    (for tests and fuzzing)."""
    reports = _parse(text)
    prefixes = tuple(source_prefixes)
    for rep in reports:
        rep.text = paths.tree_relative(rep.text, prefixes)
        rep.notes = [paths.tree_relative(n, prefixes) for n in rep.notes]
    return merge_repeats(reports) if merge else reports


def _parse(text: str) -> list[Report]:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise TypeError("parse() takes the console log as str")
    hits = segment.find_hits(text)
    if not hits:
        return []
    hits_at = {h.start: h for h in hits}
    panics = sorted(
        _find_all(text, F.PANIC_MARK) + [h.start for h in hits if h.kind.xen and _is_fatal_xen(h)]
    )
    boot = _BootVersion(text)
    reports: list[Report] = []
    last: dict[bool, tuple[Report, segment.Region] | None] = {False: None, True: None}
    consumed: set[int] = set()
    floor = 0
    for hit in hits:
        if hit.start in consumed:
            continue
        prev = last[False]
        if hit.kind.xen and F.DOM0_CRASHED.search(hit.line) and prev is not None:
            rep = _dom0_culprit(reports) or prev[0]
            rep.notes.append(P.split(hit.line)[1])
            rep.panicked = True
            continue
        prev = last[hit.kind.xen]
        if prev is not None and _follows(text, prev[1], hit):
            if F.PANIC_MARK in hit.line or _XEN_PANIC.search(hit.line):
                prev[0].notes.append(P.split(hit.line)[1])
            continue
        extra = segment.EXTRA_LINES if segment.per_task(hit) else 0
        region = segment.build_region(text, hit, hits_at, floor, extra)
        consumed |= region.consumed
        rep, fmt = _make_report(region, panics, boot)
        if rep.corrupted and not extra and rep.corrupted_reason in T.STACK_REASONS:
            # Like syzkaller, look past the next report before calling it truncated.
            wide = segment.build_region(text, hit, hits_at, floor)
            reason = T.check_corrupted(rep.title, "\n".join(wide.full) + "\n", fmt)
            rep.corrupted, rep.corrupted_reason = bool(reason), reason
        reports.append(rep)
        last[hit.kind.xen] = (rep, region)
        floor = max(floor, region.end)
    return reports


def _is_fatal_xen(hit: segment.Hit) -> bool:
    return bool(_XEN_PANIC.search(hit.line) or F.DOM0_CRASHED.search(hit.line))


def _follows(text: str, prev: segment.Region, hit: segment.Hit) -> bool:
    """A follow-up header (panic, Internal error...) shortly after a report."""
    if hit.kind.xen:
        follow = prev.hit.kind.xen
    else:
        follow = F.FOLLOW_UPS.search(hit.line) is not None
    if not follow or hit.start < prev.start:
        return False
    if hit.start - prev.end > segment.FOLLOW_GAP_LINES * 1024:  # printk lines are < 1 KB
        return False
    return text.count("\n", prev.end, hit.start) <= segment.FOLLOW_GAP_LINES


def _make_report(
    region: segment.Region, panics: list[int], boot: _BootVersion
) -> tuple[Report, F.Format | None]:
    hit = region.hit
    full = "\n".join(region.full) + "\n"
    desc = T.describe(full if region.per_task else "\n".join(region.body) + "\n", hit.kind)
    raw_title = desc.title or (region.body[0] if region.body else hit.line)
    corrupted = desc.corrupted or T.check_corrupted(raw_title, full, desc.fmt)
    title = T.normalize(raw_title)
    alts = sorted({T.normalize(a) for a in (desc.alt_titles or [])} - {""})
    lines = region.prefix + region.display
    f = fields_mod.extract(lines, xen=hit.kind.xen)
    version = f.version
    if version is None and not hit.kind.xen:
        version = boot.before(hit.start)
    rep = Report(
        title=title,
        alt_titles=alts,
        type=T.title_type(title),
        frame=T.frame_of(title),
        corrupted=bool(corrupted),
        corrupted_reason=corrupted,
        panicked=bisect.bisect_left(panics, region.start) < len(panics),
        start=region.start,
        end=region.end,
        text="\n".join(lines) + "\n",
        version=version,
        cpu=f.cpu,
        pid=f.pid,
        comm=f.comm,
        tainted=f.tainted,
        hardware=f.hardware,
        fault_address=f.fault_address,
        registers=f.registers,
        code=f.code,
        frames=parse_trace(region.display),
        arch=f.arch,
        pc=f.pc,
        lr=f.lr,
    )
    if region.panic_line:
        rep.notes.append(region.panic_line)
    _complete_top_frame(rep)
    return rep, desc.fmt


def _complete_top_frame(rep: Report) -> None:
    """arm traces print the top function without offset; `PC is at` has it."""
    if not rep.frames or not rep.pc or rep.frames[0].offset is not None:
        return
    m = re.match(r"([\w.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)", rep.pc)
    if m and m.group(1) == rep.frames[0].function:
        rep.frames[0].offset = int(m.group(2), 16)
        rep.frames[0].size = int(m.group(3), 16)


# follow-on reports (a WARN or might_sleep splat while the dying task exits) are not
# what crashed dom0; the first fatal report since the last Xen note is
_NON_FATAL_TYPES = {"WARNING", "ATOMIC_SLEEP", "LOCKDEP", "REFCOUNT_WARNING", "UBSAN", "LEAK"}


def _dom0_culprit(reports: list[Report]) -> Report | None:
    """The dom0 report Xen's 'Hardware Dom0 crashed' line belongs to."""
    fresh = [r for r in reports if not any("Dom0 crashed" in n for n in r.notes)]
    fatal = [r for r in fresh if r.panicked and r.type not in _NON_FATAL_TYPES]
    return fatal[0] if fatal else None
