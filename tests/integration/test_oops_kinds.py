"""Report kinds end to end on every CI target: the oops corpus's injection patch as a
--patch on the target's normal CI build (incremental: one build per target per run),
one boot per kind with --cmdline oops_inject=KIND, the title checked in reports.json.

Marker `corpus`, not `integration`: it rebuilds every CI target with the patch (and the
next normal run rebuilds it without), which CI's integration budget has no room for. It
runs on demand only: `pytest -m corpus` or `tox -e corpus` (tests/conftest.py leaves it
out of any run whose -m does not name it).

A handful of kinds per target, chosen for what differs between them: might-sleep (the
unwinder's and dump_stack's frames, repeats merged, tree-relative paths), null-deref
(a fatal oops, its panic), lockdep-recursive (lockdep's own report) and bad-rss (a
report without a stack, at process exit); xen-mmu on the Xen target. The full matrix
is tests/oops/test_corpus.py on the recorded consoles (tests/oops/corpus/regen.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oops"))

import corpus_table as C  # noqa: E402

pytestmark = pytest.mark.corpus

KINDS = ("might-sleep", "null-deref", "lockdep-recursive", "bad-rss")
CASES = [
    (target, kind)
    for target in (
        "arm32-highmem-ci",
        "arm32-highmem-lpae-ci",
        "arm64-bbml2-ci",
        "x86-xen-pv-ci",
        "x86-64-ci",
    )  # fmt: skip
    for kind in KINDS + (("xen-mmu",) if target == "x86-xen-pv-ci" else ())
]


@pytest.fixture
def corpus_harness(harness, monkeypatch):
    """`harness` with the corpus's HARNESS_PATH folder (the oops-kinds scenario)."""
    monkeypatch.setenv("HARNESS_PATH", str(C.HARNESS_PATH))
    return harness


@pytest.mark.parametrize(("target", "kind"), CASES, ids=[f"{t}/{k}" for t, k in CASES])
def test_kind_gets_its_title(corpus_harness, source_612, target, kind):
    tgt, knd = C.TARGET_BY_NAME[target], C.BY_NAME[kind]
    mremap = (source_612 / "mm" / "mremap.c").read_bytes()
    r = corpus_harness("run", target, "-s", C.SCENARIO, "--patch", str(C.PATCH),
                       "--cmdline", knd.boot_args)  # fmt: skip
    assert r.code == 1, r.stdout + r.stderr
    want = C.expected_title(tgt, knd)
    assert r.reports and r.reports[0]["title"] == want, [x["title"] for x in r.reports]
    assert f"regression: {want}" in r.meta["summary"]
    assert r.meta["boot"]["extra_cmdline"] == knd.boot_args
    assert (source_612 / "mm" / "mremap.c").read_bytes() == mremap  # the patch is gone
    first = r.reports[0]
    assert "../" not in first["text"]
    if kind == "might-sleep":  # at every exec: one report, counting every one printed
        # (the kernel prints it at most once a second: a fast boot may print it once)
        printed = (
            (r.results / "console.log")
            .read_text()
            .count("BUG: sleeping function called from invalid context")
        )
        assert first["count"] == printed and len(r.reports) == 1
        assert "invalid context at mm/mremap.c:" in first["text"]
        if printed > 1:
            assert f"SEEN:  x{printed}" in r.stdout
    if kind == "null-deref":
        assert first["panicked"]
