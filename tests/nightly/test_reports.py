"""Report writers on hand-made cells: JUnit structure, KCIDB validity, HTML content, mail."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from nightly_fakes import BOOT, BUG, CANARY, attempt, caught

from harness.errors import InfraError
from harness.nightly.classify import classify
from harness.nightly.model import Bisection, Cell, Nightly, Previous
from harness.nightly.reports import html, junit, kcidb, mail

WARN = "WARNING: CPU: 0 PID: 1 at mm/mremap.c:42 move_page_tables"


@pytest.fixture
def night(tmp_path) -> tuple[Nightly, list]:
    folder = tmp_path / "nightly-next-20260302-20260302-010000"
    folder.mkdir()
    n = Nightly(
        tree=Path("/src/linux-next"),
        ref="next-20260302",
        commit="b" * 40,
        folder=folder,
        stamp="20260302-010000",
        started=dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC),
        describe="next-20260302",
        subject="Add linux-next specific files for 20260302",
        version="6.12.117",
        tags=["next-20260302"],
        exit_code=3,
        remote_url="https://git.kernel.org/pub/scm/linux/kernel/git/next/linux-next.git",
        finished=dt.datetime(2026, 3, 2, 1, 42, tzinfo=dt.UTC),
    )
    runs = folder / "runs"
    prev_pass = Previous(1, "next-20260301", "a" * 40, "pass", "", [])
    new = classify(
        BOOT,
        [attempt("fail", BUG, folder=runs / "b1"), attempt("fail", BUG, folder=runs / "b2")],
        prev_pass,
        n.ref,
    )
    new.bisection = Bisection(
        "next-20260301",
        "a" * 40,
        "b" * 40,
        0,
        "c" * 40,
        "first bad commit: " + "c" * 40 + "\n  subject: mm: x\n",
    )
    canary = classify(CANARY, [caught(runs / "c1")], None, n.ref)
    lpae = Cell("arm32-highmem-lpae-ci", "boot")
    known = classify(
        lpae,
        [attempt("fail", WARN, folder=runs / "l1")] * 2,
        Previous(1, "next-20260301", "a" * 40, "new", WARN, [WARN], "next-20260228"),
        n.ref,
    )
    flaky = classify(
        Cell("arm32-highmem-lpae-ci", "khugepaged-collapse"),
        [attempt("fail", WARN, folder=runs / "k1"), attempt("pass", folder=runs / "k2")],
        None,
        n.ref,
    )
    missed = classify(
        Cell("arm32-highmem-lpae-ci", "pte-lockptr-highpte", True),
        [
            attempt(
                "canary-missed",
                folder=runs / "m1",
                summary="HARNESS FAILURE: canary expected 'BUG: x'",
            )
        ]
        * 2,
        None,
        n.ref,
    )
    skipped = classify(
        Cell("arm32-highmem-ci", "khugepaged-collapse"),
        [
            attempt(
                "not-applicable",
                folder=runs / "s1",
                summary="kernel lacks CONFIG_TRANSPARENT_HUGEPAGE",
            )
        ],
        None,
        n.ref,
    )
    build = classify(
        Cell("arm32-highmem", "boot"),
        [attempt("build-error", summary="kernel build failed")],
        prev_pass,
        n.ref,
    )
    return n, [new, canary, skipped, known, flaky, missed, build]


def fake_target(name):
    return SimpleNamespace(arch="arm", cross_compile="arm-linux-gnueabihf-")


def test_junit_one_suite_per_target(night):
    n, cells = night
    n.harness_failures.append("git fetch linux-next failed: could not resolve host")
    junit.write(n.folder / "junit.xml", n, cells)
    root = ET.parse(n.folder / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "nightly.arm32-highmem-ci",
        "nightly.arm32-highmem-lpae-ci",
        "nightly.arm32-highmem",
        "nightly.harness",
    ]
    ci = suites["nightly.arm32-highmem-ci"]
    assert [c.get("name") for c in ci.findall("testcase")] == [
        "boot",
        "pte-lockptr-highpte",
        "khugepaged-collapse",
    ]
    boot = ci.find("testcase[@name='boot']")
    assert boot.find("failure").get("message") == f"NEW regression: {BUG}"
    assert "Unable to handle kernel NULL pointer" in boot.find("failure").text
    assert ci.find("testcase[@name='pte-lockptr-highpte']/failure") is None
    assert ci.find("testcase[@name='khugepaged-collapse']/skipped") is not None
    lp = suites["nightly.arm32-highmem-lpae-ci"]
    assert "known regression (failing since next-20260228)" in lp.find(
        "testcase[@name='boot']/failure"
    ).get("message")
    assert lp.find("testcase[@name='khugepaged-collapse']/failure") is None  # flaky passes
    assert "flaky" in lp.find("testcase[@name='khugepaged-collapse']/system-out").text
    err = lp.find("testcase[@name='pte-lockptr-highpte']/error")
    assert err.get("message").startswith("harness failure: canary-missed")
    assert suites["nightly.harness"].find("testcase/error") is not None


def test_kcidb_validates(night):
    n, cells = night
    data = kcidb.build(n, cells, "harness", "https://ci.example.org/nightly", fake_target)
    kcidb.validate(data)
    assert data["version"]["major"] == 5
    (checkout,) = data["checkouts"]
    assert checkout["git_commit_hash"] == "b" * 40 and checkout["git_repository_url"]
    tests = {(t["path"], t["misc"]["attempt"]): t for t in data["tests"]}
    assert tests[("harness.boot", 1)]["status"] == "FAIL"
    assert tests[("harness.canary.pte-lockptr-highpte", 1)]["status"] in ("PASS", "ERROR")
    statuses = {t["status"] for t in data["tests"]}
    assert {"FAIL", "PASS", "ERROR", "SKIP"} <= statuses
    assert tests[("harness.boot", 1)]["log_url"].startswith("https://ci.example.org/nightly/")
    assert any(b["status"] == "FAIL" for b in data["builds"])  # the build error
    titles = {i["report_subject"] for i in data["issues"]}
    assert titles == {BUG, WARN}  # the canary's expected bug is not an issue
    assert len(data["incidents"]) == 2 + 2 + 1  # new x2, known x2, flaky's failing run
    ids = {t["id"] for t in data["tests"]}
    assert all(i["test_id"] in ids for i in data["incidents"])
    kcidb.write(n.folder / "kcidb.json", data)
    assert json.loads((n.folder / "kcidb.json").read_text()) == data


def test_kcidb_local_links_and_invalid_documents(night):
    n, cells = night
    n.remote_url = ""
    data = kcidb.build(n, cells, "harness", "", fake_target)
    kcidb.validate(data)
    assert "git_repository_url" not in data["checkouts"][0]
    assert data["tests"][0]["log_url"].startswith("file:///")
    data["tests"][0]["status"] = "BROKEN"
    with pytest.raises(InfraError, match="tests/0/status"):
        kcidb.write(n.folder / "kcidb.json", data)
    assert (n.folder / "kcidb.invalid.json").exists() and not (n.folder / "kcidb.json").exists()


def test_html_site(night):
    n, cells = night
    trend = [
        {
            "id": 1,
            "ref": "next-20260301",
            "folder": "/r/nightly-next-20260301-x",
            "started": "2026-03-01T01:00:00",
            "commit_hash": "a" * 40,
            "cells": {"arm32-highmem-ci/boot": {"status": "pass", "title": ""}},
        },
        {
            "id": 2,
            "ref": "next-20260302",
            "folder": str(n.folder),
            "started": "2026-03-02T01",
            "commit_hash": "b" * 40,
            "cells": {"arm32-highmem-ci/boot": {"status": "new", "title": BUG}},
        },
    ]
    pages = html.write_site(n, cells, trend)
    assert len(pages) == 2 + len(cells)
    index = (n.folder / "index.html").read_text()
    assert '<table id="matrix">' in index
    assert 'class="cell s-new" data-status="new"' in index
    assert 'data-status="harness-failure"' in index and 'data-status="flaky"' in index
    assert "first bad commit" in index and "2 new regressions" in index
    cell = (n.folder / "cells" / "arm32-highmem-ci--boot.html").read_text()
    assert "__pte_offset_map_lock+0x40/0x100" in cell and "mm/pgtable-generic.c:377" in cell
    assert "spin_lock [inline]" in cell
    assert 'href="../runs/b1/console.log"' in cell and 'href="../runs/b1/build.log"' in cell
    assert "&lt;BUG: unable" in cell  # console text is escaped
    assert "harness run arm32-highmem-ci --scenario boot" in cell
    trend_html = (n.folder / "trend.html").read_text()
    assert trend_html.index("next-20260302") < trend_html.index("next-20260301")  # newest first
    assert 'href="../nightly-next-20260301-x/index.html"' in trend_html


def test_mail(night):
    n, cells = night
    text = mail.text(n, cells)
    assert text.splitlines()[0] == (
        "Subject: [harness nightly] next-20260302: 2 new regressions, 1 known, 0 fixed, "
        "1 flaky, canaries 1/2, 1 HARNESS FAILURE(S)"
    )
    new = text.index("NEW REGRESSIONS (2)")
    assert new < text.index("STILL FAILING (known) (1)") < text.index("HARNESS FAILURES (1)")
    assert "call trace: __pte_offset_map_lock <- handle_mm_fault" in text
    assert "bisect: first bad commit: " + "c" * 40 in text
    assert "arm32-highmem-lpae-ci/pte-lockptr-highpte: NOT CAUGHT" in text
    assert "build error" in text
    matrix = text[text.index("MATRIX") :]
    assert "arm32-highmem-ci       NEW" in matrix and "skipped" in matrix
