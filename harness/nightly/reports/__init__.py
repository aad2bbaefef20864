"""The nightly's reports, one writer per format, all from the same classified cells.

Helpers shared by the writers live here: labels, links into the nightly folder, the
failure text of a cell and its reproducer command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.nightly.model import (
    CAUGHT,
    FIXED,
    FLAKY,
    HARNESS,
    IN_TREE,
    KNOWN,
    KNOWN_GONE,
    KNOWN_ISSUE,
    NEW,
    PASS,
    SKIPPED,
    STALE,
    Classified,
    Nightly,
)

LABELS = {
    NEW: "NEW",
    KNOWN: "known",
    FIXED: "fixed",
    FLAKY: "flaky",
    PASS: "pass",
    CAUGHT: "caught",
    IN_TREE: "in tree",
    SKIPPED: "skipped",
    HARNESS: "HARNESS",
    STALE: "STALE (needs a port)",
    KNOWN_ISSUE: "known issue",
    KNOWN_GONE: "fixed?",
}

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    """Text safe for XML and JSON consumers (no control characters, no NULs)."""
    return _CONTROL.sub("", text)


def rel(nightly: Nightly, path: Path | None) -> str:
    """A path inside the nightly folder as a relative link ("" if there is none)."""
    if path is None:
        return ""
    return Path(os.path.relpath(path, nightly.folder)).as_posix()


def url(nightly: Nightly, path: Path | None, base: str = "") -> str:
    """An absolute URL for KCIDB: under the published artifacts URL, else file://."""
    if path is None:
        return ""
    if base:
        return base.rstrip("/") + "/" + nightly.folder.name + "/" + rel(nightly, path)
    return Path(path).resolve().as_uri()


def failure_text(c: Classified, limit: int = 16000) -> str:
    """The crash reports of the shown attempt, or its verdict when there is none."""
    a = c.final
    if a is None:
        return c.reason
    text = "\n\n".join(r.get("text", "").rstrip() for r in a.reports if r.get("text"))
    if not text:
        text = "\n".join([f"{a.verdict}: {a.summary}", *a.details])
    return clean(text)[-limit:]


def reproducer(nightly: Nightly, c: Classified) -> str:
    from harness.run import RunOptions

    kernel = f"{nightly.tree}@{nightly.commit}"
    return RunOptions(c.cell.target, c.cell.scenario, kernel=kernel).command()


def page_name(c: Classified) -> str:
    """The cell's HTML page, relative to the nightly folder."""
    return f"cells/{c.cell.slug}.html"
