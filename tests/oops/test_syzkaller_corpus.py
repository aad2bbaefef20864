"""syzkaller's own golden reports: our titles must match theirs.

Each corpus file is a case (TITLE, and TYPE/CORRUPTED where a crash is
expected).  Known failures live in syzkaller_xfail.txt with a reason; on top
of that the overall pass ratio must stay >= 95% and clean logs must give no
report at all.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from oops_golden import SYZ_CORPUS, Golden, read

from harness.oops.parser import parse_strict

MIN_PASS_RATIO = 0.95
XFAIL_FILE = Path(__file__).with_name("syzkaller_xfail.txt")


def _xfails() -> dict[str, str]:
    entries = {}
    for line in XFAIL_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            raise ValueError(f"{XFAIL_FILE}: entry {name!r} has no reason")
        entries[name] = reason.strip()
    return entries


def _corpus_files() -> list[Path]:
    if not SYZ_CORPUS.is_dir():
        return []
    files = [p for p in SYZ_CORPUS.iterdir() if p.name.isdigit()]
    return sorted(files, key=lambda p: int(p.name))


@cache
def _outcome(path: Path) -> tuple[Golden, str, str, bool]:
    golden = read(path)
    reports = parse_strict(golden.log)
    if not reports:
        return golden, "", "UNKNOWN", False
    first = reports[0]
    return golden, first.title, first.type, first.corrupted


def _mismatch(path: Path) -> str:
    golden, title, typ, corrupted = _outcome(path)
    problems = []
    if title != golden.title:
        problems.append(f"title {title!r} != {golden.title!r}")
    if golden.title and typ != golden.type:
        problems.append(f"type {typ!r} != {golden.type!r}")
    if golden.title and corrupted != golden.corrupted:
        problems.append(f"corrupted {corrupted} != {golden.corrupted}")
    return "; ".join(problems)


FILES = _corpus_files()
XFAILS = _xfails()


def _params() -> list:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {SYZ_CORPUS}"))]
    out = []
    for path in FILES:
        marks = []
        if path.name in XFAILS:
            marks.append(pytest.mark.xfail(reason=XFAILS[path.name], strict=True))
        out.append(pytest.param(path, id=path.name, marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_corpus_file(path: Path | None) -> None:
    problem = _mismatch(path)
    assert not problem, problem


def test_xfail_entries_exist(syz_corpus: Path) -> None:
    names = {p.name for p in FILES}
    assert not set(XFAILS) - names, "xfail entries for files that are not in the corpus"


def test_pass_ratio(syz_corpus: Path) -> None:
    passed = sum(1 for path in FILES if not _mismatch(path))
    ratio = passed / len(FILES)
    print(f"syzkaller corpus: {passed}/{len(FILES)} = {ratio:.3f}")
    assert ratio >= MIN_PASS_RATIO


def test_clean_logs_give_no_report(syz_corpus: Path) -> None:
    clean = [p for p in FILES if not read(p).title]
    assert clean, "corpus has no clean logs"
    noisy = {p.name: [r.title for r in parse_strict(read(p).log)] for p in clean}
    noisy = {name: titles for name, titles in noisy.items() if titles}
    assert not noisy
