"""LAVA job and device definitions, as plain data from a target and a prepared run.

Pure functions (no I/O) so every target's job and device file is golden-tested from fake
paths. The QEMU options come from the same `qemu.command_line` as `harness run`; only the
kernel, initramfs and command line move into the job's image arguments.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import arches, markers, qemu
from harness.config import Target
from harness.errors import ConfigError

# kernel ARCH= -> LAVA's context arch (which qemu-system-* a lab's qemu template picks)
_IMAGE_FLAGS = {"-kernel", "-initrd", "-append"}
DEPLOY_MINUTES = 5
BOOT_MINUTES = {"qemu": 2}  # a QEMU boot action only starts QEMU; a board boots in u-boot
BOARD_BOOT_MINUTES = 5


@dataclass(frozen=True)
class Image:
    """One artifact as a lab fetches it; LAVA checks the sha256 after download."""

    url: str
    sha256: str


@dataclass(frozen=True)
class JobSpec:
    """What a job needs from a prepared run."""

    target: Target
    scenario: str
    nonce: str
    cmdline: str
    timeout_s: int
    kernel: Image
    ramdisk: Image
    dtb: Image | None = None


def lava_arch(target: Target) -> str:
    return arches.load().lava_arch(target.arch)


def check_supported(target: Target) -> None:
    """Refuse before the build what a LAVA QEMU job cannot express."""
    if target.hypervisor is not None:
        raise ConfigError(
            f"{target.path}: hypervisor: LAVA's QEMU boot passes one kernel and one ramdisk, "
            f"not {target.hypervisor.kind} with multiboot modules; run this target with "
            "`harness run` (or `harness nightly`)"
        )


def qemu_options(target: Target, accel: str) -> list[str]:
    """The harness's QEMU argv minus binary and boot images, one option (and value) per item."""
    check_supported(target)
    argv = qemu.command_line(target, Path("K"), Path("R"), "", accel)[1:]
    groups: list[list[str]] = []
    skip = False
    for tok in argv:
        if skip:
            skip = False
        elif tok in _IMAGE_FLAGS:
            skip = True
        elif tok.startswith("-") or not groups:
            groups.append([tok])
        else:
            groups[-1].append(tok)
    return [shlex.join(g) for g in groups]


# the constants lava-server's base.jinja2 renders for a QEMU device (lava-run needs them);
# failure_retry 1: a failed boot is judged, never silently retried
_CONSTANTS = {
    "posix": {
        "lava_test_sh_cmd": "/bin/sh",
        "lava_test_results_dir": "/lava-%s",
        "lava_test_shell_file": "~/.bashrc",
    },
    "shutdown-message": "The system is going down for reboot NOW",
    "kernel-start-message": "Linux version [0-9]",
    "default-shell-prompt": "lava-test: # ",
    "spawn_maxread": "4092",
    "failure_retry": 1,
    "boot_retry": None,
}


def device(target: Target, accel: str) -> dict[str, Any]:
    """The fully rendered QEMU device file for lava-run (it renders no templates)."""
    return {
        "device_type": "qemu",
        "available_architectures": sorted(
            {a.lava_arch for a in arches.load().kernel.values()} | {lava_arch(target)}
        ),
        "constants": _CONSTANTS,
        "parameters": {},
        "actions": {
            "deploy": {
                "connections": {"serial": None},
                "methods": {"image": {"parameters": {"guest": {"size": 512}}}},
            },
            "boot": {
                "connections": {"serial": None},
                "methods": {
                    "qemu": {
                        "parameters": {
                            "command": target.qemu.binary,
                            "boot_options": {},
                            "options": qemu_options(target, accel),
                            "extra": [],
                        }
                    }
                },
            },
        },
        "timeouts": {
            "actions": {
                "apply-overlay-image": {"seconds": 120},
                "umount-retry": {"seconds": 45},
                "lava-test-shell": {"seconds": 30},
                "power-off": {"seconds": 5},
            },
            "connections": {"uboot-retry": {"seconds": 60}},
        },
    }


