"""x86-xen-pv-ci and x86-64-ci: a real Xen 4.17 (Debian's package) with a PV dom0, the
same kernel booted directly, the lazy-MMU workload and the Xen nesting canary."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

TITLE = "kernel BUG in xen_enter_lazy_mmu"


def test_xen_pv_dom0_clean_boot_with_lazy_mmu_stress(harness):
    r = harness("run", "x86-xen-pv-ci")
    assert r.code == 0, r.stdout + r.stderr
    meta = r.meta
    argv = meta["boot"]["argv"]
    hv = meta["boot"]["hypervisor"]
    assert hv["package"] == "xen-hypervisor-4.17-amd64" and len(hv["sha256"]) == 64
    assert argv[argv.index("-kernel") + 1] == hv["image"]
    assert argv[argv.index("-initrd") + 1].split(" ", 1)[0].endswith("bzImage")
    assert meta["boot"]["accel"] in ("tcg", "kvm") and meta["boot"]["accel_reason"]
    console = (r.results / "console.log").read_text()
    # one stream: Xen's own lines on com1 and dom0's hvc0 console muxed onto it
    assert "(XEN) *** Building a PV Dom0 ***" in console and "Xen version:" in console
    assert "lazy-mmu-stress: ok" in console and "pagemap_scans=" in console
    assert "(XEN) Entering ACPI S5 state." in console
    assert r.reports == []


def test_direct_boot_shares_the_build_and_is_fast(harness):
    r = harness("run", "x86-64-ci")
    assert r.code == 0, r.stdout + r.stderr
    meta = r.meta
    assert "/x86-xen-pv-ci/" in meta["build"]["dir"]
    # the Xen target's build, reused (run right after the Xen clean boot, before the canary)
    assert meta["build"]["steps"] < 50
    assert "hypervisor" not in meta["boot"]
    assert meta["timings"]["boot_to_verdict"] < 60


def test_xen_canary_caught_with_the_xen_line(harness, source_612):
    hdr = source_612 / "arch/x86/include/asm/xen/hypervisor.h"
    before = hdr.read_bytes()
    r = harness("run", "x86-xen-pv-ci", "--scenario", "xen-lazy-mmu-nesting")
    assert r.code == 1, r.stdout + r.stderr
    titles = [rep["title"] for rep in r.reports]
    assert titles[0] == TITLE, titles
    rep = r.reports[0]
    assert "arch/x86/include/asm/xen/hypervisor.h" in rep["text"]
    assert any("Hardware Dom0 crashed" in n for n in rep.get("notes", [])), rep.get("notes")
    assert r.meta["canary_result"]["caught"] is True
    assert hdr.read_bytes() == before


def test_xen_canary_does_not_apply_to_the_direct_boot_or_73(harness):
    r = harness("run", "x86-64-ci", "--scenario", "xen-lazy-mmu-nesting")
    assert r.code == 4 and "needs the kernel under xen" in r.stdout, r.stdout + r.stderr
    r = harness("run", "x86-xen-pv-ci", "-s", "xen-lazy-mmu-nesting", "--kernel", "debian-7.3")
    assert r.code == 4 and "nesting lazy MMU sections is legal" in r.stdout, r.stdout
