"""Golden LAVA job and device files for every target, and the monitor's patterns."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from lava_fixtures import DATA, needs_lava_common

from harness import config, qemu
from harness.errors import ConfigError
from harness.lava import job

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lava"
BOARD_DIR = DATA / "targets"


def spec_for(target: config.Target, **kw) -> job.JobSpec:
    """A job from fixed fake paths, so the golden files are stable."""
    return job.JobSpec(
        target=target,
        scenario=kw.get("scenario", "boot"),
        nonce="abc123",
        cmdline=qemu.kernel_cmdline(target),
        timeout_s=target.boot_timeout,
        kernel=job.Image("file:///K/zImage", "0" * 64),
        ramdisk=job.Image("file:///R/initramfs.cpio.gz", "1" * 64),
        dtb=kw.get("dtb"),
    )


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HARNESS_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing {path}; run with HARNESS_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; HARNESS_REGEN_GOLDEN=1 if intended"


def _all_targets() -> list[tuple[str, config.Target]]:
    out = [(n, config.load_target(n)) for n in _lava_targets()]
    out += [(n, config.load_target(n, BOARD_DIR)) for n in config.list_targets(BOARD_DIR)]
    return out


def _lava_targets() -> list[str]:
    return [n for n in config.list_targets() if config.load_target(n).hypervisor is None]


def test_hypervisor_target_is_refused_before_any_build():
    target = config.load_target("x86-xen-pv-ci")
    with pytest.raises(ConfigError, match="multiboot modules.*harness run"):
        job.check_supported(target)
    with pytest.raises(ConfigError, match="hypervisor"):
        job.device(target, "tcg")


@pytest.mark.parametrize("name", _lava_targets())
def test_qemu_job_and_device_golden(name):
    target = config.load_target(name)
    _golden(f"{name}.job.yaml", job.dump(job.job(spec_for(target))))
    _golden(f"{name}.device.yaml", job.dump(job.device(target, "tcg")))


def test_board_job_golden():
    target = config.load_target("odroid-xu3", BOARD_DIR)
    dtb = job.Image("file:///K/exynos5422-odroidxu3.dtb", "2" * 64)
    data = job.job(spec_for(target, dtb=dtb))
    _golden("odroid-xu3.job.yaml", job.dump(data))
    assert data["device_type"] == "odroid-xu3" and data["tags"] == ["exynos5422"]
    deploy = data["actions"][0]["deploy"]
    assert deploy["to"] == "tftp" and deploy["dtb"]["url"].endswith(".dtb")
    assert deploy["ramdisk"]["install_overlay"] is False
    assert data["actions"][1]["boot"] == {
        "timeout": {"minutes": job.BOARD_BOOT_MINUTES},
        "method": "u-boot",
        "commands": "ramdisk",
    }
    # the board's device dictionary owns console=; the rest of the harness line is passed on
    assert data["context"]["extra_kernel_args"] == "rdinit=/init panic=-1 loglevel=7"
    assert data["context"]["console_device"] == "ttySAC2"


@needs_lava_common
@pytest.mark.parametrize(
    "name,target", _all_targets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_target_validates_strictly(name, target):
    from harness.lava.validate import validate_device, validate_job

    validate_job(job.job(spec_for(target)), f"{name} job")
    if target.lava is None:
        validate_device(job.device(target, "tcg"), f"{name} device")


def test_device_options_are_the_harness_qemu_line_without_images():
    target = config.load_target("arm32-highmem-ci")
    opts = job.qemu_options(target, "tcg")
    assert opts[:3] == ["-M virt,highmem=off", "-cpu cortex-a15", "-smp 2"]
    assert "-no-reboot" in opts and "-accel tcg" in opts
    assert not any(o.split()[0] in ("-kernel", "-initrd", "-append") for o in opts)
    argv = qemu.command_line(target, Path("K"), Path("R"), "x", "tcg")
    flat = [t for o in opts for t in o.split()]
    assert flat == [
        a for a in argv[1:] if a not in ("-kernel", "K", "-initrd", "R", "-append", "x")
    ]


def test_kernel_command_line_goes_into_the_image_arg_quoted():
    target = config.load_target("arm32-highmem-ci")
    data = job.job(spec_for(target))
    arg = data["actions"][0]["deploy"]["images"]["kernel"]["image_arg"]
    assert arg == "-kernel {kernel} -append 'console=ttyAMA0 rdinit=/init panic=-1 loglevel=7'"


def test_timeouts_follow_the_boot_timeout_and_fit_the_job():
    target = config.load_target("arm32-highmem-ci")
    spec = spec_for(target)
    data = job.job(job.JobSpec(**{**spec.__dict__, "timeout_s": 1500}))
    t = data["timeouts"]
    assert data["actions"][2]["test"]["timeout"] == {"minutes": 25}
    assert t["connections"]["lava-test-monitor"] == {"minutes": 25}
    assert t["action"]["minutes"] <= t["job"]["minutes"]
    assert t["job"]["minutes"] == job.DEPLOY_MINUTES + 2 + 25 + 1


def _monitor_matches(text: str) -> list[tuple[str, str]]:
    mon = job.monitor("boot", "abc123")
    fix = mon["fixupdict"]
    return [(m["test_case_id"], fix[m["result"]]) for m in re.finditer(mon["pattern"], text)]


def test_monitor_pattern_reads_steps_through_the_pty():
    text = (
        "HARNESS: STEP 1/3 END mm-churn rc=0\r\r\n"
        "HARNESS: STEP 2/3 END khugepaged collapse rc=77\r\r\n"
        "HARNESS: STEP 3/3 END thp rc=7\r\n"
        "HARNESS: STEP 3/3 END big rc=139\n"
    )
    assert _monitor_matches(text) == [
        ("mm-churn", "pass"),
        ("khugepaged collapse", "skip"),
        ("thp", "fail"),
        ("big", "fail"),
    ]
    # an rc not yet terminated by its line end is not read early
    assert _monitor_matches("HARNESS: STEP 1/1 END x rc=7") == []


def test_monitor_start_and_end_are_this_runs_markers():
    mon = job.monitor("boot", "abc123")
    assert re.search(mon["start"], "HARNESS: START abc123 scenario=boot kernel=6.12")
    assert not re.search(mon["start"], "HARNESS: START abc1234 scenario=boot")
    assert re.search(mon["end"], "HARNESS: DONE abc123 failed=0")
    assert not re.search(mon["end"], "HARNESS: DONE ffffff failed=0")


def test_lava_mapping_is_read_strictly(tmp_path):
    src = (BOARD_DIR / "odroid-xu3.yaml").read_text()
    (tmp_path / "bad.yaml").write_text(src.replace("  console: ttySAC2", "  consol: ttySAC2"))
    with pytest.raises(ConfigError, match=r"bad.yaml: lava.consol: unknown key"):
        config.load_target("bad", tmp_path)
    (tmp_path / "nodev.yaml").write_text(src.replace("  device_type: odroid-xu3\n", ""))
    with pytest.raises(ConfigError, match=r"lava.device_type: required key is missing"):
        config.load_target("nodev", tmp_path)


def test_dump_is_plain_yaml_in_order():
    target = config.load_target("arm32-highmem-ci")
    text = job.dump(job.job(spec_for(target)))
    assert text.startswith("device_type: qemu\njob_name: harness arm32-highmem-ci boot abc123\n")
    assert yaml.safe_load(text)["actions"][2]["test"]["monitors"][0]["name"] == "harness-boot"
