"""Our own golden files: QEMU boot logs (arm32, arm64, x86_64, Xen).

Each tests/golden/oops/*.txt is syzkaller's format (header, blank line, raw
log) with extra header keys for the structured fields of the first report
and `NEXT:` for the titles of the following reports.  Every file must match
exactly.  Regenerate after a deliberate change with
    HARNESS_UPDATE_GOLDEN=1 python3 -m pytest tests/oops/test_golden_logs.py
(it copies shared/research/logs/*.log), then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from oops_golden import GOLDEN_DIR, RESEARCH_LOGS, first_report_lines, read

from harness.oops import Report
from harness.oops.parser import parse_strict


def expected_header(reports: list[Report]) -> list[str]:
    """Header lines describing `reports` (the format of our golden files)."""
    if not reports:
        return ["TITLE: "]
    first = reports[0]
    lines = first_report_lines(first)
    lines += [f"NEXT: {rep.title}" for rep in reports[1:]]
    fields = [
        ("VERSION", first.version),
        ("CPU", first.cpu),
        ("PID", first.pid),
        ("COMM", first.comm),
        ("TAINTED", first.tainted),
        ("ARCH", first.arch),
        ("PC", first.pc),
    ]
    lines += [f"{key}: {value}" for key, value in fields if value is not None]
    if first.frames:
        names = (("" if f.reliable else "?") + f.function for f in first.frames)
        lines.append("FRAMES: " + " ".join(names))
    lines += [f"NOTE: {note}" for note in (n for rep in reports for n in rep.notes)]
    return lines


def _header_of(path: Path) -> list[str]:
    lines = []
    for line in path.read_bytes().decode("utf-8", "surrogateescape").split("\n"):
        if line == "":
            break
        lines.append(line.rstrip("\r"))
    return lines


def _update() -> None:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for log in sorted(RESEARCH_LOGS.glob("*.log")):
        raw = log.read_bytes()
        text = raw.replace(b"\r", b"").decode("utf-8", "surrogateescape")
        header = "\n".join(expected_header(parse_strict(text))) + "\n\n"
        (GOLDEN_DIR / f"{log.stem}.txt").write_bytes(header.encode() + raw)


if os.environ.get("HARNESS_UPDATE_GOLDEN") and RESEARCH_LOGS.is_dir():
    _update()

GOLDENS = sorted(GOLDEN_DIR.glob("*.txt"))


@pytest.mark.parametrize("path", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden(path: Path) -> None:
    golden = read(path)
    assert expected_header(parse_strict(golden.log)) == _header_of(path)


def test_every_research_log_has_a_golden() -> None:
    if not RESEARCH_LOGS.is_dir():
        pytest.skip(f"{RESEARCH_LOGS} not found")
    missing = [
        p.name for p in RESEARCH_LOGS.glob("*.log") if not (GOLDEN_DIR / f"{p.stem}.txt").is_file()
    ]
    assert not missing


def test_goldens_cover_each_arch() -> None:
    arches = {read(p).one("ARCH") for p in GOLDENS}
    assert {"arm", "arm64", "x86_64"} <= arches
    assert any(not read(p).title for p in GOLDENS), "no clean log among the goldens"
