"""Recorded LAVA logs (real lava-run and lava-server runs) read back into console facts."""

from __future__ import annotations

import pytest
from lava_fixtures import CANARY_LOG, CLEAN_LOG, DATA, SERVER_LOG, TITLE_612

from harness.config import load_scenario
from harness.errors import InfraError
from harness.lava import logparse
from harness.oops import parse
from harness.verdict import decide


def test_clean_boot_log():
    log = logparse.parse_log(CLEAN_LOG.read_text())
    assert log.console.startswith("Booting Linux on physical CPU 0x0\n")
    assert "HARNESS: DONE 185739 failed=0\n" in log.console
    assert log.job_result == {"case": "job", "definition": "lava", "result": "pass"}
    assert [(c["case"], c["result"]) for c in log.test_cases] == [("mm_churn", "pass")]
    assert log.boot_command.startswith("/usr/bin/qemu-system-arm -M virt,highmem=off")
    assert 10 < log.seconds < 60
    boot = logparse.boot_result(log, "185739")
    assert (boot.ending, boot.started, boot.done, boot.failed_steps) == ("poweroff", True, True, 0)
    assert [(s.name, s.rc) for s in boot.steps] == [("mm-churn", 0)]
    assert parse(boot.console) == []
    assert decide(boot, [], load_scenario("boot"), None).verdict == "pass"


def test_a_panic_lava_calls_connection_closed_is_the_kernel_crash():
    log = logparse.parse_log(CANARY_LOG.read_text())
    assert log.job_result["error_type"] == "Infrastructure"
    assert log.job_result["error_msg"] == "Connection closed"
    boot = logparse.boot_result(log, "f9b0f0")
    assert boot.ending == "panic" and not boot.done
    reports = parse(boot.console)
    assert [r.title for r in reports] == [TITLE_612]
    scenario = load_scenario("pte-lockptr-highpte")
    variant = scenario.variant_for((6, 12, 117))
    assert variant
    verdict = decide(boot, reports, scenario, variant.expect)
    assert verdict.verdict == "fail" and verdict.exit_code == 1
    assert verdict.summary == f"canary caught as expected: {TITLE_612}"


def test_server_log_format_is_read_the_same():
    log = logparse.parse_log(SERVER_LOG.read_text())
    assert SERVER_LOG.read_text().startswith("- {")
    assert log.job_result["error_msg"] == "Connection closed"
    assert [r.title for r in parse(log.console)] == [TITLE_612]
    assert logparse.boot_result(log, "2cc1f5").ending == "panic"


def test_other_nonce_is_not_this_run():
    boot = logparse.boot_result(logparse.parse_log(CLEAN_LOG.read_text()), "000000")
    assert not boot.started and not boot.done and boot.ending == "qemu-exit"


def test_failure_before_the_kernel_is_an_infra_error_with_lavas_message():
    text = (
        '{"dt": "2026-01-01T00:00:00", "lvl": "error", "msg": "JobError: bad"}\n'
        '{"dt": "2026-01-01T00:00:01", "lvl": "results", "msg": {"case": "job", '
        '"definition": "lava", "error_msg": "file:///x/zImage does not exist", '
        '"error_type": "Job", "result": "fail"}}\n'
    )
    with pytest.raises(InfraError, match=r"before the kernel booted: Job: file:///x/zImage"):
        logparse.boot_result(logparse.parse_log(text), "n")


def test_test_timeout_is_a_timeout():
    lines = [
        line
        for line in CLEAN_LOG.read_text().splitlines(keepends=True)
        if "HARNESS: DONE" not in line and '"case": "job"' not in line
    ]
    lines.append(
        '{"dt": "2026-11-21T19:58:00", "lvl": "results", "msg": {"case": "job", '
        '"definition": "lava", "error_msg": "lava-test-monitor timed out after 600 seconds", '
        '"error_type": "Test", "result": "fail"}}\n'
    )
    boot = logparse.boot_result(logparse.parse_log("".join(lines)), "185739")
    assert boot.ending == "timeout-total" and boot.timed_out and boot.started


def test_garbage_lines_are_skipped():
    text = (
        'not yaml\n{"lvl": "target", "msg": "hello"}\n{broken: [\n- {"lvl": "target", "msg": 5}\n'
    )
    assert logparse.parse_log(text).console == "hello\n5\n"


def test_yaml_only_values_are_read():
    # lava-run writes some values as YAML, not JSON: '"size": ! "123"'
    text = '{"dt": "2026-01-01T00:00:00", "lvl": "results", "msg": {"case": "c", "size": ! "12"}}\n'
    [res] = logparse.parse_log(text).results
    assert res["case"] == "c" and int(res["size"]) == 12


def test_done_marker_logged_as_feedback_counts():
    """lava-server job 4: the monitor stopped on DONE mid-buffer, LAVA logged it as feedback."""
    text = (DATA / "rest" / "job-4-logs.yaml").read_text()
    assert '"lvl": "feedback", "msg": "HARNESS: DONE bf1efc failed=0"' in text
    boot = logparse.boot_result(logparse.parse_log(text), "bf1efc")
    assert boot.done and boot.ending == "poweroff" and boot.failed_steps == 0


def test_feedback_echo_of_the_last_line_is_not_doubled():
    text = (
        '{"lvl": "target", "msg": "poweroff"}\n{"lvl": "feedback", "msg": "poweroff"}\n'
        '{"lvl": "feedback", "msg": "reboot: Power down"}\n'
    )
    assert logparse.parse_log(text).console == "poweroff\nreboot: Power down\n"