def monitor(scenario: str, nonce: str) -> dict[str, Any]:
    """A test monitor on the harness markers (harness.markers owns the protocol)."""
    return markers.lava_monitor(scenario, nonce)


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def job(spec: JobSpec) -> dict[str, Any]:
    """The job definition: tmpfs + qemu for QEMU targets, the target's `lava:` board otherwise."""
    t = spec.target
    test_min = _minutes(spec.timeout_s)
    board = t.lava if t.lava and t.lava.device_type != "qemu" else None
    boot_min = BOARD_BOOT_MINUTES if board else BOOT_MINUTES["qemu"]
    context: dict[str, Any] = {"arch": lava_arch(t)}
    if board:
        deploy, boot = _board_actions(spec, context)
        device_type = board.device_type
    else:
        deploy, boot = _qemu_actions(spec, context)
        device_type = t.lava.device_type if t.lava else "qemu"
    data: dict[str, Any] = {
        "device_type": device_type,
        "job_name": f"harness {t.name} {spec.scenario} {spec.nonce}",
        "visibility": "public",
        "priority": "medium",
        "context": context,
        "metadata": {
            "harness.target": t.name,
            "harness.scenario": spec.scenario,
            "harness.nonce": spec.nonce,
        },
        "timeouts": {
            "job": {"minutes": DEPLOY_MINUTES + boot_min + test_min + 1},
            "action": {"minutes": max(DEPLOY_MINUTES, boot_min, test_min)},
            "actions": {"power-off": {"seconds": 10}},
            # the monitor's wait for START and between steps is a connection timeout
            # (120 s by default): give it the whole boot budget, like `harness run`
            "connections": {"lava-test-monitor": {"minutes": test_min}},
        },
        "actions": [
            {"deploy": {"timeout": {"minutes": DEPLOY_MINUTES}, **deploy}},
            {"boot": {"timeout": {"minutes": boot_min}, **boot}},
            {
                "test": {
                    "timeout": {"minutes": test_min},
                    "monitors": [monitor(spec.scenario, spec.nonce)],
                }
            },
        ],
    }
    if board and board.tags:
        data["tags"] = list(board.tags)
    return data


def _url(img: Image, **extra: Any) -> dict[str, Any]:
    return {"url": img.url, "sha256sum": img.sha256, **extra}


def _qemu_actions(spec: JobSpec, context: dict[str, Any]) -> tuple[dict, dict]:
    q = spec.target.qemu
    # a lab's qemu device-type template reads these; lava-run here uses device.yaml
    context.update(
        machine=q.machine,
        cpu=q.cpu,
        memory=q.memory_mb,
        extra_options=[f"-smp {q.smp}", "-no-reboot", *q.extra_args],
    )
    deploy = {
        "to": "tmpfs",
        "images": {
            "kernel": _url(
                spec.kernel, image_arg=f"-kernel {{kernel}} -append {shlex.quote(spec.cmdline)}"
            ),
            "ramdisk": _url(spec.ramdisk, image_arg="-initrd {ramdisk}"),
        },
    }
    return deploy, {"method": "qemu", "media": "tmpfs"}


def _board_actions(spec: JobSpec, context: dict[str, Any]) -> tuple[dict, dict]:
    board = spec.target.lava
    assert board is not None
    # the board's device dictionary sets console=; the rest of the harness line is extra
    args = [a for a in spec.cmdline.split() if not a.startswith("console=")]
    context["extra_kernel_args"] = " ".join(args)
    if board.console:
        context["console_device"] = board.console
    deploy: dict[str, Any] = {
        "to": "tftp",
        "kernel": _url(spec.kernel, type=board.kernel_type),
        "ramdisk": _url(
            spec.ramdisk, compression="gz", install_modules=False, install_overlay=False
        ),
    }
    if spec.dtb is not None:
        deploy["dtb"] = _url(spec.dtb)
    return deploy, {"method": board.boot_method, "commands": board.boot_commands}


def dump(data: dict[str, Any]) -> str:
    """YAML as LAVA users write it: keys in order, block style."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
