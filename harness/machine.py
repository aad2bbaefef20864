"""Where a boot happens: QEMU here, or QEMU on a host one SSH hop away.

The rest of a run (build, patches, parse, verdict, results) is the same for both: a
machine says which accelerator it can use, takes the files a boot needs, starts QEMU and
hands back its console as a stream. A LAVA lab is the third place (harness.lava.flow),
which runs the whole job itself.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from harness import console, qemu
from harness.config import Target
from harness.errors import ConfigError, InfraError
from harness.proc import critical
from harness.ssh import Connection, HostSpec, SshOptions, check_remote_dir, connect

if TYPE_CHECKING:
    from harness.board import BoardMachine

REMOTE_BASE = "/tmp"  # where per-run directories go on a host (--remote-dir)
_STOP_WAIT = 10.0  # seconds for a killed remote QEMU (and its directory) to go


@dataclass(frozen=True)
class BootRequest:
    """One boot, whatever the machine: the files, the kernel command line, the accelerator."""

    target: Target
    kernel: Path
    initrd: Path
    cmdline: str
    accel: str
    hypervisor: Path | None = None
    rdir: Path | None = None  # the run's results folder (a machine's own logs go there)

    @property
    def files(self) -> list[Path]:
        return [self.kernel, self.initrd, *([self.hypervisor] if self.hypervisor else [])]

    def argv(self, where: dict[Path, str] | None = None) -> list[str]:
        """The QEMU command line, with each file at `where` (default: here)."""
        at = where or {f: str(f) for f in self.files}
        hv = Path(at[self.hypervisor]) if self.hypervisor else None
        return qemu.command_line(
            self.target, Path(at[self.kernel]), Path(at[self.initrd]), self.cmdline, self.accel, hv
        )


class Machine(Protocol):
    kind: str

    def describe(self) -> dict[str, Any]:
        """For metadata.json: where the boot ran (no secret, ever)."""
        ...

    def choose_accel(self, target: Target, forced: str | None) -> qemu.AccelChoice: ...

    def start(self, req: BootRequest) -> console.ConsoleSource:
        """Boot; the console from the first byte of the kernel under test on."""
        ...


class LocalMachine:
    kind = "local"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def choose_accel(self, target: Target, forced: str | None) -> qemu.AccelChoice:
        return qemu.choose_accel(target, forced)

    def start(self, req: BootRequest) -> console.ConsoleSource:
        return console.LocalProcess(req.argv())


@dataclass(frozen=True)
class RemoteOptions:
    """--host and friends: SSH options and where on the host a run's files go."""

    ssh: SshOptions
    base_dir: str = REMOTE_BASE

    @classmethod
    def make(
        cls,
        host: str,
        known_hosts: str | None = None,
        identity: str | None = None,
        remote_dir: str | None = None,
    ) -> RemoteOptions:
        base = check_remote_dir(remote_dir or REMOTE_BASE, "--remote-dir")
        return cls(
            SshOptions(
                HostSpec.parse(host),
                Path(known_hosts).expanduser() if known_hosts else None,
                Path(identity).expanduser() if identity else None,
            ),
            base,
        )


_RUN_SH = """#!/bin/sh
# harness: one boot on this host. QEMU and this directory go when QEMU ends, when the
# harness kills it, or when the SSH connection drops (SIGHUP), whichever comes first.
d={dir}
q=
trap 'kill -KILL $q 2>/dev/null' HUP INT TERM
cd "$d" || exit 125
{qemu} &
q=$!
echo "$q" > qemu.pid
wait "$q"; rc=$?
while kill -0 "$q" 2>/dev/null; do wait "$q"; rc=$?; done
cd / && rm -rf "$d"
exit "$rc"
"""


class _ChannelSource:
    """A remote QEMU's console: the bytes of its SSH channel as they arrive."""

    def __init__(self, machine: RemoteQemu, chan: Any) -> None:
        self.machine = machine
        self.chan = chan
        self._status: int | None = None

    def read(self, size: int, timeout: float) -> bytes:
        self.chan.settimeout(timeout)
        try:
            data: bytes = self.chan.recv(size)
        except TimeoutError:
            return b""
        if not data:
            if self.chan.exit_status_ready():
                self._status = self.chan.recv_exit_status()
            raise EOFError
        return data

    def stop(self) -> None:
        if not self.chan.closed and not self.chan.exit_status_ready():
            self.machine.kill_qemu()
        self.chan.close()

    @property
    def exit_status(self) -> int | None:
        return self._status


