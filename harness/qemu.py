"""QEMU command lines from a target's machine profile, and the choice of accelerator.

The argv is pure data (golden-file tested); nothing from a config is ever put in a
shell string.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import arches
from harness import hypervisor as hvmod
from harness.config import Target


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


@dataclass(frozen=True)
class HostFacts:
    """What decides KVM on the machine that runs QEMU (this one, or a host over SSH)."""

    machine: str  # uname -m
    cpu_flags: frozenset[str]
    kvm_problem: str | None  # why /dev/kvm cannot be used; None: it is there and accessible
    probe: Callable[[str], str | None]  # start QEMU with KVM there: None, or what failed
    where: str = ""  # "" here, " on HOST" for a remote machine (in every reason)


def local_facts(
    *,
    host_machine: str | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    kvm_dev: Path = Path("/dev/kvm"),
    probe: Callable[[str], str | None] | None = None,
) -> HostFacts:
    if not kvm_dev.exists() or not os.access(kvm_dev, os.R_OK | os.W_OK):
        problem: str | None = f"{kvm_dev} is missing or not accessible"
    else:
        problem = None
    return HostFacts(
        host_machine or platform.machine(), frozenset(_cpu_flags(cpuinfo)), problem,
        probe or probe_kvm,
    )  # fmt: skip


def choose_accel(
    target: Target,
    forced: str | None = None,
    *,
    facts: HostFacts | None = None,
    host_machine: str | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    kvm_dev: Path = Path("/dev/kvm"),
    probe: Callable[[str], str | None] | None = None,
) -> AccelChoice:
    """KVM only where it is real hardware virtualisation for the guest's arch, else TCG.

    A /dev/kvm without vmx/svm in /proc/cpuinfo is software KVM in a nested VM: guests
    crawl under it (measured: no decompressed kernel after 45 s), so TCG wins there.
    facts: the machine QEMU runs on (default: this one, from the other arguments).
    """
    if forced and forced != "auto":
        return AccelChoice(forced, f"forced with --accel {forced}")
    if target.qemu.accel != "auto":
        return AccelChoice(target.qemu.accel, f"set by {target.path.name} qemu.accel")
    f = facts or local_facts(
        host_machine=host_machine, cpuinfo=cpuinfo, kvm_dev=kvm_dev, probe=probe
    )
    host = f.machine
    if host not in arches.load().kvm_hosts(target.arch):
        return AccelChoice(
            "tcg", f"guest arch {target.arch} cannot use KVM on a {host} host{f.where}"
        )
    if f.kvm_problem:
        return AccelChoice("tcg", f.kvm_problem + f.where)
    if host == "x86_64" and not f.cpu_flags & {"vmx", "svm"}:
        return AccelChoice(
            "tcg",
            f"/dev/kvm exists{f.where} but its CPU flags show no vmx/svm: software KVM, "
            "slower than TCG",
        )
    problem = f.probe(target.qemu.binary)
    if problem:
        return AccelChoice("tcg", f"KVM probe with {target.qemu.binary}{f.where} failed: {problem}")
    return AccelChoice(
        "kvm", f"hardware virtualisation available{f.where} and the KVM probe passed"
    )


def probe_argv(binary: str) -> list[str]:
    """QEMU with KVM and no machine (fed `quit`): catches a /dev/kvm QEMU cannot use."""
    return [binary, "-accel", "kvm", "-M", "none", "-display", "none", "-monitor", "stdio"]


def probe_kvm(binary: str) -> str | None:
    """probe_argv() here (None = ok)."""
    argv = probe_argv(binary)
    try:
        proc = subprocess.run(argv, input="quit\n", capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit {proc.returncode}"
    return None


def kernel_cmdline(target: Target, *extra: str) -> str:
    """Always non-empty (exynos' built-in CONFIG_CMDLINE has mem=256M and wins otherwise)."""
    parts = [f"console={target.qemu.console}", "rdinit=/init", "panic=-1"]
    parts += [target.cmdline, *extra]
    return " ".join(p for p in " ".join(parts).split() if p)


def boot_images(
    target: Target, kernel: Path, initrd: Path, cmdline: str, hypervisor: Path | None
) -> list[str]:
    """-kernel/-initrd/-append: the kernel itself, or a hypervisor with it as a module.

    Under Xen the dom0 kernel and initramfs are multiboot modules ("bzImage args,initrd")
    and -append is Xen's own line; dom0's hvc0 console is muxed onto Xen's com1.
    """
    hv = target.hypervisor
    if hv is None:
        return ["-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline]
    if hypervisor is None:
        raise ValueError(f"target {target.name} boots under {hv.kind}: its image is needed")
    modules = ",".join([hvmod.module_arg(kernel, cmdline), hvmod.module_arg(initrd)])
    return ["-kernel", str(hypervisor), "-append", hv.cmdline, "-initrd", modules]


def command_line(
    target: Target,
    kernel: Path,
    initrd: Path,
    cmdline: str,
    accel: str,
    hypervisor: Path | None = None,
) -> list[str]:
    """The full QEMU argv for one boot."""
    q = target.qemu
    argv = [
        q.binary,
        "-M",
        q.machine,
        "-cpu",
        q.cpu_for(accel),
        "-smp",
        str(q.smp),
        "-m",
        str(q.memory_mb),
        "-accel",
        f"{accel},{q.tcg_options}" if accel == "tcg" and q.tcg_options else accel,
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        *boot_images(target, kernel, initrd, cmdline, hypervisor),
        *q.extra_args,
    ]
    return argv


def shell_line(argv: list[str]) -> str:
    return shlex.join(argv)
