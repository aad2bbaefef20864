"""The kernel's own tests in the nightly: per-test classification across nights, the
history that carries it, and the reports (KCIDB paths, JUnit cases, HTML, mail)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

from nightly_fakes import attempt

from harness.nightly.classify import classify
from harness.nightly.history import History
from harness.nightly.kerneltests import PreviousTest, classify_tests
from harness.nightly.model import (
    FIXED,
    FLAKY,
    KNOWN,
    KNOWN_ISSUE,
    NEW,
    PASS,
    SKIPPED,
    Cell,
    Nightly,
)
from harness.nightly.reports import html, junit, kcidb, mail

KS = Cell("arm32-highmem-lpae-ci", "kselftest-mm")
TREE = Path("/src/linux-next")
COLLAPSE = "kselftest.mm.khugepaged.collapse_full"


def unit(path: str, status: str, reason: str = "", reports: tuple[str, ...] = ()) -> dict:
    return {"path": path, "status": status, "reason": reason, "reports": list(reports)}


def run(*units: dict, verdict: str = "fail") -> object:
    a = attempt(verdict, summary=f"kernel test failed: {units[0]['path']}")
    a.tests = list(units)
    return a


def test_each_test_against_its_previous_result():
    prev = {
        COLLAPSE: PreviousTest(PASS, "", "next-1"),
        "kselftest.mm.cow.a": PreviousTest(NEW, "next-1", "next-1"),
        "kselftest.mm.cow.b": PreviousTest(KNOWN, "next-0", "next-1"),
        "kselftest.mm.mremap_test": PreviousTest(NEW, "next-1", "next-1"),
    }
    first = run(unit(COLLAPSE, "fail", "exit=1"), unit("kselftest.mm.cow.a", "fail"),
                unit("kselftest.mm.cow.b", "error", "no result: the output ended"),
                unit("kselftest.mm.mremap_test", "pass"), unit("kselftest.mm.uffd", "fail"),
                unit("kselftest.mm.memfd_secret", "skip", "not supported"),
                unit("kselftest.mm.hugevm", "xfail", "known failure: TCG"))  # fmt: skip
    retry = run(unit(COLLAPSE, "fail", "exit=1"), unit("kselftest.mm.uffd", "pass"))
    got = {t.path: t for t in classify_tests([first, retry], prev, "next-2")}
    assert {p: t.status for p, t in got.items()} == {
        COLLAPSE: NEW,
        "kselftest.mm.cow.a": KNOWN,
        "kselftest.mm.cow.b": KNOWN,
        "kselftest.mm.mremap_test": FIXED,
        "kselftest.mm.uffd": FLAKY,
        "kselftest.mm.memfd_secret": SKIPPED,
        "kselftest.mm.hugevm": KNOWN_ISSUE,
    }
    assert (
        got[COLLAPSE].since == "next-2" and got[COLLAPSE].reason == "fail: exit=1 (pass on next-1)"
    )
    assert got["kselftest.mm.cow.b"].since == "next-0"
    assert got["kselftest.mm.uffd"].reason == "fail, then pass on the retry"
    assert got["kselftest.mm.mremap_test"].reason == "failed on next-1"


def test_history_keeps_tests_per_nightly(tmp_path):
    h = History(tmp_path / "nightly.sqlite")
    n1 = h.begin(TREE, "next-1", "1" * 40, Path("/r/1"))
    c1 = classify(KS, [run(unit(COLLAPSE, "fail", "exit=1"))], None, "next-1")
    c1.tests = classify_tests(c1.attempts, {}, "next-1")
    h.record(n1, [c1])
    h.finish(n1, 1)
    n2 = h.begin(TREE, "next-2", "2" * 40, Path("/r/2"))
    prev = h.previous_tests(TREE, KS.target, KS.scenario, n2)
    assert prev == {COLLAPSE: PreviousTest(NEW, "next-1", "next-1")}
    c2 = classify(KS, [run(unit(COLLAPSE, "fail", "exit=1"))], None, "next-2")
    c2.tests = classify_tests(c2.attempts, prev, "next-2")
    assert c2.tests[0].status == KNOWN and c2.tests[0].since == "next-1"
    assert h.previous_tests(TREE, "other", KS.scenario, n2) == {}


def _night(tmp_path: Path) -> tuple[Nightly, list]:
    folder = tmp_path / "nightly-next-2"
    folder.mkdir()
    n = Nightly(TREE, "next-2", "b" * 40, folder, "20260302-010000",
                dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC), version="6.12.117",
                exit_code=1)  # fmt: skip
    a = attempt("fail", "WARNING in collapse_huge_page", folder=folder / "runs" / "k1",
                summary=f"kernel test failed: {COLLAPSE}")  # fmt: skip
    warn = "WARNING in collapse_huge_page"
    a.tests = [unit(COLLAPSE, "fail", f"pass, but the kernel reported: {warn}", (warn,)),
               unit("kselftest.mm.cow.a", "pass"),
               unit("kunit.slub_test.test_clobber_zone", "pass"),
               unit("kselftest.mm.hugevm", "xfail", "known failure: TCG")]  # fmt: skip
    c = classify(KS, [a], None, n.ref)
    c.tests = classify_tests([a], {"kselftest.mm.cow.a": PreviousTest(KNOWN, "x", "next-1")}, n.ref)
    return n, [c]


def test_reports_name_each_kernel_test(tmp_path):
    n, cells = _night(tmp_path)
    fake = SimpleNamespace(arch="arm", cross_compile="arm-linux-gnueabihf-")
    data = kcidb.build(n, cells, "harness", "", lambda _name: fake)
    kcidb.validate(data)
    paths = {t["path"]: t for t in data["tests"]}
    assert paths[COLLAPSE]["status"] == "FAIL" and paths[COLLAPSE]["misc"]["nightly_status"] == NEW
    assert paths["kunit.slub_test.test_clobber_zone"]["status"] == "PASS"
    assert paths["kselftest.mm.hugevm"]["misc"]["known_failure"] is True
    assert "harness.kselftest-mm" in paths  # the cell's own test stays

    junit.write(n.folder / "junit.xml", n, cells)
    root = ET.parse(n.folder / "junit.xml").getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    case = cases[("nightly.arm32-highmem-lpae-ci.kselftest.mm.khugepaged", "collapse_full")]
    assert case.find("failure").get("message").startswith("NEW: fail: pass, but the kernel")
    assert (
        cases[("nightly.arm32-highmem-lpae-ci.kselftest.mm", "hugevm")].find("skipped") is not None
    )

    html.write_site(n, cells, [])
    index = (n.folder / "index.html").read_text()
    assert 'id="kernel-tests"' in index and COLLAPSE in index and "fixed" in index
    page = next((n.folder / "cells").glob("*.html")).read_text()
    assert 'id="tests"' in page and page.index(COLLAPSE) < page.index("kunit.slub_test")

    text = mail.text(n, cells)
    assert "KERNEL TESTS THAT CHANGED (2)" in text
    assert f"NEW: arm32-highmem-lpae-ci: {COLLAPSE}" in text
    assert "    WARNING in collapse_huge_page" in text