class RemoteQemu:
    """QEMU on a host over SSH: a per-run directory there, files over SFTP, the console
    through the channel. open() and close() bracket everything."""

    kind = "ssh"

    def __init__(self, opts: RemoteOptions) -> None:
        self.opts = opts
        self.conn: Connection | None = None
        self.dir: PurePosixPath | None = None
        self.uploaded: list[dict[str, Any]] = []
        self.argv: list[str] = []

    def _c(self) -> Connection:
        if self.conn is None:
            raise InfraError("ssh: not connected")
        return self.conn

    def open(self) -> None:
        self.conn = connect(self.opts.ssh)
        self.dir = self.conn.make_run_dir(self.opts.base_dir)

    def describe(self) -> dict[str, Any]:
        c = self._c()
        return {
            "kind": self.kind,
            "host": str(c.spec),
            "host_key": f"{c.host_key_type} {c.host_key_fingerprint}",
            "run_dir": str(self.dir),
            "files": self.uploaded,
            "argv": self.argv,  # the paths there; boot.argv keeps this machine's
        }

    def choose_accel(self, target: Target, forced: str | None) -> qemu.AccelChoice:
        return qemu.choose_accel(target, forced, facts=self.accel_facts())

    def accel_facts(self) -> qemu.HostFacts:
        c = self._c()
        script = (
            "uname -m; grep -m1 -E '^(flags|Features)' /proc/cpuinfo || echo flags:; "
            "if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo kvm-ok; "
            "elif [ -e /dev/kvm ]; then echo kvm-noaccess; else echo kvm-missing; fi"
        )
        _, out, _ = c.run_shell(script)
        lines = out.splitlines()
        if len(lines) < 3:
            raise InfraError(f"ssh {c.spec}: cannot read the host's facts: {out!r}")
        flags = frozenset(lines[1].split(":", 1)[-1].split())
        problem = {
            "kvm-ok": None,
            "kvm-noaccess": "/dev/kvm is not readable and writable",
            "kvm-missing": "/dev/kvm is missing",
        }.get(lines[2].strip(), f"cannot tell about /dev/kvm ({lines[2]!r})")

        def probe(qemu_binary: str) -> str | None:
            cmd = "echo quit | " + shlex.join(qemu.probe_argv(qemu_binary))
            rc, _, err = c.run_shell(cmd, timeout=60, check=False)
            if rc == 0:
                return None
            errs = [ln for ln in err.splitlines() if ln.strip()]
            return errs[-1] if errs else f"exit {rc}"

        return qemu.HostFacts(lines[0].strip(), flags, problem, probe, f" on {c.spec}")

    def place(self, files: list[Path]) -> dict[Path, str]:
        c, d = self._c(), self.dir
        assert d is not None
        out: dict[Path, str] = {}
        names: set[str] = set()
        for f in files:
            name = f.name
            n = 1
            while name in names:
                n += 1
                name = f"{n}-{f.name}"
            names.add(name)
            t0 = time.monotonic()
            c.put(f, d / name)
            self.uploaded.append(
                {"file": str(f), "as": str(d / name), "bytes": f.stat().st_size,
                 "seconds": round(time.monotonic() - t0, 2)}
            )  # fmt: skip
            out[f] = str(d / name)
        return out

    def start(self, req: BootRequest) -> console.ConsoleSource:
        c, d = self._c(), self.dir
        assert d is not None
        argv = req.argv(self.place(req.files))
        self.argv = argv
        rc, _, _ = c.run_shell(f"command -v {shlex.quote(argv[0])}", check=False)
        if rc != 0:
            raise InfraError(f"{argv[0]} not found on {c.spec}: install QEMU there")
        script = d / "run.sh"
        c.write_text(script, _RUN_SH.format(dir=shlex.quote(str(d)), qemu=shlex.join(argv)), 0o700)
        chan = c.open_channel(f"exec /bin/sh {shlex.quote(str(script))}", pty=True)
        return _ChannelSource(self, chan)

    def kill_qemu(self) -> None:
        """SIGKILL the remote QEMU; run.sh then removes its directory."""
        if self.conn is None or self.dir is None:
            return
        pidfile = shlex.quote(str(self.dir / "qemu.pid"))
        with contextlib.suppress(InfraError):
            self.conn.run_shell(
                f"[ -f {pidfile} ] && kill -KILL $(cat {pidfile}) 2>/dev/null; true", timeout=30
            )

    def close(self) -> None:
        """Remove the run directory (and anything left in it) and disconnect; checked."""
        if self.conn is None:
            return
        try:
            if self.dir is not None:
                self.kill_qemu()
                d = shlex.quote(str(self.dir))
                deadline = time.monotonic() + _STOP_WAIT
                while True:
                    self.conn.run_shell(f"rm -rf {d}", timeout=60)
                    rc, _, _ = self.conn.run_shell(f"test -e {d}", check=False)
                    if rc != 0:
                        break
                    if time.monotonic() > deadline:
                        raise InfraError(f"ssh {self.conn.spec}: {self.dir} is still there")
                    time.sleep(0.5)
        finally:
            self.conn.close()
            self.conn = None


@contextlib.contextmanager
def opened(remote: RemoteOptions | None, target: Target | None = None) -> Iterator[Machine]:
    """The machine a run boots on (QEMU here, QEMU on --host, or the target's board),
    cleaned up on every way out (Ctrl-C included)."""
    m: LocalMachine | RemoteQemu | BoardMachine
    if target is not None and target.board is not None:
        if remote is not None:
            raise ConfigError(f"--host: {target.name} is a board (board.host in {target.path})")
        from harness.board import BoardMachine

        m = BoardMachine(target)
    elif remote is not None:
        m = RemoteQemu(remote)
    else:
        yield LocalMachine()
        return
    try:
        m.open()
        yield m
    finally:
        with critical():  # a second Ctrl-C must not leave a remote QEMU, a directory or a board on
            m.close()
