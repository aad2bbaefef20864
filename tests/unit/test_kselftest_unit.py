"""kselftest scenarios: the step, inheriting a canary, known failures; the guest's runner
and per-test watchdog run here on this machine's bash and sh (the guest's busybox sh and
bash-static run the same scripts), their TAP read back by the KTAP reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import kselftest, ktap
from harness.config import load_scenario
from harness.errors import ConfigError
from harness.verdict import Kind, decide

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _lab(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_PATH", str(tmp_path))


def _scenario(tmp: Path, name: str, text: str):
    d = tmp / "scenarios" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "scenario.yaml").write_text(text)
    return d


def test_shipped_kselftest_scenarios():
    s = load_scenario("kselftest-mm")
    assert s.kselftests == ("mm",) and s.steps[0].name == "kselftest-mm"
    assert s.steps[0].run.startswith("HARNESS_TEST_TIMEOUT=300 /kselftest/run mm categories mmap ")
    k = load_scenario("khugepaged-ptl-nesting-kselftest")
    base = load_scenario("khugepaged-ptl-nesting")
    assert k.canary and k.arches == base.arches and k.requires_config == base.requires_config
    v612 = k.variants[0]
    assert [p.name for p in v612.patches] == [
        "khugepaged-ptl-nesting-6.12.patch",  # found in the inherited scenario's folder
        "selftests-mm-khugepaged-build-6.12.patch",
    ]
    assert v612.patches[0].parent == base.path.parent / "patches"
    assert k.steps[0].run.endswith("tests 'khugepaged all:shmem'")
    assert load_scenario("kunit-mm").cmdline == "kunit.enable=1"


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("kselftest: net", r"steps\[0\]: kselftest 'net': known suites: mm"),
        ("kselftest: mm\n    categories: [a]\n    tests: [b]", "categories or tests, not both"),
        ("kselftest: mm\n    test_timeout: 0", r"steps\[0\]\.test_timeout: must be positive"),
        ("kselftest: mm\n    suite: mm", r"steps\[0\]\.suite: unknown key"),
    ],
)
def test_bad_kselftest_steps_name_the_key(tmp_path, step, error):
    _scenario(tmp_path, "bad", f"steps:\n  - {step}\n")
    with pytest.raises(ConfigError, match=error):
        load_scenario("bad")


def test_inherits_and_known_failures(tmp_path):
    _scenario(tmp_path, "mine", "inherits: kselftest-mm\nsteps:\n  - kselftest: mm\n"
              "    tests: [cow]\nknown_failures:\n  - test: kselftest.mm.cow.*\n"
              "    reason: TCG\n    arches: [arm]\n    kernel: '>=6.12'\n"
              "  - test: kselftest.mm.slow\n    reason: too slow emulated\n"
              "    accel: [tcg]\n")  # fmt: skip
    s = load_scenario("mine")
    assert s.inherits == "kselftest-mm" and s.description == ""
    assert s.steps[0].run == "HARNESS_TEST_TIMEOUT=300 /kselftest/run mm tests cow"
    assert s.known_failure("kselftest.mm.cow.x", "arm", (6, 12, 1)).reason == "TCG"
    assert s.known_failure("kselftest.mm.cow.x", "arm64", (6, 12, 1)) is None
    assert s.known_failure("kselftest.mm.cow.x", "arm", (6, 1, 1)) is None
    slow = s.known_failure("kselftest.mm.slow", "x86", (6, 12, 1), "tcg")
    assert slow.reason == "too slow emulated"
    assert s.known_failure("kselftest.mm.slow", "x86", (6, 12, 1), "kvm") is None
    _scenario(tmp_path, "loop-a", "inherits: loop-b\n")
    _scenario(tmp_path, "loop-b", "inherits: loop-a\n")
    with pytest.raises(ConfigError, match=r"makes a loop \(loop-a -> loop-b -> loop-a\)"):
        load_scenario("loop-a")
    _scenario(tmp_path, "orphan", "inherits: no-such\n")
    with pytest.raises(ConfigError, match="orphan/scenario.yaml: inherits: unknown scenario"):
        load_scenario("orphan")


def _guest(tmp: Path) -> Path:
    """A /kselftest look-alike: the runner and watchdog with their root moved to tmp."""
    root = tmp / "kselftest"
    (root / "mm" / ".real").mkdir(parents=True)
    for name, text in (("run", kselftest.RUNNER), ("watchdog", kselftest.WATCHDOG)):
        (root / name).write_text(text.replace("/kselftest/", f"{root}/"))
        (root / name).chmod(0o755)
    tests = {
        "fine": "#!/bin/sh\necho TAP version 13\necho 1..2\necho ok 1 first\necho ok 2 second\n",
        "broken": "#!/bin/sh\necho 'TAP version 13'\necho 1..1\necho 'not ok 1 sub'\nexit 1\n",
        "hangs": "#!/bin/sh\necho started\nsleep 30 &\nwait\n",
        "slow": "#!/bin/sh\nsleep 3\necho TAP version 13\necho 1..1\necho ok 1 late\n",
    }
    for name, text in tests.items():
        real = root / "mm" / ".real" / name
        real.write_text(text)
        real.chmod(0o755)
        (root / "mm" / name).write_text(
            kselftest.wrapper("mm", name).replace("/kselftest/", f"{root}/")
        )
        (root / "mm" / name).chmod(0o755)
    (root / "mm" / "nobuild").write_text(kselftest.stub("nobuild", "numa.h: No such file"))
    (root / "mm" / "nobuild").chmod(0o755)
    return root


@pytest.mark.skipif(not shutil.which("bash") or not shutil.which("setsid"), reason="bash, setsid")
def test_runner_and_watchdog_give_tap_per_test(tmp_path):
    root = _guest(tmp_path)
    cmd = kselftest.guest_command("mm", [], ["fine", "broken", "hangs", "nobuild", "slow"], 4)
    t0 = time.monotonic()
    out = subprocess.run(["sh", "-c", cmd.replace("/kselftest/", f"{root}/")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HARNESS_HEARTBEAT": str(tmp_path / "beat"),
                              "HARNESS_HEARTBEAT_EVERY": "1"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 25  # the hanging test was killed after 4 s
    tests = ktap.parse(out.stdout)
    ktap.name_all(tests, ("mm",))
    got = {t.path: (str(t.status), t.reason) for t in ktap.walk(tests)}
    assert got == {
        "kselftest.mm.fine": ("pass", ""),
        "kselftest.mm.fine.first": ("pass", ""),
        "kselftest.mm.fine.second": ("pass", ""),
        "kselftest.mm.broken": ("fail", "exit=1"),
        "kselftest.mm.broken.sub": ("fail", ""),
        "kselftest.mm.hangs": ("fail", "exit=137"),
        "kselftest.mm.nobuild": ("skip", ""),
        "kselftest.mm.slow": ("pass", ""),
        "kselftest.mm.slow.late": ("pass", ""),
    }
    beats = (tmp_path / "beat").read_text().splitlines()
    assert "harness: slow running for 1s" in beats and "harness: hangs running for 3s" in beats
    hung = next(t for t in tests if t.name == "hangs")
    assert "# # harness: TIMEOUT after 4s: hangs" in hung.log
    nobuild = next(t for t in tests if t.name == "nobuild")
    assert "# # SKIP: nobuild was not built: numa.h: No such file" in nobuild.log


def test_failed_tests_decide_the_verdict():
    from harness.console import BootResult

    boot = BootResult("", "poweroff", 9.0, 0, started=True, done=True, failed_steps=0)
    text = "TAP version 13\nok 1 a\nnot ok 2 b # exit=1\nnot ok 3 c # exit=2\n1..3\n"
    tests = ktap.parse(text)
    ktap.name_all(tests, ("mm",))
    v = decide(boot, [], load_scenario("kselftest-mm"), None, tests=tests)
    assert v.verdict == Kind.FAIL and v.exit_code == 1
    assert v.summary == "kernel test failed: kselftest.mm.b: exit=1 (+1 more)"
    assert "kernel tests: 3 tests: 1 passed, 2 failed, 0 skipped, 0 known failures" in v.details
    skip = (ktap.Status.SKIP, "the kernel lacks CONFIG_X: no")
    ktap.apply_known(tests, lambda p: skip if p != "kselftest.mm.a" else None)
    assert decide(boot, [], load_scenario("kselftest-mm"), None, tests=tests).verdict == Kind.PASS


def test_build_failures_get_their_compiler_error():
    out = (
        "  CC       khugepaged\n"
        "khugepaged.c:1195:24: error: 'KSFT_SKIP' undeclared (first use in this function)\n"
        "make: *** [../lib.mk:222: /o/khugepaged] Error 1\n"
        "ksm_tests.c:9:10: fatal error: numa.h: No such file or directory\n"
    )
    got = kselftest._reasons(out, ["khugepaged", "ksm_tests", "mystery"])
    assert got["khugepaged"].startswith("khugepaged.c:1195:24: error: 'KSFT_SKIP' undeclared")
    assert got["ksm_tests"].endswith("fatal error: numa.h: No such file or directory")
    assert got["mystery"] == "did not build (see the kselftest build log)"


def _prepared(tmp_path: Path, scenario: str):
    from harness.config import load_target
    from harness.results import Metadata
    from harness.run import Prepared, RunOptions

    opts = RunOptions(target="arm32-highmem-lpae-ci", scenario=scenario)
    return Prepared(opts, load_target(opts.target), load_scenario(scenario), tmp_path,
                    Metadata(tmp_path / "metadata.json", {}), nonce="n1", accel="tcg")  # fmt: skip


def test_a_kselftest_step_that_printed_no_tap_is_an_error_not_a_pass(tmp_path):
    from harness.run import judge_tests

    prep = _prepared(tmp_path, "kselftest-mm")
    console = "Booting Linux\nHARNESS: START n1 scenario=kselftest-mm\nbash: not found\n"
    tests = judge_tests(prep, console, [])
    assert [(t.path, str(t.status)) for t in tests] == [("kselftest.mm.no-tap", "error")]
    assert json.loads((tmp_path / "tests.json").read_text())["counts"]["error"] == 1
    # a guest that never reached user space tested nothing either, but says so elsewhere
    assert judge_tests(prep, "Booting Linux\nKernel panic\n", []) == []


def test_run_vmtests_giving_up_says_why_and_is_a_skip_without_hugetlbfs(tmp_path):
    """6.12's run_vmtests.sh exits before its first test on a kernel without hugetlbfs."""
    from harness.build import BuildResult
    from harness.run import judge_tests

    prep = _prepared(tmp_path, "kselftest-mm")
    console = (
        "HARNESS: START n1 scenario=kselftest-mm\nHARNESS: STEP 1/1 BEGIN kselftest-mm\n"
        "no hugetlbfs support in kernel?\n[   12.5] random: crng init done\n"
        "harness: run_vmtests.sh running for 30s\n# harness: run_vmtests.sh exit 1\n"
        "HARNESS: STEP 1/1 END kselftest-mm rc=0\n"
    )
    said = (
        "run_vmtests.sh printed no TAP document and exited 1 "
        "after 'no hugetlbfs support in kernel?'"
    )
    build = tmp_path / "build"
    build.mkdir()
    prep.build = BuildResult(build, build / "zImage", build / "vmlinux", build / "log", 0.0)
    for config, status, reason in (
        ("CONFIG_MMU=y\n", "skip", "the kernel lacks CONFIG_HUGETLBFS: run_vmtests.sh"),
        ("CONFIG_HUGETLBFS=y\n", "error", said),  # it has hugetlbfs: a failure like any
    ):
        (build / ".config").write_text(config)
        (t,) = judge_tests(prep, console, [])
        assert (t.path, str(t.status)) == ("kselftest.mm.run_vmtests_sh", status)
        assert t.reason.startswith(reason) and said in t.reason
        assert t.log == ["no hugetlbfs support in kernel?"]
    # no build of ours to read the config from: nothing is excused by what it might lack
    prep.build = None
    (t,) = judge_tests(prep, console, [])
    assert (str(t.status), t.reason) == ("error", said)


