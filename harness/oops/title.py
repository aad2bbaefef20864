"""Titles: pick the format, extract the guilty frame, normalise, classify.

A title is `kind in guilty_function`.  The guilty function is the first frame
that survives the skip list (locking, printk, allocator and trap helpers...),
so that the same bug reached through different helpers dedups to one title.
Numbers and addresses are then normalised away (`NUM`, `ADDR`, `LINE`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from . import formats as F
from . import stack as S
from .demangle import demangle

CORRUPTED_NO_FRAMES = "extracted no frames"


@dataclass
class Description:
    """Result of matching one report against its kind's formats."""

    title: str = ""
    alt_titles: list[str] | None = None
    corrupted: str = ""
    fmt: F.Format | None = None


@cache
def _skip_re(extra: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(S.SKIP + extra))


def _strip_prefix(frame: str) -> str:
    best = frame
    for prefix in S.STRIP_PREFIXES:
        if frame.startswith(prefix) and len(frame) - len(prefix) < len(best):
            best = frame[len(prefix) :]
    return best


# Frame names repeat across reports (dump_stack, panic...) and the skip list
# is one long alternation, slow to search: remember each answer, per skip
# list (those are cached for good, so their ids are stable).  Bounded by the
# number of distinct kernel symbols; cleared if a log is pathological.
_SKIPPED: dict[int, dict[str, bool]] = {}
_SKIPPED_MAX = 1 << 16


def _skipped(skip: re.Pattern[str], name: str) -> bool:
    known = _SKIPPED.get(id(skip))
    if known is None:
        known = _SKIPPED[id(skip)] = {}
    hit = known.get(name)
    if hit is None:
        if len(known) >= _SKIPPED_MAX:
            known.clear()
        hit = known[name] = skip.search(name) is not None
    return hit


def _append(frames: list[str], match: re.Match[str], skip: re.Pattern[str]) -> None:
    for group in match.groups():
        if not group:
            continue
        name = demangle(group)
        if not _skipped(skip, name):
            frames.append(name)


def _matches_any(line: str, patterns: tuple[re.Pattern[str], ...]) -> bool:
    return any(p.search(line) for p in patterns)


_STACK_START_ANY = re.compile(
    "|".join(f"(?:{p.pattern})" for p in S.STACK_START) + "|Xen call trace:"
)


def _stack_start(line: str) -> bool:
    """_STACK_START_ANY.search(line), with a cheap test for the usual no."""
    if not (
        "Call " in line
        or "Allocated" in line
        or "Freed" in line
        or "acktrace" in line
        or "Uninit" in line
        or "badaddr" in line
        or "Xen call" in line
    ):
        return False
    return _STACK_START_ANY.search(line) is not None


def _corrupted_line(line: str) -> bool:
    return "should_fail" in line and _matches_any(line, S.CORRUPTED_LINES)


def _frame_match(line: str) -> re.Match[str] | None:
    for pattern in S.FRAME_LINES:
        m = pattern.search(line)
        if m:
            return m
    return None


def _extract_impl(
    lines: list[str],
    parts: tuple[re.Pattern[str] | None, ...],
    skip: re.Pattern[str],
    pick,
) -> tuple[list[tuple[str, str]], bool]:
    """Walk `parts` over `lines`; each stack part yields one (canonical, raw) frame."""
    results: list[tuple[str, str]] = []
    raw: list[str] = []
    ok = True
    traces = 0
    pos = 0
    idx = 0
    while True:
        if idx == len(parts) or (parts[idx] is S.PARSE_STACK and traces > 0):
            key = pick(raw)
            if not key[0]:
                key, ok = ("corrupted", "corrupted"), False
            results.append(key)
            raw = []
        if idx == len(parts):
            break
        part = parts[idx]
        if part is S.PARSE_STACK:
            traces += 1
            nxt = parts[idx + 1] if idx + 1 < len(parts) else None
            while pos < len(lines):
                line = lines[pos]
                pos += 1
                if _corrupted_line(line):
                    ok = False
                    break
                if _stack_start(line):
                    break
                if nxt is not None:
                    m = nxt.search(line)
                    if m:
                        _append(raw, m, skip)
                        idx += 1
                        break
                m = _frame_match(line)
                if m:
                    _append(raw, m, skip)
        else:
            while pos < len(lines):
                line = lines[pos]
                pos += 1
                if _corrupted_line(line):
                    ok = False
                    break
                m = part.search(line)
                if m:
                    _append(raw, m, skip)
                    break
        idx += 1
    return results, ok


