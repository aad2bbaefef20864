"""Golden files in syzkaller's format (header lines, blank line, log) and where they live."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))
SYZ_CORPUS = SHARED / "oops-corpus" / "syzkaller"
RESEARCH_LOGS = SHARED / "research" / "logs"
GOLDEN_DIR = REPO / "tests" / "golden" / "oops"

KNOWN_KEYS = {
    "TITLE",
    "ALT",
    "TYPE",
    "FRAME",
    "CORRUPTED",
    "PANICKED",
    "SUPPRESSED",
    "START",
    "END",
    "EXECUTOR",
    # ours: fields of the first report and titles of the following ones
    "NEXT",
    "VERSION",
    "CPU",
    "PID",
    "COMM",
    "TAINTED",
    "ARCH",
    "PC",
    "NOTE",
    "FRAMES",
    # oops corpus: how often the first title came (repeats merged)
    "COUNT",
}


@dataclass
class Golden:
    """Expected values (header) and the raw console log of one golden file."""

    path: Path
    headers: dict[str, list[str]] = field(default_factory=dict)
    log: str = ""
    report: str | None = None

    def one(self, key: str, default: str | None = None) -> str | None:
        values = self.headers.get(key)
        return values[0] if values else default

    @property
    def title(self) -> str:
        return self.one("TITLE", "") or ""

    @property
    def corrupted(self) -> bool:
        return self.one("CORRUPTED", "N") == "Y"

    @property
    def type(self) -> str:
        return self.one("TYPE", "UNKNOWN") or "UNKNOWN"


def read(path: Path) -> Golden:
    """Parse one golden file; \\r is dropped like syzkaller's test runner does."""
    data = path.read_bytes().replace(b"\r", b"").decode("utf-8", "surrogateescape")
    golden = Golden(path)
    lines = data.split("\n")
    i = 0
    while i < len(lines) and lines[i] != "":
        line = lines[i]
        i += 1
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or key not in KNOWN_KEYS:
            raise ValueError(f"{path}: unknown header line {line!r}")
        golden.headers.setdefault(key, []).append(value[1:] if value.startswith(" ") else value)
    body = lines[i + 1 :]
    for j in range(1, len(body)):
        if body[j] == "REPORT:" and body[j - 1] == "" and j > 1:
            golden.report = "\n".join(body[j + 1 :])
            body = body[: j - 1]
            break
    golden.log = "\n".join(body)
    return golden


def first_report_lines(first, alts: bool = True) -> list[str]:
    """The header lines every golden of ours starts with: the first report's title (and
    alternative titles), type, frame, CORRUPTED and PANICKED."""
    lines = [f"TITLE: {first.title}"]
    if alts:
        lines += [f"ALT: {alt}" for alt in sorted(first.alt_titles)]
    if first.type != "UNKNOWN":
        lines.append(f"TYPE: {first.type}")
    if first.frame:
        lines.append(f"FRAME: {first.frame}")
    lines.append(f"CORRUPTED: {'Y' if first.corrupted else 'N'}")
    lines.append(f"PANICKED: {'Y' if first.panicked else 'N'}")
    return lines
