"""The kernel's own tests on real kernels, read per test.

kselftest mm on arm32-highmem-lpae-ci, arm64-bbml2-ci and x86-64-kselftest-ci (Debian's
6.12) and mm's KUnit suites on LPAE. The LPAE and arm64 kernels are the builds
test_arm32_highmem.py and test_arm64_bbml2.py make. x86-64-kselftest-ci is the one build
of its own: the shared x86 CI kernel has no hugetlbfs, without which 6.12's
run_vmtests.sh runs nothing, and giving it the selftests' options would rebuild it and
its header canary's twin. The selftests are built static from the same tree per arch.
Per-test counts are checked against what the selftests and KUnit print themselves
(run_vmtests.sh's SUMMARY line, each binary's and each suite's Totals line). Then the
khugepaged canary on arm64-bbml2-ci, caught while the kernel's own khugepaged selftest
collapses shmem: an incremental rebuild of the arm64 6.12 build (mm/khugepaged.c only).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import ktap

pytestmark = pytest.mark.integration

LPAE = "arm32-highmem-lpae-ci"
LAB = Path(__file__).parent / "lab"  # kselftest-mm-ci: the categories CI has time for
SUMMARY = re.compile(r"SUMMARY: PASS=(\d+) SKIP=(\d+) FAIL=(\d+)")
TOTALS = re.compile(r"Totals: pass:(\d+) fail:(\d+) (?:xfail:(\d+) xpass:(\d+) )?skip:(\d+)")


def _top_counts(tests: list[ktap.TestResult]) -> tuple[int, int, int]:
    by = [str(t.status) for t in tests]
    return by.count("pass"), by.count("skip"), by.count("fail") + by.count("error")


@pytest.fixture
def lab_harness(harness, monkeypatch):
    monkeypatch.setenv(
        "HARNESS_PATH", os.pathsep.join([str(LAB), os.environ.get("HARNESS_PATH", "")])
    )
    return harness


def _check_per_test(r) -> tuple[list[ktap.TestResult], dict]:
    """The reader's per-test results against what the selftests counted themselves."""
    assert r.code in (0, 1), r.stdout + r.stderr
    console = (r.results / "console.log").read_text(errors="replace")
    doc = json.loads((r.results / "tests.json").read_text())
    # what run_vmtests.sh counted itself, against the reader's top-level results
    raw = [t for t in ktap.parse(console) if not t.kernel]
    (summary,) = SUMMARY.findall(console)
    assert _top_counts(raw) == tuple(int(x) for x in summary)
    assert len(raw) >= 12, [t.name for t in raw]
    # each binary's own Totals line, against its subtests
    checked = 0
    for t in raw:
        totals = [m for ln in t.log if (m := TOTALS.search(ln))]
        if totals and t.subtests:
            p, f, x, _, s = totals[-1].groups()
            # what a test that skipped as a whole never ran is the reader's, not its Totals
            leaves = [str(x.status) for x in ktap.leaves(t.subtests)
                      if not x.reason.startswith("not run: ")]  # fmt: skip
            assert (leaves.count("pass"), leaves.count("skip")) == (int(p), int(s)), t.name
            assert leaves.count("xfail") == int(x or 0), t.name
            # a plan the test did not finish adds errors kselftest's Totals do not count
            assert leaves.count("fail") + leaves.count("error") >= int(f), t.name
            checked += 1
    assert checked >= 10
    # per test in tests.json and JUnit
    units = doc["units"]
    assert sum(doc["counts"].values()) == len(units) > 50
    root = ET.parse(r.results / "junit.xml").getroot()
    assert len(list(root.iter("testcase"))) == len(units) + 1  # + the scenario's own case
    # every failure is either a known failure with its reason, or the run failed naming it
    failing = [u for u in units if u["status"] in ("fail", "error")]
    assert (r.code == 1) == bool(failing), failing
    if failing:
        assert f"kernel test failed: {failing[0]['path']}" in r.stdout
    return raw, doc


