"""Per-architecture facts as data (configs/arches.yaml), not tables spread over modules.

A new architecture is one entry there: which LAVA name it has, which hosts can run it
under KVM, which ELF machine its Debian binaries carry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from harness.config import Reader, load_yaml, search_dirs
from harness.errors import ConfigError

FILE = "arches.yaml"


@dataclass(frozen=True)
class KernelArch:
    name: str
    lava_arch: str
    kvm_hosts: tuple[str, ...]


@dataclass(frozen=True)
class DebianArch:
    name: str
    elf_machine: int
    selftests_arch: str = ""


@dataclass(frozen=True)
class Arches:
    kernel: dict[str, KernelArch]
    debian: dict[str, DebianArch]

    def lava_arch(self, arch: str) -> str:
        k = self.kernel.get(arch)
        return k.lava_arch if k else arch

    def kvm_hosts(self, arch: str) -> tuple[str, ...]:
        k = self.kernel.get(arch)
        return k.kvm_hosts if k else ()

    def elf_machine(self, debian_arch: str) -> int | None:
        d = self.debian.get(debian_arch)
        return d.elf_machine if d else None

    def selftests_arch(self, debian_arch: str) -> str:
        d = self.debian.get(debian_arch)
        if d is None or not d.selftests_arch:
            raise ConfigError(
                f"configs/{FILE}: debian.{debian_arch}.selftests_arch is not set: the kernel's "
                "selftests cannot be built for it"
            )
        return d.selftests_arch


@functools.cache
def load() -> Arches:
    """The first configs/arches.yaml on the search path ($HARNESS_PATH, then ours)."""
    path = next((d / FILE for d in search_dirs("configs") if (d / FILE).exists()), None)
    if path is None:
        raise ConfigError(f"no configs/{FILE} on the search path")
    r = Reader(load_yaml(path), path)
    kernel, debian = {}, {}
    k = r.sub("kernel")
    for name in list(k.data):
        e = k.sub(name)
        kernel[name] = KernelArch(
            name, e.get("lava_arch", str, name), tuple(e.str_list("kvm_hosts"))
        )
        e.finish()
    d = r.sub("debian")
    for name in list(d.data):
        e = d.sub(name)
        debian[name] = DebianArch(
            name, e.get("elf_machine", int, required=True), e.get("selftests_arch", str, "")
        )
        e.finish()
    r.finish()
    return Arches(kernel, debian)