def extract_frames(stack: F.Stack, text: str) -> tuple[list[tuple[str, str]], bool]:
    """Return the guilty (canonical, raw) frame per stack part group and success."""
    skip = _skip_re(stack.skip)

    def pick(raw: list[str]) -> tuple[str, str]:
        if not raw:
            return "", ""
        stripped = [_strip_prefix(f) for f in raw]
        if stack.extractor is None:
            return stripped[0], raw[0]
        frame, idx = stack.extractor(stripped)
        return (frame, raw[idx]) if frame else ("", "")

    lines = text.split("\n")
    frames, ok = _extract_impl(lines, stack.parts, skip, pick)
    for parts in (stack.parts2, stack.parts3):
        if ok or not parts:
            break
        frames, ok = _extract_impl(lines, parts, skip, pick)
    return frames, ok


def _fmt(template: str, args: list[str]) -> str:
    try:
        return template.format(*args)
    except (IndexError, KeyError):
        return template


def _partial_args(prefix: list[str], frames: list[tuple[str, str]]) -> list[list[str]]:
    """Raw and partially stripped frame variants, which become ALT titles."""
    out = []
    for i in range(len(S.STRIP_PREFIXES) + 1):
        strip = "" if i == 0 else S.STRIP_PREFIXES[i - 1]
        add = i == 0
        row = []
        for _, raw in frames:
            trimmed = raw[len(strip) :] if strip and raw.startswith(strip) else raw
            if trimmed != raw:
                add = True
            row.append(trimmed)
        if add:
            out.append(prefix + row)
    return out


def _occurrences(text: str, needle: str) -> list[int]:
    out = []
    pos = text.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = text.find(needle, pos + 1)
    return out


def describe(report: str, kind: F.Kind) -> Description:
    """Match the report text against `kind`'s formats (earliest title match wins)."""
    best = Description()
    start = len(report) + 1
    matched_title = False
    alts: list[str] = []
    header = kind.header
    at: list[int] | None = None  # where the header occurs, found on first use
    for fmt in kind.formats:
        if fmt.literal.startswith(header):
            # Every match starts with the header: try the title only there
            # (same result as search(), without scanning the whole report).
            if at is None:
                at = _occurrences(report, header)
            m = None
            for pos in at:
                if pos > start:
                    break
                if report.startswith(fmt.literal, pos):
                    m = fmt.title.match(report, pos)
                    if m is not None:
                        break
        else:
            m = fmt.title.search(report)
        if m is None or m.start() > start:
            continue
        if m.start() == start and best.title:
            continue
        if m.start() < start:
            best, alts, start = Description(), [], m.start()
        matched_title = True
        if fmt.report is not None:
            m = fmt.report.search(report)
            if m is None:
                continue
        prefix = [g or "" for g in m.groups()]
        frames: list[tuple[str, str]] = []
        corrupted = ""
        if fmt.stack is not None:
            frames, ok = extract_frames(fmt.stack, report[m.start() :])
            if not ok:
                corrupted = CORRUPTED_NO_FRAMES
        args = prefix + [c for c, _ in frames]
        title = _fmt(fmt.fmt, args)
        alts = [_fmt(a, args) for a in fmt.alt]
        for variant in _partial_args(prefix, frames):
            alt = _fmt(fmt.fmt, variant)
            if alt != title:
                alts.append(alt)
            alts.extend(_fmt(a, variant) for a in fmt.alt)
        best = Description(title, list(dict.fromkeys(alts)), corrupted, fmt)
    if not best.title:
        # Header seen but no format: the header line itself is the title.
        pos = report.find(kind.header)
        if pos >= 0:
            end = report.find("\n", pos)
            best = Description(report[pos : end if end >= 0 else len(report)], [], "", None)
        if matched_title:
            best.corrupted = "matched title but not report regexp"
    if not best.corrupted and best.fmt is not None and best.fmt.corrupted:
        best.corrupted = "report format is marked as corrupted"
    return best


_TIMESTAMP = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
STACK_REASONS = ("call trace is missed", "no frames in a stack trace", "no stack trace in report")


def check_corrupted(title: str, report: str, fmt: F.Format | None) -> str:
    """Why a report looks truncated or intermixed ("" when it looks fine)."""
    if _TIMESTAMP.search(title):
        return "title matches corrupted regexp"
    if fmt is None or fmt.no_stack_trace:
        return ""
    has_stack = False
    for key, hint in zip(S.STACK_START, S.STACK_START_HINTS, strict=True):
        if hint not in report:
            continue
        m = key.search(report)
        if m is None:
            continue
        rest = report[m.start() :].split("\n", 17)
        if len(rest) < 4:
            return "call trace is missed"
        corrupted = True
        for line in rest[1:16]:
            if _matches_any(line, S.STACK_START):
                break
            if "(stack is not available)" in line or _frame_match(line):
                has_stack = True
                corrupted = False
                break
        if key is not S.RISCV_STACK_START and corrupted:
            return "no frames in a stack trace"
    if not has_stack and not _headerless_arm_trace(report):
        return "no stack trace in report"
    return ""


