"""A board stand-in for tests: a QEMU x86_64 guest with an SSH server and kexec-tools.

Not a fake of the harness's parts: real QEMU, a real kernel (the x86 CI build, which has
KEXEC and an e1000 for this), Debian's dropbear and kexec-tools, reachable at
127.0.0.1:PORT through QEMU's user-mode networking. Its "power" is starting that QEMU and
its "console" is QEMU's serial line on stdout: the board's `console:` command.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
from pathlib import Path

from harness import debian, rootfs
from harness.rootfs import Entry, write_newc

# dropbear and kexec-tools with the libraries bookworm's builds link (the others come
# from this machine, which is bookworm too)
PACKAGES = (
    "dropbear-bin", "kexec-tools", "libtomcrypt1", "libtommath1", "libxenmisc4.17",
    "libxencall1", "libxendevicemodel1", "libxenevtchn1", "libxenforeignmemory1",
    "libxengnttab1", "libxenhypfs1", "libxenstore4", "libxentoollog1", "libxentoolcore1",
    "libyajl2",
)  # fmt: skip
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")  # openssh-sftp-server, with openssh-server

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
ifconfig lo 127.0.0.1 up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
route add default gw 10.0.2.2
echo "standin-board: network up, starting dropbear"
/usr/sbin/dropbear -F -E -s -p 22 -r /etc/dropbear/dropbear_ed25519_host_key &
while :; do sleep 1000; done
"""


class _Debs:
    """The packages, each extracted into its own folder under the cache."""

    def __init__(self, cache: Path) -> None:
        self.roots = []
        for pkg in PACKAGES:
            dest = cache / "board-standin" / pkg
            if not (dest / ".done").exists():
                deb = debian.download_deb(pkg, suites=["bookworm"], arch="amd64",
                                          cache=cache / "downloads")  # fmt: skip
                debian.extract_deb(deb, dest)
                (dest / ".done").write_text("")
            self.roots.append(dest)

    def find(self, rel: str) -> Path:
        return next(r / rel for r in self.roots if (r / rel).exists())

    @property
    def libdirs(self) -> list[Path]:
        return [r / d for r in self.roots for d in ("usr/lib/x86_64-linux-gnu",
                                                     "lib/x86_64-linux-gnu")]  # fmt: skip


def _libs(binary: Path, libdirs: list[Path]) -> list[Path]:
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(map(str, libdirs))}
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=True)
    paths = []
    for line in out.stdout.splitlines():
        m = re.search(r"=> (\S+) \(", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            if "not found" in line:
                raise RuntimeError(f"{binary}: {line.strip()}")
            paths.append(Path(m.group(1)))
    return paths


def host_key(cache: Path, dest: Path) -> tuple[bytes, str]:
    """A fresh dropbear ed25519 host key: (the key file's bytes, 'ssh-ed25519 AAAA...')."""
    debs = _Debs(cache)
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(map(str, debs.libdirs))}
    keygen = debs.find("usr/bin/dropbearkey")
    subprocess.run([str(keygen), "-t", "ed25519", "-f", str(dest)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    pub = subprocess.run([str(keygen), "-y", "-f", str(dest)], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    line = next(ln for ln in pub.splitlines() if ln.startswith("ssh-ed25519 "))
    return dest.read_bytes(), " ".join(line.split()[:2])


def initramfs(cache: Path, out: Path, authorized_key: str, key_file: bytes) -> Path:
    """The stand-in's own system: busybox, dropbear (with sftp-server), kexec."""
    debs = _Debs(cache)
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in (
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/lib", "lib", "lib/x86_64-linux-gnu",
        "lib64", "etc", "etc/dropbear", "dev", "proc", "sys", "tmp", "run", "var", "var/log",
    )]  # fmt: skip
    entries += [
        Entry("root", stat.S_IFDIR | 0o700),
        Entry("root/.ssh", stat.S_IFDIR | 0o700),
        Entry("root/.ssh/authorized_keys", stat.S_IFREG | 0o600, authorized_key.encode()),
        Entry("etc/dropbear/dropbear_ed25519_host_key", stat.S_IFREG | 0o600, key_file),
        Entry("etc/passwd", stat.S_IFREG | 0o644, b"root:x:0:0:root:/root:/bin/sh\n"),
        Entry("etc/group", stat.S_IFREG | 0o644, b"root:x:0:\n"),
        Entry("etc/shells", stat.S_IFREG | 0o644, b"/bin/sh\n"),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)),
        Entry("init", stat.S_IFREG | 0o755, INIT.encode()),
        Entry("bin/busybox", stat.S_IFREG | 0o755,
              rootfs.busybox_for("amd64", cache).read_bytes()),
    ]  # fmt: skip
    binaries = {
        "usr/sbin/dropbear": debs.find("usr/sbin/dropbear"),
        "sbin/kexec": debs.find("sbin/kexec"),
        "usr/lib/sftp-server": SFTP_SERVER,
    }
    libs: dict[str, Path] = {}
    for name, src in binaries.items():
        entries.append(Entry(name, stat.S_IFREG | 0o755, src.read_bytes()))
        for lib in _libs(src, debs.libdirs):
            dest = "lib64/" + lib.name if lib.name.startswith("ld-linux") else (
                "lib/x86_64-linux-gnu/" + lib.name)  # fmt: skip
            libs[dest] = lib
    entries += [Entry(d, stat.S_IFREG | 0o755, p.resolve().read_bytes()) for d, p in libs.items()]
    out.write_bytes(gzip.compress(write_newc(entries), mtime=0))
    return out


def console_command(kernel: Path, initrd: Path, port: int) -> list[str]:
    """The board's `console:` command: powering it on is starting it."""
    return [
        "qemu-system-x86_64", "-M", "q35", "-cpu", "max", "-smp", "2", "-m", "2048",
        "-accel", "tcg", "-display", "none", "-monitor", "none", "-serial", "stdio",
        "-no-reboot", "-nic", f"user,model=e1000,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", "console=ttyS0 rdinit=/init panic=-1 loglevel=7",
    ]  # fmt: skip
