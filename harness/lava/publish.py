"""Write a prepared run's LAVA job, device file and artifacts into one folder.

The kernel build directory is reused by the next build, so the job never points into it:
the kernel, initramfs and dtb are copied next to the job and addressed by file:// URLs
(lava-run here) or under --artifact-url (a lab, after the folder is published there).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.fsutil import atomic_write_text
from harness.lava import job as jobmod
from harness.lava.validate import validate_device, validate_job
from harness.run import Prepared


@dataclass
class JobFiles:
    """Where one run's LAVA definition lives, and what it holds."""

    dir: Path
    job: Path
    device: Path | None
    data: dict
    artifacts: dict[str, jobmod.Image]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _publish(src: Path, dest_dir: Path, artifact_url: str | None) -> jobmod.Image:
    dest = dest_dir / src.name
    shutil.copyfile(src, dest)
    url = f"{artifact_url.rstrip('/')}/{src.name}" if artifact_url else dest.resolve().as_uri()
    return jobmod.Image(url, _sha(dest))


def write(prep: Prepared, out: Path | None = None, artifact_url: str | None = None) -> JobFiles:
    """Validate, then write job.yaml (+ device.yaml for QEMU) and artifacts/ under out."""
    assert prep.build is not None and prep.initrd is not None
    out = (out or prep.rdir / "lava").resolve()
    art = out / "artifacts"
    art.mkdir(parents=True, exist_ok=True)
    target = prep.target
    images = {
        "kernel": _publish(prep.build.image, art, artifact_url),
        "ramdisk": _publish(prep.initrd, art, artifact_url),
    }
    board = target.lava if target.lava and target.lava.device_type != "qemu" else None
    if board and board.dtb:
        dtb = prep.build.build_dir / board.dtb
        if not dtb.exists():
            raise ConfigError(
                f"{target.path}: lava.dtb: {board.dtb} was not built "
                f"(add dtbs to make_targets?): no {dtb}"
            )
        images["dtb"] = _publish(dtb, art, artifact_url)
    spec = jobmod.JobSpec(
        target=target,
        scenario=prep.scenario.name,
        nonce=prep.nonce,
        cmdline=prep.cmdline,
        timeout_s=prep.boot_timeout or target.boot_timeout,
        kernel=images["kernel"],
        ramdisk=images["ramdisk"],
        dtb=images.get("dtb"),
    )
    data = jobmod.job(spec)
    validate_job(data, str(out / "job.yaml"))
    atomic_write_text(out / "job.yaml", jobmod.dump(data))
    device = None
    if board is None:
        accel = prep.accel or "tcg"
        dev = jobmod.device(target, accel)
        validate_device(dev, str(out / "device.yaml"))
        device = out / "device.yaml"
        atomic_write_text(device, jobmod.dump(dev))
    prep.meta.update(
        lava={
            "job": str(out / "job.yaml"),
            "device": str(device) if device else None,
            "device_type": data["device_type"],
            "artifact_url": artifact_url,
            "artifacts": {k: {"url": v.url, "sha256": v.sha256} for k, v in images.items()},
        }
    )
    return JobFiles(out, out / "job.yaml", device, data, images)
