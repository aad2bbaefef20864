"""QEMU command lines from a target's machine profile, and the choice of accelerator.

The argv is pure data (golden-file tested); nothing from a config is ever put in a
shell string.
"""

from __future__ import annotations

import os
import platform
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.config import Target

# guest arch (kernel ARCH=) -> the host machine names that can run it under KVM
_KVM_HOSTS = {"x86": {"x86_64"}, "x86_64": {"x86_64"}, "arm64": {"aarch64"}, "arm": set()}


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator and why, recorded in metadata.json so slow runs can be explained."""

    accel: str
    reason: str


def _cpu_flags(cpuinfo: Path) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def choose_accel(
    target: Target,
    forced: str | None = None,
    *,
    host_machine: str | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    kvm_dev: Path = Path("/dev/kvm"),
) -> AccelChoice:
    """KVM only where it is real hardware virtualisation for the guest's arch, else TCG.

    A /dev/kvm without vmx/svm in /proc/cpuinfo is software KVM in a nested VM: guests
    crawl under it (measured: no decompressed kernel after 45 s), so TCG wins there.
    """
    if forced and forced != "auto":
        return AccelChoice(forced, f"forced with --accel {forced}")
    if target.qemu.accel != "auto":
        return AccelChoice(target.qemu.accel, f"set by {target.path.name} qemu.accel")
    host = host_machine or platform.machine()
    if host not in _KVM_HOSTS.get(target.arch, set()):
        return AccelChoice("tcg", f"guest arch {target.arch} cannot use KVM on a {host} host")
    if not kvm_dev.exists() or not os.access(kvm_dev, os.R_OK | os.W_OK):
        return AccelChoice("tcg", f"{kvm_dev} is missing or not accessible")
    flags = _cpu_flags(cpuinfo)
    if host == "x86_64" and not flags & {"vmx", "svm"}:
        return AccelChoice(
            "tcg", f"{kvm_dev} exists but {cpuinfo} shows no vmx/svm: software KVM, slower than TCG"
        )
    return AccelChoice("kvm", "hardware virtualisation available")


def kernel_cmdline(target: Target, *extra: str) -> str:
    """Always non-empty (exynos' built-in CONFIG_CMDLINE has mem=256M and wins otherwise)."""
    parts = [f"console={target.qemu.console}", "rdinit=/init", "panic=-1"]
    parts += [target.cmdline, *extra]
    return " ".join(p for p in " ".join(parts).split() if p)


def command_line(target: Target, kernel: Path, initrd: Path, cmdline: str, accel: str) -> list[str]:
    """The full QEMU argv for one boot."""
    q = target.qemu
    argv = [
        q.binary,
        "-M",
        q.machine,
        "-cpu",
        q.cpu,
        "-smp",
        str(q.smp),
        "-m",
        str(q.memory_mb),
        "-accel",
        accel,
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        cmdline,
        *q.extra_args,
    ]
    return argv


def shell_line(argv: list[str]) -> str:
    return shlex.join(argv)
