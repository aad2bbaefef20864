"""A real OpenSSH server on 127.0.0.1 for tests: its own host key, authorized key and
config in a temporary folder; no system service touched. Not a fake: Debian's sshd."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "harness-test", "-f", str(path)],
        check=True,
    )
    return path


class LoopbackSshd:
    """sshd -D on a free loopback port; `known_hosts` trusts its key, `identity` logs in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
        self.host_key = keygen(root / "host_key")
        self.identity = keygen(root / "id")
        shutil.copy(root / "id.pub", root / "authorized_keys")
        self.port = free_port()
        self.known_hosts = root / "known_hosts"
        self.trust(self.host_key)
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def dest(self) -> str:
        return f"root@127.0.0.1:{self.port}"

    def trust(self, key: Path, file: Path | None = None) -> Path:
        """Write a known_hosts line for key (the public half of a host key)."""
        kind, b64 = Path(f"{key}.pub").read_text().split()[:2]
        out = file or self.known_hosts
        out.write_text(f"[127.0.0.1]:{self.port} {kind} {b64}\n")
        return out

    def start(self) -> LoopbackSshd:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir sshd insists on
        cfg = self.root / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.root}/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
            f"PidFile {self.root}/sshd.pid\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        self.proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the server's lifetime
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
