"""The oops corpus: real consoles of every report kind on every target (corpus_table.py).

Each tests/golden/oops/corpus/TARGET/KIND.txt is a real boot's console (cut to its
reports) with the header the parser gave it when it was made. It must still give that
header, and its title must be the one the table expects for the kind on that target:
the same bug gets the same title everywhere, unwinder and dump_stack frames skipped.
Regenerate with tests/oops/corpus/regen.py (it boots every kind for real). Only the
targets marked `recorded` in the table have consoles so far; the others' cells are
pending (the table says "(not generated)").
"""

from __future__ import annotations

import pytest
from corpus_table import (
    KINDS,
    TARGETS,
    cells,
    expected_title,
    golden_path,
    header,
    missing,
)
from oops_golden import read

from harness.oops import parse

CELLS = cells()
# The corpus lives in git: it must stay small.
MAX_BYTES = 900 * 1024


def _header_lines(path) -> list[str]:
    out = []
    for line in path.read_text().split("\n"):
        if not line:
            break
        if not line.startswith("#"):
            out.append(line)
    return out


@pytest.mark.parametrize(("target", "kind"), CELLS, ids=[f"{t.name}/{k.name}" for t, k in CELLS])
def test_cell(target, kind) -> None:
    path = golden_path(target.name, kind.name)
    assert path.is_file(), f"no console for {target.name}/{kind.name}: run regen.py"
    reports = parse(read(path).log)
    assert header(reports) == _header_lines(path)
    assert reports and reports[0].title == expected_title(target, kind)
    # paths relative to the kernel tree, never the build's ../../../src/... spelling
    assert all("../" not in r.text for r in reports), "a path outside the tree"


def test_every_cell_has_a_console_or_a_reason() -> None:
    for target in TARGETS:
        if not target.recorded:  # no console yet, and none left over to go stale
            assert not golden_path(target.name, "x").parent.exists(), (
                f"{target.name} has consoles: mark it recorded in corpus_table.py"
            )
            continue
        for kind in KINDS:
            path = golden_path(target.name, kind.name)
            assert path.is_file() != bool(missing(target, kind)), (target.name, kind.name)


def test_same_kind_same_title_everywhere() -> None:
    """Per kind, the titles differ only where the kernel reports the bug differently."""
    for kind in KINDS:
        titles = {expected_title(t, kind) for t, k in CELLS if k is kind}
        allowed = 1 + (len(kind.otherwise[1]) if kind.otherwise else 0)
        assert len(titles) <= allowed, (kind.name, titles)


MIGHT_SLEEP = [t.name for t, k in CELLS if k.name == "might-sleep"]


@pytest.mark.parametrize("target", MIGHT_SLEEP)
def test_might_sleep_at_every_exec_is_one_report(target) -> None:
    """The issue's case: might_sleep() under the PTE lock in mremap, every exec. The
    kernel prints it at most once a second (__might_resched), so a fast guest may print
    it once; every one it prints is merged into the first."""
    path = golden_path(target, "might-sleep")
    log = read(path).log
    reports = parse(log)
    assert [r.title for r in reports] == [
        "BUG: sleeping function called from invalid context in move_page_tables"
    ]
    assert reports[0].count == log.count("BUG: sleeping function called from invalid context")
    if target == "arm32-highmem":  # the issue's own target: six reports there, one here
        assert reports[0].count > 1
    assert "at mm/mremap.c:" in reports[0].text


def test_corpus_stays_small() -> None:
    total = sum(golden_path(t.name, k.name).stat().st_size for t, k in CELLS)
    assert total <= MAX_BYTES, f"{total} bytes"
