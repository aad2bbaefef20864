"""SSH to a remote machine (a KVM host, a board): checked host keys, keys only, timeouts.

Host keys come from a known_hosts file and nothing else: an unknown or changed key is
refused (never auto-added), because a run streams its console and results back from
that machine and a bisection acts on them. Authentication is by key only (ssh-agent, or
one identity file); a password is never asked for, taken from argv, or logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.errors import ConfigError, InfraError

CONNECT_TIMEOUT = 15.0  # TCP connect, SSH banner and authentication, each
COMMAND_TIMEOUT = 120.0  # a short remote command (mkdir, kill, a probe)
KEEPALIVE = 30  # seconds: the connection is held through a kernel build

RUN_DIR_PREFIX = "harness-run."  # a run's directory on a host or a board

_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


def check_remote_dir(value: str, what: str) -> str:
    """A directory on the other machine: absolute, no '..', no control characters."""
    if not value.startswith("/") or any(ord(c) < 0x20 for c in value) or "/../" in value + "/":
        raise ConfigError(f"{what} {value!r}: an absolute path on the other machine is needed")
    return value.rstrip("/") or "/"


class HostKeyError(ConfigError):
    """The host's key is not the one known_hosts has (or there is none): nothing is sent.

    A usage error (exit 4), not an infra error: retrying cannot help, a person must check
    the key; and never a verdict on the kernel.
    """


@dataclass(frozen=True)
class HostSpec:
    """`[user@]host[:port]`, or `[user@][v6addr]:port`."""

    host: str
    port: int = 22
    user: str = ""

    @classmethod
    def parse(cls, text: str, *, what: str = "--host") -> HostSpec:
        user, sep, rest = text.rpartition("@")
        if sep and not _USER.fullmatch(user):
            raise ConfigError(f"{what} {text!r}: bad user name {user!r}")
        port = 22
        if rest.startswith("["):
            host, close, tail = rest[1:].partition("]")
            if not close or not _IPV6.fullmatch(host) or (tail and not tail.startswith(":")):
                raise ConfigError(f"{what} {text!r}: expected [ADDRESS]:PORT for an IPv6 address")
            port_text = tail[1:]
        else:
            host, _, port_text = rest.partition(":")
            if not _HOSTNAME.fullmatch(host) or ".." in host:
                raise ConfigError(
                    f"{what} {text!r}: {host!r} is not a host name or address "
                    "(expected [user@]host[:port])"
                )
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ConfigError(f"{what} {text!r}: port {port_text!r} is not 1-65535")
            port = int(port_text)
        return cls(host, port, user)

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this host (OpenSSH's `[host]:port` off port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}" + (
            f":{self.port}" if self.port != 22 else ""
        )


@dataclass(frozen=True)
class SshOptions:
    """How to reach a host: never a secret here (paths only), so it can be recorded."""

    host: HostSpec
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
    identity: Path | None = None  # default: ssh-agent, then ~/.ssh/id_*

    def known_hosts_files(self) -> list[Path]:
        if self.known_hosts is not None:
            return [self.known_hosts]
        return [
            p
            for p in (Path.home() / ".ssh" / "known_hosts", Path("/etc/ssh/ssh_known_hosts"))
            if p.exists()
        ]


def fingerprint(key: Any) -> str:
    """OpenSSH's SHA256:... fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _keyscan_hint(spec: HostSpec, files: list[Path]) -> str:
    dest = files[0] if files else Path.home() / ".ssh" / "known_hosts"
    return (
        f"check the key out of band, then add it: ssh-keyscan -p {spec.port} {spec.host} "
        f">> {dest} (or pass --known-hosts FILE)"
    )


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise InfraError("paramiko is not installed; run ./bootstrap.sh") from e
    # its log (every connect, and tracebacks from its thread while a board boots) is not
    # the user's business: every failure reaches us as an exception, and we say it
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    return paramiko


