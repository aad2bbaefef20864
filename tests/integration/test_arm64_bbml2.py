"""arm64-bbml2-ci: a real arm64 boot (QEMU virt -cpu max, 4 vCPUs, MTTCG) on 6.12 with the
break-before-make canary caught by DEBUG_VM's software check, and on 7.3 the BBML3 linear
map (emulation enabler, block mappings proven) with the lockless-split canary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import source

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


KNOWN = "arm64-uffd-wp-racy-access-flag"


def test_known_issue_passes_and_is_named(harness):
    """The warning 6.12 itself gives (docs/known-issues/): its one-page reproducer
    warns every boot, the run passes and names it; a clean `harness run` passes too,
    naming it whenever the boot workload's lazy-mmu-stress provoked it."""
    r = harness("run", "arm64-bbml2-ci", "-s", "uffd-wp-access-flag")
    assert r.code == 0, r.stdout + r.stderr
    assert r.meta["verdict"] == "pass"
    assert [k["id"] for k in r.meta["known_issues"]] == [KNOWN]
    assert f"with known issue {KNOWN}" in r.stdout
    (rep,) = r.reports
    assert rep["known_issue"] == KNOWN and "racy access flag clearing" in rep["text"]
    boot = harness("run", "arm64-bbml2-ci")
    assert boot.code == 0, boot.stdout + boot.stderr
    assert all(rep.get("known_issue") == KNOWN for rep in boot.reports), boot.reports
    if boot.reports:
        assert f"with known issue {KNOWN}" in boot.stdout


def test_x86_canary_does_not_apply_to_arm64(harness):
    r = harness("run", "arm64-bbml2-ci", "--scenario", "xen-lazy-mmu-nesting")
    assert r.code == 4 and "it is for x86_64" in r.stdout, r.stdout


def test_bbml3_split_race_clean_twin_proves_block_mappings(harness):
    r = harness(
        "run", "arm64-bbml2-ci", "-s", "bbml2-lockless-split", "--clean", "--kernel", "debian-7.3"
    )
    assert r.code == 0, r.stdout + r.stderr
    assert [Path(p["path"]).name for p in r.meta["patches"]] == [
        "bbml3-allow-qemu-max-7.3.patch",
        "bbml-split-race-hook-7.3.patch",
    ]
    console = (r.results / "console.log").read_text()
    assert "CPU features: detected: BBM Level 3" in console
    blocks = re.search(r"linear map: (\d+) block mappings", console)
    assert blocks and int(blocks.group(1)) > 0, console[-3000:]
    assert re.search(r"bbml_split_race: 40 rounds on fresh contpte ranges .* result 0", console)
    assert r.reports == []


def test_bbml2_lockless_split_canary_caught(harness):
    r = harness("run", "arm64-bbml2-ci", "-s", "bbml2-lockless-split", "--kernel", "debian-7.3")
    assert r.code == 1, r.stdout + r.stderr
    assert r.meta["canary_result"]["caught"] is True
    title = r.reports[0]["title"]
    assert title.startswith("BUG: unable to handle kernel paging request in "), title
    # the hook (a new file) and the bug are gone again: the tree is the tarball's
    tree = source.resolve("debian-7.3").tree
    assert not (tree / "arch/arm64/mm/bbml_split_race.c").exists()
    assert "mutex_lock(&pgtable_split_lock);" in (tree / "arch/arm64/mm/mmu.c").read_text()
