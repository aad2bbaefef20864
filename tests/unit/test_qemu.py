"""Golden files for generated QEMU command lines, and the accelerator choice."""

import os
from pathlib import Path

import pytest

from harness import config, qemu

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "qemu"


@pytest.mark.parametrize("name", config.list_targets())
def test_command_line_golden(name):
    target = config.load_target(name)
    cmdline = qemu.kernel_cmdline(target, "harness.extra=1")
    argv = qemu.command_line(
        target, Path("/K/zImage"), Path("/R/initramfs.cpio.gz"), cmdline, "tcg"
    )
    text = "\n".join(argv) + "\n"
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("HARNESS_REGEN_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"missing {golden}; run with HARNESS_REGEN_GOLDEN=1"
    assert text == golden.read_text()


def test_cmdline_never_empty_and_has_panic():
    t = config.load_target("arm32-highmem")
    line = qemu.kernel_cmdline(t)
    assert "console=ttyAMA0" in line and "panic=-1" in line and "rdinit=/init" in line
    argv = qemu.command_line(t, Path("k"), Path("i"), line, "tcg")
    assert "-no-reboot" in argv
    assert argv[argv.index("-append") + 1] == line


def _cpuinfo(tmp: Path, flags: str) -> Path:
    p = tmp / "cpuinfo"
    p.write_text(f"processor\t: 0\nflags\t\t: fpu {flags} sse2\n")
    return p


def test_accel_arm_guest_is_tcg():
    t = config.load_target("arm32-highmem")
    assert qemu.choose_accel(t, host_machine="x86_64").accel == "tcg"


def test_accel_software_kvm_is_refused(tmp_path, monkeypatch):
    t = config.load_target("arm32-highmem")
    object.__setattr__(t, "arch", "x86_64")
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    c = qemu.choose_accel(t, host_machine="x86_64", cpuinfo=_cpuinfo(tmp_path, ""), kvm_dev=kvm)
    assert c.accel == "tcg" and "no vmx/svm" in c.reason
    c = qemu.choose_accel(t, host_machine="x86_64", cpuinfo=_cpuinfo(tmp_path, "vmx"), kvm_dev=kvm)
    assert c.accel == "kvm"
    assert qemu.choose_accel(t, "tcg").reason == "forced with --accel tcg"
