"""mail.txt: the nightly in plain text, new regressions first, harness failures apart.

Written to be pasted (or piped to sendmail) as is: a Subject line, then what changed since
the previous night, then the matrix; every regression with its reproducer and its page.
"""

from __future__ import annotations

from harness.nightly.model import (
    FIXED,
    FLAKY,
    HARNESS,
    IN_TREE,
    KNOWN,
    KNOWN_GONE,
    KNOWN_ISSUE,
    NEW,
    STALE,
    Classified,
    Nightly,
)
from harness.nightly.reports import LABELS, page_name, reproducer
from harness.nightly.reports.html import headline


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def _trace(c: Classified, depth: int = 10) -> str:
    a = c.final
    if not a or not a.reports:
        return ""
    frames = a.reports[0].get("frames") or []
    return " <- ".join(f.get("function", "?") for f in frames[:depth])


def _entry(nightly: Nightly, c: Classified, full: bool) -> list[str]:
    lines = [f"  {c.cell.key}", f"    {c.title or c.reason}"]
    if c.title and c.reason:
        lines.append(f"    ({c.reason})")
    if full:
        trace = _trace(c)
        if trace:
            lines.append(f"    call trace: {trace}")
        if c.bisection:
            lines += ["    bisect: " + s for s in c.bisection.summary.strip().splitlines()[:6]]
        where = c.attempts[-1].where if c.attempts else ""
        if where and where != "here":
            lines.append(f"    ran: {where}")
        lines.append(f"    reproduce: {reproducer(nightly, c)}")
        lines.append(f"    report: {page_name(c)}")
    return lines


def text(nightly: Nightly, cells: list[Classified]) -> str:
    subject = f"[harness nightly] {nightly.ref}: {headline(cells, nightly.exit_code)}"
    out = [
        f"Subject: {subject}",
        "",
        f"harness nightly of {nightly.tree} at {nightly.ref}",
        f'  commit {nightly.commit[:12]} ("{nightly.subject}"), kernel {nightly.version}',
        f"  {_n(len({c.cell.target for c in cells}), 'target')} x "
        f"{_n(len({c.cell.scenario for c in cells}), 'scenario')}, exit code {nightly.exit_code}",
    ]
    out += [f"  note: {n}" for n in nightly.notes]
    sections = [
        (NEW, "NEW REGRESSIONS", True),
        (FIXED, "FIXED", False),
        (KNOWN, "STILL FAILING (known)", False),
        (FLAKY, "FLAKY (failed, then passed on the retry)", True),
        (STALE, "STALE (a scenario needs a port to this kernel; not a failure)", False),
        (KNOWN_GONE, "KNOWN ISSUES THAT DID NOT REPRODUCE (fixed?)", False),
        (KNOWN_ISSUE, "KNOWN ISSUES (listed, not counted)", False),
    ]
    for status, heading, full in sections:
        these = [c for c in cells if c.status == status]
        if these:
            out += ["", f"{heading} ({len(these)})"]
            for c in these:
                out += _entry(nightly, c, full)
    changed = [(c, t) for c in cells for t in c.tests if t.status in (NEW, FIXED, FLAKY)]
    if changed:
        out += ["", f"KERNEL TESTS THAT CHANGED ({len(changed)})"]
        for status in (NEW, FIXED, FLAKY):
            for c, t in changed:
                if t.status == status:
                    out.append(f"  {LABELS[t.status]}: {c.cell.target}: {t.path}")
                    out += [f"    {t.reason}"] if t.reason else []
                    out += [f"    {title}" for title in t.reports[:3]]
    harness = [c for c in cells if c.status == HARNESS]
    if harness or nightly.harness_failures:
        out += [
            "",
            f"HARNESS FAILURES ({len(harness) + len(nightly.harness_failures)}): "
            "not kernel regressions; tonight's results cannot be fully trusted",
        ]
        for c in harness:
            out += _entry(nightly, c, False)
        out += ["  " + f.splitlines()[0] for f in nightly.harness_failures]
    canaries = [c for c in cells if c.cell.canary]
    if canaries:
        out += ["", "CANARIES"]
        for c in canaries:
            what = {IN_TREE: "not run", HARNESS: "NOT CAUGHT", STALE: "STALE: needs a port"}.get(
                c.status, LABELS[c.status]
            )
            out.append(f"  {c.cell.key}: {what}" + (f": {c.reason}" if c.reason else ""))
    out += ["", "MATRIX", *matrix_table(cells)]
    out += ["", f"reports: {nightly.folder}/index.html (junit.xml, kcidb.json alongside)"]
    return "\n".join(out) + "\n"


def matrix_table(cells: list[Classified]) -> list[str]:
    targets = list(dict.fromkeys(c.cell.target for c in cells))
    scenarios = list(dict.fromkeys(c.cell.scenario for c in cells))
    grid = {(c.cell.target, c.cell.scenario): LABELS[c.status] for c in cells}
    w0 = max(len(t) for t in targets) if targets else 6
    widths = [max(len(s), 8) for s in scenarios]
    cols = list(zip(scenarios, widths, strict=True))
    rows = ["  " + " " * w0 + "  " + "  ".join(s.ljust(w) for s, w in cols)]
    for t in targets:
        vals = [grid.get((t, s), "-").ljust(w) for s, w in cols]
        rows.append("  " + t.ljust(w0) + "  " + "  ".join(vals))
    return [r.rstrip() for r in rows]
