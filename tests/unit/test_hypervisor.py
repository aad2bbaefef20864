"""Hypervisor images and the scenario/target fit checks that keep Xen canaries honest."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import hypervisor, run
from harness.config import load_scenario, load_target
from harness.errors import ConfigError, InfraError, NotApplicable


def _elf(tmp: Path, magic: bytes, at: int) -> Path:
    data = bytearray(b"\x7fELF" + b"\0" * 40000)
    data[at : at + 4] = magic
    p = tmp / "xen"
    p.write_bytes(bytes(data))
    return p


def test_multiboot_header_is_required(tmp_path):
    hypervisor.check_multiboot(_elf(tmp_path, (0x1BADB002).to_bytes(4, "little"), 4096), "x")
    with pytest.raises(InfraError, match="multiboot2 only"):
        hypervisor.check_multiboot(_elf(tmp_path, (0xE85250D6).to_bytes(4, "little"), 16), "x")
    gz = tmp_path / "xen.gz"
    gz.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(InfraError, match="not an ELF"):
        hypervisor.check_multiboot(gz, "xen.gz")


def test_module_arg_doubles_commas():
    assert hypervisor.module_arg(Path("/k/bz"), "a=1,2 b") == "/k/bz a=1,,2 b"
    assert hypervisor.module_arg(Path("/r/i.cpio")) == "/r/i.cpio"
    with pytest.raises(ConfigError, match="cannot hold"):
        hypervisor.module_arg(Path("/a b/bz"))


def test_xen_canary_does_not_apply_without_xen_or_on_arm():
    canary = load_scenario("xen-lazy-mmu-nesting")
    run.check_target_fits(canary, load_target("x86-xen-pv-ci"))
    with pytest.raises(NotApplicable, match="needs the kernel under xen.*without a hypervisor"):
        run.check_target_fits(canary, load_target("x86-64-ci"))
    with pytest.raises(NotApplicable, match="it is for x86_64, x86, the target is arm"):
        run.check_target_fits(canary, load_target("arm32-highmem-ci"))
    run.check_target_fits(load_scenario("boot"), load_target("x86-64-ci"))


def test_not_applicable_variant_stops_before_patching():
    canary = load_scenario("xen-lazy-mmu-nesting")
    src = SimpleNamespace(version=(7, 3, 4), version_str="7.3.4")
    with pytest.raises(NotApplicable, match="kernel 7.3.4: nesting lazy MMU sections is legal"):
        run.select_patches(canary, src, ())
    plan = run.select_patches(canary, SimpleNamespace(version=(6, 12, 117)), ())
    assert [p.name for p in plan.alternatives[0]] == [
        "set_ptes-nested-lazy-mmu-6.12.patch",
        "xen-revert-lazy-nesting-6.12.patch",
    ]


def test_clean_twin_drops_the_bug_but_keeps_enablers():
    src = SimpleNamespace(version=(7, 3, 4), version_str="7.3.4")
    split = load_scenario("bbml2-lockless-split")
    plan = run.select_patches(split, src, (), clean=True)
    assert [p.name for p in plan.alternatives[0]] == [
        "bbml3-allow-qemu-max-7.3.patch",
        "bbml-split-race-hook-7.3.patch",
    ]
    variant, note = plan.chosen(0, "7.3.4")
    assert variant.requires_console and "clean twin" in note
    plan = run.select_patches(split, src, ())
    assert [p.name for p in plan.alternatives[0]][-1] == "split-without-lock-7.3.patch"
    cow = load_scenario("cow-without-bbm")
    assert run.select_patches(cow, src, (), clean=True).alternatives[0] == []
