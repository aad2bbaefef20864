"""Golden files for generated QEMU command lines, and the accelerator choice."""

import os
from pathlib import Path

import pytest

from harness import config, qemu
from harness.errors import ConfigError

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "qemu"


@pytest.mark.parametrize("name", config.list_targets())
def test_command_line_golden(name):
    target = config.load_target(name)
    cmdline = qemu.kernel_cmdline(target, "harness.extra=1")
    hv = Path("/H/xen-4.17-amd64") if target.hypervisor else None
    text = ""
    for accel in ("tcg", "kvm"):
        argv = qemu.command_line(
            target, Path("/K/zImage"), Path("/R/initramfs.cpio.gz"), cmdline, accel, hv
        )
        text += f"# accel={accel}\n" + "\n".join(argv) + "\n"
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


def test_xen_modules_double_commas_and_keep_xen_line():
    t = config.load_target("x86-xen-pv")
    line = qemu.kernel_cmdline(t, "foo=a,b")
    argv = qemu.command_line(t, Path("/k/bzImage"), Path("/r/i.cpio"), line, "tcg", Path("/x/xen"))
    assert argv[argv.index("-kernel") + 1] == "/x/xen"
    assert argv[argv.index("-append") + 1].startswith("console=com1 ")
    modules = argv[argv.index("-initrd") + 1]
    assert modules.startswith("/k/bzImage console=hvc0 ") and modules.endswith(",/r/i.cpio")
    assert "foo=a,,b" in modules and modules.count(",") == 3  # a,,b plus the separator


def test_xen_target_without_image_or_with_comma_path_is_refused():
    t = config.load_target("x86-xen-pv")
    with pytest.raises(ValueError, match="boots under xen"):
        qemu.command_line(t, Path("k"), Path("i"), "x", "tcg")
    with pytest.raises(ConfigError, match="cannot hold"):
        qemu.command_line(t, Path("/a,b/bzImage"), Path("i"), "x", "tcg", Path("/x/xen"))


def test_kvm_cpu_only_under_kvm():
    t = config.load_target("x86-64")
    tcg = qemu.command_line(t, Path("k"), Path("i"), "x", "tcg")
    kvm = qemu.command_line(t, Path("k"), Path("i"), "x", "kvm")
    assert tcg[tcg.index("-cpu") + 1] == "max" and kvm[kvm.index("-cpu") + 1] == "host"
    assert "-kernel" in tcg and tcg[tcg.index("-kernel") + 1] == "k"


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
    hw = {"host_machine": "x86_64", "cpuinfo": _cpuinfo(tmp_path, "vmx"), "kvm_dev": kvm}
    c = qemu.choose_accel(t, **hw, probe=lambda binary: None)
    assert c.accel == "kvm" and "probe passed" in c.reason
    c = qemu.choose_accel(t, **hw, probe=lambda binary: "Could not access KVM kernel module")
    assert c.accel == "tcg" and "Could not access KVM kernel module" in c.reason
    assert qemu.choose_accel(t, "tcg").reason == "forced with --accel tcg"
