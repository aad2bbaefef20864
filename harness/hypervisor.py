"""The hypervisor a target boots its kernel under (Xen for PV dom0 targets).

Xen comes from Debian's xen-hypervisor package: its boot/xen-*.gz, gunzipped, is a
multiboot ELF that QEMU's -kernel loads directly, so no bootloader or disk is needed.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from harness import debian
from harness.config import Hypervisor
from harness.errors import ConfigError, InfraError

_MULTIBOOT_MAGIC = (0x1BADB002).to_bytes(4, "little")
_MULTIBOOT2_MAGIC = (0xE85250D6).to_bytes(4, "little")


def image_for(hv: Hypervisor, cache: Path) -> Path:
    """The bootable hypervisor image, downloaded and unpacked once into the cache."""
    dest = cache / "hypervisor" / hv.package
    out = dest / Path(hv.image).name.removesuffix(".gz")
    if out.exists():
        return out
    deb = debian.download_deb(
        f"{hv.package}:amd64", suites=list(hv.suites), arch="amd64", cache=cache / "downloads"
    )
    unpacked = dest / "deb"
    debian.extract_deb(deb, unpacked)
    src = unpacked / hv.image
    if not src.exists():
        found = sorted(str(p.relative_to(unpacked)) for p in (unpacked / "boot").glob("*"))
        raise ConfigError(
            f"hypervisor.image: {hv.image} is not in {deb.name} (it has: {', '.join(found)})"
        )
    tmp = out.with_suffix(".tmp")
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    check_multiboot(tmp, f"{hv.image} from {deb.name}")
    tmp.rename(out)
    return out


def check_multiboot(path: Path, what: str) -> None:
    """QEMU's -kernel only takes a multiboot (v1) image; say so before a silent black boot."""
    head = path.read_bytes()[:32768]
    if head[:4] != b"\x7fELF":
        raise InfraError(f"{what}: not an ELF image (still compressed?)")
    # the multiboot header is 32-bit aligned within the first 8 KiB (v1) or 32 KiB (v2)
    v1 = any(head[i : i + 4] == _MULTIBOOT_MAGIC for i in range(0, 8192, 4))
    if not v1:
        v2 = any(head[i : i + 4] == _MULTIBOOT2_MAGIC for i in range(0, 32768, 8))
        hint = " (multiboot2 only: QEMU's -kernel cannot boot it)" if v2 else ""
        raise InfraError(f"{what}: no multiboot header in the first 8 KiB{hint}")


def module_arg(path: Path, cmdline: str = "") -> str:
    """One multiboot module for QEMU's -initrd: 'path args', commas doubled."""
    if "," in str(path) or " " in str(path):
        raise ConfigError(
            f"{path}: a multiboot module path cannot hold ',' or ' ' (QEMU's -initrd syntax); "
            "move the cache or results directory"
        )
    text = f"{path} {cmdline}".strip()
    return text.replace(",", ",,")