_HEX_DUMP = re.compile(r"^\s*[0-9a-f]{3,4}:(?:\s+[0-9a-f]{8})*\s*$")


def _headerless_arm_trace(report: str) -> bool:
    """arm32's unwinder on 6.1 prints the frames right after the stack dump, no header."""
    m = S.ARM_STACK_DUMP.search(report)
    if m is None:
        return False
    for line in report[m.end() :].split("\n")[1:]:
        if not _HEX_DUMP.match(line):
            return _frame_match(line) is not None
    return False


# ---------------------------------------------------------------------------
# Normalisation: make titles stable across runs and builds.

_REPLACEMENTS = (
    (re.compile(r"syz-executor\.?[0-9]+((/|:)[0-9]+)?", re.A), "syz-executor"),
    (re.compile(r"syzkaller[0-9]+((/|:)[0-9]+)?", re.A), "syzkaller"),
    (re.compile(r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}", re.A), r"\1ADDR"),
    (re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", re.A), "IP"),
    (re.compile(r"(\.\w+)(:[0-9]+)+", re.A), r"\1:LINE"),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+", re.A), r"\1"),
    (re.compile(r"CPU#[0-9]+", re.A), "CPU"),
    (re.compile(r"(\W)(\d+)(\W|$)", re.A), r"\1NUM\3"),
    (re.compile(r"(\d+){7,}", re.A), "NUM"),
)
MAX_TITLE = 120


@lru_cache(maxsize=4096)  # a log repeats the same few titles and ALT titles
def normalize(title: str) -> str:
    """Replace run-specific tokens (addresses, numbers, lines) and sanitise."""
    for pattern, repl in _REPLACEMENTS:
        while True:
            new = pattern.sub(repl, title)
            if new == title:
                break
            title = new
    raw = title.encode("utf-8", "replace")[:MAX_TITLE]
    out = []
    prev = " "
    for byte in raw:
        ch = " " if byte == 9 else chr(byte)
        if byte != 9 and (byte < 0x20 or byte >= 0x7F):
            continue
        if ch == " " and prev == " ":
            continue
        out.append(ch)
        prev = ch
    return "".join(out).strip()


_FRAME_OF_TITLE = re.compile(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)")


def frame_of(title: str) -> str:
    """The guilty function named by a title ("" if none)."""
    m = _FRAME_OF_TITLE.match(title)
    return m.group(1) if m else ""


# Title prefix -> syzkaller crash type (first match wins).
_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("KFENCE-USE-AFTER-FREE-WRITE", ("KFENCE: use-after-free write",)),
    ("KFENCE-USE-AFTER-FREE-READ", ("KFENCE: use-after-free read", "KFENCE: use-after-free")),
    ("KFENCE-WRITE", ("KFENCE: invalid write", "KFENCE: out-of-bounds write")),
    (
        "KFENCE-READ",
        ("KFENCE: invalid read", "KFENCE: out-of-bounds read", "KFENCE: out-of-bounds"),
    ),
    ("KFENCE-MEMORY-CORRUPTION", ("KFENCE: memory corruption",)),
    ("KFENCE-INVALID-FREE", ("KFENCE: invalid free",)),
    ("KMSAN-UNINIT-VALUE", ("KMSAN: uninit-value",)),
    (
        "KMSAN-USE-AFTER-FREE-READ",
        (
            "KMSAN: kernel-infoleak-after-free",
            "KMSAN: kernel-usb-infoleak-after-free",
            "KMSAN: use-after-free",
        ),
    ),
    ("KMSAN-INFO-LEAK", ("KMSAN: kernel-infoleak", "KMSAN: kernel-usb-infoleak")),
    ("KASAN-NULL-POINTER-DEREFERENCE-WRITE", ("KASAN: null-ptr-deref Write",)),
    ("KASAN-NULL-POINTER-DEREFERENCE-READ", ("KASAN: null-ptr-deref Read",)),
    ("NULL-POINTER-DEREFERENCE", ("BUG: unable to handle kernel NULL pointer dereference in",)),
    (
        "KASAN-WRITE",
        tuple(
            f"KASAN: {k} Write"
            for k in (
                "global-out-of-bounds",
                "out-of-bounds",
                "slab-out-of-bounds",
                "stack-out-of-bounds",
                "user-memory-access",
                "vmalloc-out-of-bounds",
                "wild-memory-access",
            )
        ),
    ),
    (
        "KASAN-READ",
        (
            "KASAN: global-out-of-bounds Read",
            "KASAN: invalid-access Read",
            "KASAN: out-of-bounds Read",
            "KASAN: slab-out-of-bounds Read",
            "KASAN: slab-out-of-bounds",
            "KASAN: stack-out-of-bounds Read",
            "KASAN: stack-out-of-bounds",
            "KASAN: unknown-crash Read",
            "KASAN: user-memory-access Read",
            "KASAN: vmalloc-out-of-bounds Read",
            "KASAN: wild-memory-access Read",
            "KASAN: wild-memory-access",
        ),
    ),
    ("KASAN-INVALID-FREE", ("KASAN: double-free or invalid-free", "KASAN: invalid-free")),
    (
        "KASAN-USE-AFTER-FREE-WRITE",
        ("KASAN: slab-use-after-free Write", "KASAN: use-after-free Write"),
    ),
    (
        "KASAN-USE-AFTER-FREE-READ",
        ("KASAN: slab-use-after-free Read", "KASAN: use-after-free Read", "KASAN: use-after-free"),
    ),
    ("MEMORY_SAFETY_BUG", ("BUG: corrupted list", "BUG: unable to handle kernel paging request")),
    ("REFCOUNT_WARNING", ("WARNING: refcount bug",)),
    ("MEMORY_SAFETY_UBSAN", ("UBSAN: array-index-out-of-bounds",)),
    ("KCSAN-DATARACE", ("KCSAN: data-race",)),
    ("KCSAN-ASSERT", ("KCSAN: assert: race in",)),
    (
        "LOCKDEP",
        (
            "BUG: bad unlock balance in",
            "BUG: held lock freed in",
            "BUG: rwlock",
            "BUG: spinlock",
            "BUG: still has locks held in",
            "BUG: using",
            "WARNING: bad unlock balance in",
            "WARNING: held lock freed in",
            "WARNING: lock held",
            "WARNING: locking bug in",
            "WARNING: nested lock was not taken in",
            "WARNING: still has locks held in",
            "WARNING: suspicious RCU usage in",
            "inconsistent lock state in",
            "possible deadlock in",
        ),
    ),
    (
        "ATOMIC_SLEEP",
        (
            "BUG: scheduling while atomic in",
            "BUG: sleeping function called from invalid context in",
        ),
    ),
    ("LEAK", ("memory leak in",)),
    ("BUG", ("BUG: bad usercopy in", "kernel BUG", "Xen BUG", "Xen assertion failure")),
    ("WARNING", ("WARNING in", "Xen WARN")),
    (
        "UNKNOWN",
        (
            "BUG: stack guard page was hit in",
            "WARNING: corrupted",
            "WARNING: kernel stack frame pointer has bad value",
            "WARNING: kernel stack regs has bad",
        ),
    ),
    (
        "HANG",
        (
            "BUG: soft lockup in",
            "BUG: hard lockup in",
            "INFO: rcu detected stall in",
            "INFO: task can't die in",
            "INFO: task hung in",
        ),
    ),
    (
        "DoS",
        (
            "Alignment trap in",
            "BUG: Object already free",
            "Internal error in",
            "PANIC: double fault",
            "Unhandled fault in",
            "VFS: Busy inodes after unmount (use-after-free)",
            "VFS: Close: file count is zero (use-after-free)",
            "divide error in",
            "general protection fault in",
            "go runtime error",
            "invalid opcode in",
            "kernel panic:",
            "kernel stack overflow",
            "panic:",
            "rust_kernel panicked",
            "stack segment fault in",
            "trusty:",
            "unregister_netdevice: waiting for DEV to become free",
            "Xen panic",
            "Xen crash",
            "Xen: Dom0 crashed",
        ),
    ),
    ("REBOOT", ("unexpected kernel reboot",)),
    ("SYZ_FAILURE", ("SYZFAIL", "SYZFATAL:")),
    ("WARNING", ("WARNING:",)),
    ("UNKNOWN", ("BUG:", "INFO:")),
    ("KASAN-UNKNOWN", ("KASAN:",)),
    ("KFENCE-UNKNOWN", ("KFENCE:",)),
    ("KMSAN-UNKNOWN", ("KMSAN:",)),
    ("UBSAN", ("UBSAN:",)),
    ("KCSAN-UNKNOWN", ("KCSAN:",)),
)


def title_type(title: str) -> str:
    """syzkaller's crash type for a title ("UNKNOWN" when nothing matches)."""
    for crash_type, prefixes in _TYPES:
        if title.startswith(prefixes):
            return crash_type
    return "UNKNOWN"
