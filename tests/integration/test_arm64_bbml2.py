"""arm64-bbml2-ci on 6.12: a real arm64 boot (QEMU virt -cpu max, 4 vCPUs, MTTCG) and the
break-before-make canary caught by DEBUG_VM's software check."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_arm64_clean_twin_boots_and_passes(harness):
    r = harness("run", "arm64-bbml2-ci", "-s", "cow-without-bbm", "--clean")
    assert r.code == 0, r.stdout + r.stderr
    assert r.meta["patches"] == [] and r.meta["command"].endswith("--clean")
    argv = r.meta["boot"]["argv"]
    assert argv[0] == "qemu-system-aarch64" and "tcg,thread=multi" in argv
    assert "rodata=full" in argv[argv.index("-append") + 1]
    console = (r.results / "console.log").read_text()
    assert "mm-churn: 20 rounds of 2 MB, 0 failed" in console
    assert r.reports == []


def test_cow_without_bbm_canary_caught(harness, source_612):
    before = (source_612 / "mm/memory.c").read_bytes()
    r = harness("run", "arm64-bbml2-ci", "--scenario", "cow-without-bbm")
    assert r.code == 1, r.stdout + r.stderr
    rep = r.reports[0]
    assert rep["title"] == "WARNING in __check_safe_pte_update"
    assert "unsafe attribute change" in rep["text"]
    assert "handle_mm_fault" in [f["function"] for f in rep["frames"]]
    assert r.meta["canary_result"]["caught"] is True
    assert (source_612 / "mm/memory.c").read_bytes() == before


def test_x86_canary_does_not_apply_to_arm64(harness):
    r = harness("run", "arm64-bbml2-ci", "--scenario", "xen-lazy-mmu-nesting")
    assert r.code == 4 and "it is for x86_64" in r.stdout, r.stdout