def test_known_failures_need_their_options_and_reports_stay_with_tests(tmp_path):
    from harness.build import BuildResult
    from harness.oops.model import Report
    from harness.run import judge_tests

    prep = _prepared(tmp_path, "kselftest-mm")
    (tmp_path / ".config").write_text("CONFIG_MMU=y\n# CONFIG_UNIX is not set\n")
    prep.build = BuildResult(tmp_path, tmp_path / "zImage", tmp_path / "vmlinux", tmp_path, 0.0)
    console = (
        "HARNESS: START n1 scenario=kselftest-mm\nTAP version 13\n"
        "# running ./map_populate\n# TAP version 13\n# 1..1\n# Bail out! socketpair()\n"
        "not ok 1 map_populate # exit=1\n# running ./hugepage-vmemmap\n"
        "WARNING: CPU: 0 PID: 9 at mm/x.c:1 f\nnot ok 2 hugepage-vmemmap # exit=1\n1..2\n"
    )
    warn = Report("WARNING in f", start=console.index("WARNING"))
    tests = judge_tests(prep, console, [warn])
    by = {t.path: t for t in ktap.walk(tests)}
    # the kernel lacks CONFIG_UNIX: a skip saying so
    assert str(by["kselftest.mm.map_populate.test_1"].status) == "skip"
    assert by["kselftest.mm.map_populate.test_1"].reason.startswith("the kernel lacks CONFIG_UNIX")
    # a known failure on arm, but the kernel printed a bug during it: it stays a failure
    vm = by["kselftest.mm.hugepage-vmemmap"]
    assert str(vm.status) == "fail" and vm.reports == [0] and "WARNING in f" in vm.reason
    # the same with the report marked as a known issue: the known failure applies
    tests = judge_tests(prep, console, [warn], known_issues={0})
    vm = next(t for t in tests if t.name == "hugepage-vmemmap")
    assert str(vm.status) == "xfail" and vm.reports == [0]