class Connection:
    """One SSH connection: short commands with timeouts, SFTP, and long-running channels."""

    def __init__(self, opts: SshOptions, client: Any, host_key: Any) -> None:
        self.opts = opts
        self.client = client
        self.host_key_fingerprint = fingerprint(host_key)
        self.host_key_type = host_key.get_name()
        self._sftp: Any = None

    @property
    def spec(self) -> HostSpec:
        return self.opts.host

    def run(
        self, argv: list[str], *, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> tuple[int, str, str]:
        """argv on the host (quoted word by word for its shell); (rc, stdout, stderr)."""
        return self.run_shell(shlex.join(argv), timeout=timeout, check=check)

    def run_shell(
        self, command: str, *, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> tuple[int, str, str]:
        """A shell command line of ours (every user value in it quoted with shlex)."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise InfraError(f"ssh {self.spec}: the connection is gone")
        try:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT)
            chan.settimeout(1.0)
            chan.exec_command(command)
        except (_paramiko().SSHException, OSError, EOFError) as e:
            raise InfraError(f"ssh {self.spec}: cannot run {command.split()[0]!r}: {e}") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"ssh {self.spec}: {command.split()[0]!r} did not finish in {timeout:.0f}s"
                    )
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready():
                    while chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                    break
                if not got:
                    time.sleep(0.05)
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        sout, serr = out.decode(errors="replace"), err.decode(errors="replace")
        if check and rc != 0:
            last = (serr.strip().splitlines() or [f"exit {rc}"])[-1]
            raise InfraError(f"ssh {self.spec}: {command.split()[0]!r} failed: {last}")
        return rc, sout, serr

    def sftp(self) -> Any:
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (_paramiko().SSHException, OSError, EOFError) as e:
                raise InfraError(
                    f"ssh {self.spec}: cannot start SFTP ({e}); the host's sshd needs an sftp "
                    "Subsystem"
                ) from None
            self._sftp.get_channel().settimeout(COMMAND_TIMEOUT)
        return self._sftp

    def put(self, local: Path, remote: PurePosixPath, *, mode: int | None = None) -> None:
        """Upload one file (SFTP); a short or failed copy is an infra error naming both."""
        try:
            attrs = self.sftp().put(str(local), str(remote), confirm=True)
            if mode is not None:
                self.sftp().chmod(str(remote), mode)
        except (OSError, EOFError) as e:
            raise InfraError(f"ssh {self.spec}: cannot copy {local} to {remote}: {e}") from e
        if attrs.st_size != local.stat().st_size:
            raise InfraError(f"ssh {self.spec}: {remote} is short after the copy")

    def write_text(self, remote: PurePosixPath, text: str, mode: int = 0o644) -> None:
        try:
            with self.sftp().open(str(remote), "w") as f:
                f.write(text.encode())
            self.sftp().chmod(str(remote), mode)
        except (OSError, EOFError) as e:
            raise InfraError(f"ssh {self.spec}: cannot write {remote}: {e}") from e

    def make_run_dir(self, base: str) -> PurePosixPath:
        """A fresh `mktemp -d BASE/harness-run.XXXXXXXX` there (base made if missing)."""
        self.run(["mkdir", "-p", base])
        _, out, _ = self.run(["mktemp", "-d", f"{base.rstrip('/')}/{RUN_DIR_PREFIX}XXXXXXXX"])
        path = out.strip()
        if not path.startswith(f"{base.rstrip('/')}/{RUN_DIR_PREFIX}") or len(path.split()) != 1:
            raise InfraError(f"ssh {self.spec}: mktemp gave {path!r}")
        return PurePosixPath(path)

    def open_channel(self, command: str, *, pty: bool = True) -> Any:
        """A long-running command (QEMU): its output read as it comes. With a pty, the
        command gets SIGHUP when the connection drops, even if the harness is SIGKILLed."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise InfraError(f"ssh {self.spec}: the connection is gone")
        try:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT)
            if pty:
                chan.get_pty(term="dumb", width=200, height=50)
            chan.exec_command(command)
        except (_paramiko().SSHException, OSError, EOFError) as e:
            raise InfraError(f"ssh {self.spec}: cannot start {command!r}: {e}") from None
        return chan

    def close(self) -> None:
        try:
            if self._sftp is not None:
                self._sftp.close()
        finally:
            self.client.close()


def connect(opts: SshOptions, *, timeout: float = CONNECT_TIMEOUT) -> Connection:
    """Connect and authenticate; every refusal says what to do about it."""
    paramiko = _paramiko()
    spec = opts.host
    files = opts.known_hosts_files()
    if opts.known_hosts is not None and not opts.known_hosts.is_file():
        raise ConfigError(f"--known-hosts {opts.known_hosts}: no such file")
    if opts.identity is not None and not opts.identity.is_file():
        raise ConfigError(f"--identity {opts.identity}: no such file")
    client = paramiko.SSHClient()
    for f in files:
        try:
            client.load_host_keys(str(f))
        except (OSError, paramiko.SSHException) as e:
            raise ConfigError(f"known_hosts {f}: cannot read it: {e}") from e
    offered: list[Any] = []

    class Refuse(paramiko.MissingHostKeyPolicy):  # type: ignore[misc,name-defined]
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:  # noqa: ARG002
            offered.append(key)
            raise paramiko.SSHException("unknown host key")

    client.set_missing_host_key_policy(Refuse())
    user = spec.user or _local_user()
    try:
        client.connect(
            spec.host,
            port=spec.port,
            username=user,
            key_filename=str(opts.identity) if opts.identity else None,
            allow_agent=True,
            look_for_keys=opts.identity is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
    except paramiko.BadHostKeyException as e:
        client.close()
        raise HostKeyError(
            f"ssh {spec}: REFUSED: the host key CHANGED. known_hosts has "
            f"{e.expected_key.get_name()} {fingerprint(e.expected_key)}, the host offers "
            f"{e.key.get_name()} {fingerprint(e.key)}. Someone may be in the middle, or the "
            f"host was reinstalled: check it, then fix known_hosts "
            f"(ssh-keygen -R '{spec.known_hosts_name}')"
        ) from None
    except paramiko.AuthenticationException as e:
        client.close()
        how = f"identity {opts.identity}" if opts.identity else "ssh-agent and ~/.ssh/id_*"
        raise InfraError(f"ssh {spec}: authentication as {user!r} failed ({how}): {e}") from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise ConfigError(
            f"ssh {spec}: the identity is encrypted: load it into ssh-agent "
            "(the harness never takes a passphrase)"
        ) from None
    except paramiko.SSHException as e:
        client.close()
        if offered:
            key = offered[0]
            where = ", ".join(map(str, files)) or "no known_hosts file"
            raise HostKeyError(
                f"ssh {spec}: REFUSED: unknown host key {key.get_name()} {fingerprint(key)} "
                f"({spec.known_hosts_name} is not in {where}); {_keyscan_hint(spec, files)}"
            ) from None
        raise InfraError(f"ssh {spec}: {e}") from None
    except (OSError, EOFError) as e:  # refused, unreachable, timed out
        client.close()
        reason = "timed out" if isinstance(e, socket.timeout) else str(e) or type(e).__name__
        raise InfraError(f"ssh {spec}: cannot connect: {reason}") from None
    transport = client.get_transport()
    transport.set_keepalive(KEEPALIVE)
    return Connection(opts, client, transport.get_remote_server_key())


def _local_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # pragma: no cover
        return os.environ.get("USER", "root")
