"""The KTAP / TAP reader on consoles: kselftest's nested "# " output, KUnit's indented
KTAP behind printk timestamps, kernel lines in between, a crash mid-test, a cut console.
tests/unit/data/ktap/*.txt are written in the producers' formats; real consoles from the
guest are in tests/unit/data/ktap/recorded/ (see test_recorded_consoles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import ktap
from harness.ktap import Status

DATA = Path(__file__).parent / "data" / "ktap"


def _parse(name: str, suites: tuple[str, ...] = ("mm",)) -> list[ktap.TestResult]:
    tests = ktap.parse((DATA / name).read_text())
    ktap.name_all(tests, suites)
    return tests


def _table(tests: list[ktap.TestResult]) -> dict[str, str]:
    return {t.path: str(t.status) for t in ktap.walk(tests)}


def test_run_vmtests_nested_output():
    tests = _parse("vmtests-6.12.txt")
    assert _table(tests) == {
        "kselftest.mm.hugepage-mmap": "pass",
        "kselftest.mm.mremap_test": "fail",
        "kselftest.mm.mremap_test.8KB_mremap_-_Source_PTE-aligned_Destination_PTE-aligned": "pass",
        "kselftest.mm.mremap_test.2MB_mremap_-_Source_PMD-aligned": "fail",
        "kselftest.mm.mremap_test.test_3": "skip",
        "kselftest.mm.memfd_secret": "skip",
        "kselftest.mm.memfd_secret.test_1": "skip",
    }
    by = {t.path: t for t in ktap.walk(tests)}
    assert by["kselftest.mm.mremap_test"].reason == "exit=1"
    assert by["kselftest.mm.mremap_test.test_3"].reason == "1GB mremap - Source PUD-aligned"
    assert "# Returned address is 0xb6c00000" in by["kselftest.mm.hugepage-mmap"].log
    # the kernel's line in the middle of user-space output is noise, kept as log only
    assert any("crng init done" in ln for ln in by["kselftest.mm.mremap_test.2MB_mremap_-_"
                                                   "Source_PMD-aligned"].log)  # fmt: skip
    assert ktap.counts(tests) == {"pass": 2, "fail": 1, "skip": 2, "xfail": 0, "error": 0}
    assert [t.path for t in ktap.failures(tests)] == [
        "kselftest.mm.mremap_test.2MB_mremap_-_Source_PMD-aligned"
    ]


def test_kunit_ktap_behind_printk_timestamps():
    tests = _parse("kunit-6.12.txt", suites=())
    assert _table(tests) == {
        "kunit.slub_test": "fail",
        "kunit.slub_test.test_clobber_zone": "pass",
        "kunit.slub_test.test_next_pointer": "pass",
        "kunit.slub_test.test_kmalloc_redzone_access": "fail",
        "kunit.damon": "pass",
        "kunit.damon.damon_test_split": "pass",
        "kunit.damon.damon_test_split.small": "pass",
        "kunit.damon.damon_test_split.large": "skip",
        "kunit.damon.damon_test_regions": "xfail",
    }
    assert all(t.kernel for t in tests)
    by = {t.path: t for t in ktap.walk(tests)}
    assert by["kunit.damon.damon_test_split.large"].reason == "not enough memory"
    assert by["kunit.damon.damon_test_regions"].reason == "flaky on 32-bit"


def test_a_crash_mid_test_is_that_tests_error_and_the_report_is_attributed():
    text = (DATA / "crashed-mid-test.txt").read_text()
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    oops = text.index("Unable to handle kernel NULL pointer")
    ktap.attribute(
        tests, [(oops, 0, "BUG: unable to handle kernel NULL pointer dereference in x", False)]
    )
    by = {t.path: t for t in ktap.walk(tests)}
    assert list(by) == [
        "kselftest.mm.khugepaged",  # the name from "running ./khugepaged"
        "kselftest.mm.khugepaged.Basic_anon_THP_collapse",
        "kselftest.mm.khugepaged.test_2",
        "kselftest.mm.khugepaged.test_3",
        "kselftest.mm.khugepaged.test_4",
    ]
    crashed = by["kselftest.mm.khugepaged.test_2"]
    assert crashed.status == Status.ERROR and crashed.reports == [0]
    assert "the kernel reported: BUG: unable to handle" in crashed.reason
    assert "Run test: collapse_full (khugepaged:anon)" in crashed.log
    assert by["kselftest.mm.khugepaged.test_3"].reports == []  # never ran
    assert ktap.counts(tests)["error"] == 3


def test_a_warning_in_a_passing_test_fails_it():
    text = (DATA / "vmtests-6.12.txt").read_text()
    at = text.index("# ok 1 8KB mremap")
    text = text[:at] + "[   44.0] WARNING: CPU: 0 PID: 90 at mm/mremap.c:12 move_ptes\n" + text[at:]
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    ktap.attribute(tests, [(at, 0, "WARNING in move_ptes", False)])
    t = next(t for t in ktap.walk(tests) if t.name.startswith("8KB"))
    assert (
        t.status == Status.FAIL
        and t.reason == "pass, but the kernel reported: WARNING in move_ptes"
    )
    assert t.reports == [0]


def test_truncated_plan_and_known_failures():
    text = "TAP version 13\n1..4\nok 1 a\nnot ok 2 b # exit=1\nok 3 c # SKIP no THP\n"
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    assert _table(tests) == {"kselftest.mm.a": "pass", "kselftest.mm.b": "fail",
                             "kselftest.mm.c": "skip", "kselftest.mm.test_4": "error"}  # fmt: skip
    xfail = (Status.XFAIL, "known failure: TCG lacks it")
    known = ktap.apply_known(tests, lambda p: xfail if p.endswith(".b") else None)
    assert [t.path for t in known] == ["kselftest.mm.b"]
    assert (
        known[0].status == Status.XFAIL
        and known[0].reason == "known failure: TCG lacks it (exit=1)"
    )
    assert [t.path for t in ktap.failures(tests)] == ["kselftest.mm.test_4"]


def test_parent_failing_with_passing_subtests_counts_once():
    text = "TAP version 13\n# TAP version 13\n# 1..1\n# ok 1 inner\nnot ok 1 outer # exit=1\n1..1\n"
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    assert [t.path for t in ktap.failures(tests)] == ["kselftest.mm.outer"]
    assert ktap.counts(tests) == {"pass": 1, "fail": 1, "skip": 0, "xfail": 0, "error": 0}


def test_two_documents_kunit_at_boot_then_kselftest():
    text = (DATA / "kunit-6.12.txt").read_text() + (DATA / "vmtests-6.12.txt").read_text()
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    roots = {t.path.split(".")[0] for t in tests}
    assert roots == {"kunit", "kselftest"} and len(tests) == 5


def test_duplicate_names_get_a_number_and_odd_names_a_slug():
    text = "TAP version 13\nok 1 ./uffd-stress anon 20 16\nok 2 khugepaged\nok 3 khugepaged\n"
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    paths = [t.path for t in tests]
    assert paths == ["kselftest.mm.uffd-stress_anon_20_16", "kselftest.mm.khugepaged",
                     "kselftest.mm.khugepaged_2"]  # fmt: skip


@pytest.mark.parametrize("junk", ["", "ok 1 stray\n", "1..3\n", "    KTAP version 1\n"])
def test_no_document_no_tests(junk):
    assert ktap.parse("Booting Linux\n" + junk + "random text\n") == []


def test_to_dict_round_trips_through_json():
    tests = _parse("vmtests-6.12.txt")
    d = json.loads(json.dumps([t.to_dict() for t in tests]))
    assert d[1]["path"] == "kselftest.mm.mremap_test" and d[1]["subtests"][1]["status"] == "fail"


def test_kunit_without_printk_timestamps_is_told_apart_by_where_user_space_began():
    kunit = "".join(
        ln.split("] ", 1)[1] + "\n" for ln in (DATA / "kunit-6.12.txt").read_text().splitlines()
    )
    text = kunit + "HARNESS: START n1 scenario=kunit-mm\n" + (DATA / "vmtests-6.12.txt").read_text()
    tests = ktap.parse(text, user_from=text.index("HARNESS: START"))
    ktap.name_all(tests, ("mm",))
    paths = [t.path for t in tests]
    assert paths[:2] == ["kunit.slub_test", "kunit.damon"]
    assert paths[2:] == ["kselftest.mm.hugepage-mmap", "kselftest.mm.mremap_test",
                         "kselftest.mm.memfd_secret"]  # fmt: skip


def test_bail_out_names_why_the_rest_did_not_run():
    text = ("TAP version 13\n# TAP version 13\n# 1..2\n"
            "# Bail out! [FAIL]\tmain:102\tsocketpair():Function not implemented\n"
            "not ok 1 map_populate # exit=1\n1..1\n")  # fmt: skip
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    subs = tests[0].subtests
    assert [str(t.status) for t in subs] == ["error", "error"]
    assert subs[0].reason == (
        "no result: bailed out: [FAIL] main:102 socketpair():Function not implemented"
    )


def test_a_parent_failing_only_for_known_subtests_is_not_a_failure():
    tests = _parse("vmtests-6.12.txt")
    skip = (Status.XFAIL, "known failure: 32-bit")
    ktap.apply_known(tests, lambda p: skip if ".mremap_test.2MB" in p else None)
    parent = next(t for t in tests if t.name == "mremap_test")
    assert parent.status == Status.XFAIL
    assert parent.reason == "its failing subtests are known failures (exit=1)"
    assert ktap.failures(tests) == []


def test_what_a_nested_test_printed_after_its_last_subtest_is_its_parents_log():
    tests = _parse("vmtests-6.12.txt")
    mremap = next(t for t in tests if t.name == "mremap_test")
    assert "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0" in mremap.log
    assert "[FAIL]" in mremap.log


def test_a_known_issue_during_a_test_is_recorded_but_does_not_fail_it():
    text = (DATA / "vmtests-6.12.txt").read_text()
    at = text.index("# ok 1 8KB mremap")
    tests = ktap.parse(text)
    ktap.attribute(tests, [(at, 3, "WARNING in __check_safe_pte_update", True)])
    t = next(t for t in ktap.walk(tests) if t.name.startswith("8KB"))
    assert t.status == Status.PASS and t.reports == [3] and not t.bug


def test_repeats_fail_every_test_they_hit():
    text = "TAP version 13\nok 1 a\nok 2 b\n1..2\n"
    tests = ktap.parse(text)
    hits = [
        (text.index("ok 1"), 0, "WARNING in x", False),
        (text.index("ok 2"), 0, "WARNING in x", False),
    ]
    ktap.attribute(tests, hits)
    assert [str(t.status) for t in tests] == ["fail", "fail"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # a bare plan inside a test's output is not a nested document (nor 2M errors)
        ("TAP version 13\n# 1..2000000\nok 1 x\n1..1\n", {"x": "pass"}),
        # "not ok" without a number still counts, in order
        ("TAP version 13\nok 1 a\nnot ok - b\n", {"a": "pass", "b": "fail"}),
        # an "ok" whose exit code says otherwise (a "not " lost on the serial line)
        ("TAP version 13\nok 1 c # exit=1\n", {"c": "fail"}),
        # a test without TAP of its own that never finished
        ("TAP version 13\nok 1 a\n# running ./foo\n# half a line\n", {"a": "pass", "foo": "error"}),
    ],
)
def test_odd_consoles(text, want):
    got = {t.name: str(t.status) for t in ktap.parse(text)}
    assert got == want


def test_a_plan_of_four_billion_is_capped():
    tests = ktap.parse("TAP version 13\n1..4294967295\nok 1 a\n")
    assert len(tests) == ktap.MAX_MISSING


def test_a_nested_document_may_start_with_its_plan():
    # mremap_test prints "1..19" and no version line
    text = "TAP version 13\n# 1..2\n# ok 1 a\n# ok 2 # XFAIL b\nok 1 mremap_test\n1..1\n"
    tests = ktap.parse(text)
    assert [(t.name, str(t.status)) for t in tests[0].subtests] == [
        ("a", "pass"),
        ("test 2", "xfail"),
    ]


def test_a_test_that_skips_as_a_whole_did_not_run_the_rest_of_its_plan():
    """ksm_functional_tests on a kernel without KSM (arm64-bbml2-ci, 6.12): its plan
    says 9, ksft_exit_skip() reports one skip and exits 4."""
    text = (
        "TAP version 13\n# running ./ksm_functional_tests\n# TAP version 13\n# 1..9\n"
        '# ok 2 # SKIP open("/sys/kernel/mm/ksm/run") failed\n'
        "# # Planned tests != run tests (9 != 1)\n"
        "# # Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0\n# [SKIP]\n"
        "ok 1 ksm_functional_tests # SKIP\n"
        "# running ./pagemap_ioctl\n# TAP version 13\n# 1..3\n# ok 1 a\n"
        "harness: TIMEOUT after 300s: pagemap_ioctl\nnot ok 2 pagemap_ioctl # exit=137\n1..2\n"
    )
    ksm, pagemap = ktap.parse(text)
    assert str(ksm.status) == "skip" and len(ksm.subtests) == 9
    assert {str(t.status) for t in ksm.subtests} == {"skip"}
    by = {t.number: t for t in ksm.subtests}
    assert by[2].reason == 'open("/sys/kernel/mm/ksm/run") failed'
    assert by[1].reason == (
        'not run: ksm_functional_tests skipped (open("/sys/kernel/mm/ksm/run") failed)'
    )
    assert all(by[n].reason == by[1].reason for n in range(3, 10))
    # a test killed mid-plan did not skip: what it never reported stays an error
    assert [str(t.status) for t in pagemap.subtests] == ["pass", "error", "error"]