@pytest.mark.parametrize(
    ("target", "scenario", "kernel"),
    [
        ("arm64-bbml2-ci", "kselftest-mm-ci-arm64", "debian-6.12"),
        ("x86-64-kselftest-ci", "kselftest-mm-ci", "debian-6.12"),
        # on demand (tox -e ports): 7.3's selftests differ (46 binaries, mkdirty's
        # /proc/self/mem writes refused under Debian's PROC_MEM_FORCE_PTRACE)
        pytest.param(
            "arm64-bbml2-ci", "kselftest-mm-ci-arm64", "debian-7.3", marks=pytest.mark.ports
        ),  # fmt: skip
    ],
)
def test_kselftest_mm_per_test(lab_harness, target, scenario, kernel):
    """The CI categories on the arm64 (without pagemap: see its scenario) and x86 kernels,
    the selftests built for each."""
    r = lab_harness("run", target, "-s", scenario, "--kernel", kernel, timeout=3600)
    _check_per_test(r)
    meta = r.meta["kselftests"][0]
    assert meta["suite"] == "mm" and meta["binaries"] > 25, meta


def test_kselftest_mm_per_test_on_lpae(lab_harness):
    r = lab_harness("run", LPAE, "-s", "kselftest-mm-ci", timeout=3600)
    raw, doc = _check_per_test(r)
    units = doc["units"]
    by = {u["path"]: u for u in units}
    # what did not build is a skip saying why (Debian has no static libcap for armhf)
    assert by["kselftest.mm.mlock-random-test"]["status"] == "skip"
    stub = next(t for t in raw if t.name.startswith("mlock-random-test"))
    assert any("was not built: mlock-random-test.c" in ln for ln in stub.log)
    meta = r.meta["kselftests"][0]
    assert meta["suite"] == "mm" and "mlock-random-test" in meta["not_built"]
    # a test the CI kernel cannot run is a skip with its reason (no CONFIG_UNIX here)
    assert by["kselftest.mm.map_populate.test_1"]["status"] == "skip"
    assert by["kselftest.mm.map_populate.test_1"]["reason"].startswith(
        "the kernel lacks CONFIG_UNIX"
    )
    # a known failure with its cause (a 32-bit address space)
    assert any(u["status"] == "xfail" and "2GB" in u["path"] for u in units)
    # known failures say why; mremap_test also declares XFAILs of its own
    big = [u for u in units if "2GB_mremap" in u["path"]]
    assert big and all(u["status"] == "xfail" for u in big)
    assert all(u["reason"].startswith("known failure: a 2 GB source region") for u in big)


def test_kunit_mm_on_lpae(harness):
    r = harness("run", LPAE, "-s", "kunit-mm")
    assert r.code == 0, r.stdout + r.stderr
    console = (r.results / "console.log").read_text(errors="replace")
    doc = json.loads((r.results / "tests.json").read_text())
    suites = {u["path"].split(".")[1] for u in doc["units"]}
    assert {"slub_test", "damon", "damon-operations"} <= suites, suites
    assert doc["counts"]["fail"] == doc["counts"]["error"] == 0
    # KUnit's own count of passes, against the reader's
    totals = re.finditer(r"^(?:\[[ \d.]+\] )?# Totals: pass:(\d+)", console, re.MULTILINE)
    passes = sum(int(m.group(1)) for m in totals)
    assert passes == doc["counts"]["pass"] > 10


def test_khugepaged_canary_caught_under_the_selftest(harness):
    r = harness("run", "arm64-bbml2-ci", "-s", "khugepaged-ptl-nesting-kselftest", timeout=3600)
    assert r.code == 1, r.stdout + r.stderr
    assert "canary caught as expected: possible deadlock in " in r.stdout
    (report,) = [x for x in r.reports if x["title"].startswith("possible deadlock in ")]
    assert report["test"].startswith("kselftest.mm.khugepaged_all_shmem")
    doc = json.loads((r.results / "tests.json").read_text())
    hit = [u for u in doc["units"] if report["title"] in u["reports"]]
    assert hit and hit[0]["status"] in ("fail", "error")
    assert hit[0]["reason"].endswith(report["title"])
