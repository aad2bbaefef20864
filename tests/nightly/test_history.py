"""The sqlite history: the previous informative result, last passes, the trend."""

from __future__ import annotations

from pathlib import Path

from nightly_fakes import BOOT, BUG, CANARY, attempt, caught

from harness.nightly.classify import classify
from harness.nightly.history import History
from harness.nightly.model import FIXED, HARNESS, KNOWN, NEW, PASS, Bisection

TREE = Path("/src/linux-next")


def night(h: History, ref: str, *cells, finish: bool = True, tree: Path = TREE) -> int:
    nid = h.begin(tree, ref, ref[-1] * 40, Path(f"/r/nightly-{ref}"))
    h.record(nid, list(cells))
    if finish:
        h.finish(nid, 0)
    return nid


def test_previous_skips_uninformative_and_unfinished(tmp_path):
    h = History(tmp_path / "results" / "nightly.sqlite")
    night(h, "next-1", classify(BOOT, [attempt("pass")], None, "next-1"))
    n2 = night(h, "next-2", classify(BOOT, [attempt("fail", BUG)] * 2, None, "next-2"))
    night(h, "next-3", classify(BOOT, [attempt("infra-error")] * 2, None, "next-3"))
    night(h, "next-4", classify(BOOT, [attempt("pass")], None, "next-4"), finish=False)
    night(h, "next-1", classify(BOOT, [attempt("pass")], None, "x"), tree=Path("/other"))
    p = h.previous(TREE, BOOT.target, BOOT.scenario, before=100)
    assert p is not None and p.ref == "next-2" and p.status == NEW and p.titles == [BUG]
    assert p.since == "next-2" and p.nightly_id == n2
    assert h.previous(TREE, BOOT.target, BOOT.scenario, before=n2).status == PASS
    assert h.previous(TREE, CANARY.target, CANARY.scenario, before=100) is None
    assert h.passes(TREE, BOOT.target, BOOT.scenario, before=100) == [("next-1", "1" * 40)]


def test_round_trip_and_trend(tmp_path):
    h = History(tmp_path / "nightly.sqlite")
    c1 = classify(BOOT, [attempt("fail", BUG)] * 2, None, "next-1")
    n1 = night(h, "next-1", c1, classify(CANARY, [caught()], None, "next-1"))
    c2 = classify(
        BOOT,
        [attempt("fail", BUG)] * 2,
        h.previous(TREE, "arm32-highmem-ci", "boot", 100),
        "next-2",
    )
    assert c2.status == KNOWN and c2.since == "next-1"
    n2 = night(h, "next-2", c2)
    h.add_bisection(n2, c2, Bisection("next-0", "0" * 40, "2" * 40, 0, "9" * 40, "found"))
    c3 = classify(
        BOOT, [attempt("pass")], h.previous(TREE, "arm32-highmem-ci", "boot", 100), "next-3"
    )
    assert c3.status == FIXED
    n3 = night(h, "next-3", c3, finish=False)
    trend = h.trend(TREE, 10)
    assert [t["id"] for t in trend] == [n1, n2]
    assert trend[0]["cells"]["arm32-highmem-ci/pte-lockptr-highpte"]["status"] == "caught"
    assert [t["id"] for t in h.trend(TREE, 10, include=n3)] == [n1, n2, n3]
    assert [t["id"] for t in h.trend(TREE, 1)] == [n2]
    h.close()
    # the database survives a reopen (a second nightly process)
    h = History(tmp_path / "nightly.sqlite")
    assert h.previous(TREE, "arm32-highmem-ci", "boot", 100).status == KNOWN
    row = h.db.execute("SELECT culprit FROM bisection").fetchone()
    assert row["culprit"] == "9" * 40
    assert HARNESS not in {r["status"] for r in h.db.execute("SELECT status FROM result")}