def test_sweep_removes_what_killed_builds_left(tmp_path):
    """A SIGKILLed build leaves its staging copy, half output and log under its pid;
    the next build removes them, and never another live run's."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    me = os.getpid()
    for name in (f"stage-{dead.pid}", f"mm-0123456789abcdef.tmp-{dead.pid}", f"stage-{me}",
                 f"mm-0123456789abcdef.tmp-{me}", "mm-0123456789abcdef"):  # fmt: skip
        (tmp_path / name / "x").mkdir(parents=True)
    old, mine = tmp_path / f"mm-build-{dead.pid}.log", tmp_path / f"mm-build-{me}.log"
    old.write_text("gcc: error\n")
    week = time.time() - (kselftest.FAILED_LOG_DAYS + 1) * 86400
    os.utime(old, (week, week))
    mine.write_text("")
    gone = {p.name for p in kselftest.sweep(tmp_path)}
    assert gone == {f"stage-{dead.pid}", f"mm-0123456789abcdef.tmp-{dead.pid}", old.name}
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {f"stage-{me}", f"mm-0123456789abcdef.tmp-{me}", "mm-0123456789abcdef",
                    mine.name}  # fmt: skip
    # a failed build's log is named in its error message: it stays a while
    old.write_text("gcc: error\n")
    assert kselftest.sweep(tmp_path) == [] and old.exists()


def test_known_failure_for_small_guests_only(tmp_path):
    """mremap_test's 2 GB cases cannot map their source in a 2 GB guest; in a bigger
    one their failure is the kernel's."""
    s = load_scenario("kselftest-mm")
    path = "kselftest.mm.mremap_test.2GB_mremap_-_Source_PUD-aligned"
    assert s.known_failure(path, "arm64", (6, 12, 118), "tcg", 2048).memory_below == 4096
    assert s.known_failure(path, "arm64", (6, 12, 118), "tcg", 8192) is None
    assert s.known_failure(path, "arm64", (6, 12, 118), "tcg") is None  # memory unknown
    # on arm32 the address space is the reason, whatever the memory
    assert "32-bit" in s.known_failure(path, "arm", (6, 12, 118), "tcg", 8192).reason
    _scenario(tmp_path, "bad", "inherits: kselftest-mm\nknown_failures:\n"
              "  - {test: x, reason: y, memory_below: -1}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"known_failures\[0\].memory_below"):
        load_scenario("bad")


def test_mkdirty_needs_proc_mem_force_from_612():
    s = load_scenario("kselftest-mm")
    k = s.known_failure("kselftest.mm.mkdirty.write_failed_2", "arm64", (7, 3, 4), "tcg", 2048)
    assert k is not None and k.needs == ("CONFIG_PROC_MEM_ALWAYS_FORCE",)
    # before 6.12 there is no such option: a failure there is the kernel's
    assert s.known_failure("kselftest.mm.mkdirty.write_failed", "x86", (6, 8, 0), "tcg") is None
