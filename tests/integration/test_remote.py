"""--host: QEMU on a machine one SSH hop away, against a real OpenSSH server on loopback.

The "remote host" is this machine through Debian's sshd on 127.0.0.1 (its own host key
and authorized key), with its own folder for per-run directories (--remote-dir). The
kernels are the x86 CI builds the Xen tests use (no build of its own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_sshd import LoopbackSshd, keygen
from procs import qemu_pids_using

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
XEN_TITLE = "kernel BUG in xen_enter_lazy_mmu"  # what test_xen_pv sees locally


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = LoopbackSshd(tmp_path_factory.mktemp("sshd") / "server").start()
    yield server
    server.stop()


@pytest.fixture
def remote_dir(tmp_path):
    d = tmp_path / "remote-host"
    d.mkdir()
    return d


def _host_args(sshd: LoopbackSshd, remote_dir: Path, known_hosts: Path | None = None) -> list[str]:
    return [
        "--host", sshd.dest, "--known-hosts", str(known_hosts or sshd.known_hosts),
        "--identity", str(sshd.identity), "--remote-dir", str(remote_dir),
    ]  # fmt: skip


def _accepted(sshd: LoopbackSshd) -> int:
    return sshd.log.read_text(errors="replace").count("Accepted publickey")


def test_unknown_host_key_is_refused_before_anything_is_sent(harness, sshd, remote_dir, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    before = _accepted(sshd)
    r = harness("run", "x86-64-ci", *_host_args(sshd, remote_dir, empty))
    assert r.code == 4, r.stdout + r.stderr
    assert "REFUSED: unknown host key ssh-ed25519 SHA256:" in r.stdout
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1" in r.stdout
    assert _accepted(sshd) == before  # no authentication was even tried
    assert "build" not in r.meta  # refused in seconds, before a kernel build
    assert r.meta["verdict"] == "config-error" and r.meta["status"] == "complete"
    assert list(remote_dir.iterdir()) == []


def test_changed_host_key_is_refused(harness, sshd, remote_dir, tmp_path):
    impostor = keygen(tmp_path / "other_host_key")
    known = sshd.trust(impostor, tmp_path / "known_hosts")
    r = harness("run", "x86-64-ci", *_host_args(sshd, remote_dir, known))
    assert r.code == 4, r.stdout + r.stderr
    assert "REFUSED: the host key CHANGED" in r.stdout
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in r.stdout
    assert _accepted(sshd) == 0 or "build" not in r.meta


def test_clean_boot_through_host(harness, sshd, remote_dir):
    r = harness("run", "x86-64-ci", *_host_args(sshd, remote_dir))
    assert r.code == 0, r.stdout + r.stderr
    boot = r.meta["boot"]
    where = boot["machine"]
    assert where["kind"] == "ssh" and where["host"] == sshd.dest
    assert where["host_key"].startswith("ssh-ed25519 SHA256:")
    assert where["run_dir"].startswith(f"{remote_dir}/harness-run.")
    # QEMU opened the copies on the host, not this machine's files
    assert where["argv"][where["argv"].index("-kernel") + 1].startswith(where["run_dir"])
    assert f"on {sshd.dest}" in boot["accel_reason"]
    assert boot["ending"] == "poweroff"
    console = (r.results / "console.log").read_text()
    assert "Linux version 6.12" in console and "HARNESS: DONE" in console
    assert list(remote_dir.iterdir()) == []  # the run directory is gone
    assert str(sshd.identity) in r.meta["command"]  # a path, never a secret


def test_xen_canary_through_host_has_the_local_title(harness, sshd, remote_dir):
    r = harness("run", "x86-xen-pv-ci", "-s", "xen-lazy-mmu-nesting", *_host_args(sshd, remote_dir))
    assert r.code == 1, r.stdout + r.stderr
    assert [x["title"] for x in r.reports][:1] == [XEN_TITLE]
    assert r.meta["canary_result"]["caught"] is True
    sent = [Path(f["file"]).name for f in r.meta["boot"]["machine"]["files"]]
    assert sent[0] == "bzImage" and sent[1] == "initramfs.cpio.gz" and "xen" in sent[2]
    assert list(remote_dir.iterdir()) == []


def _ctrl_c_as_in_a_terminal() -> None:
    """A test suite started in the background (`.ci/run &`) inherits SIGINT ignored, and
    Python then leaves it ignored: the harness under test gets Ctrl-C as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(sshd: LoopbackSshd, remote_dir: Path, root: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "x86-64-ci", "-q",
         *_host_args(sshd, remote_dir)],
        cwd=REPO, env={**os.environ, "HARNESS_RESULTS": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        runs = list(root.glob("*")) if root.exists() else []
        log = runs[0] / "console.log" if runs else None
        if log and log.exists() and "Linux version" in log.read_text(errors="replace"):
            return proc, runs[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the kernel booted: {proc.stderr.read()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the remote kernel never printed its banner")


def _gone(remote_dir: Path, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not qemu_pids_using(remote_dir) and not list(remote_dir.iterdir()):
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_kills_the_remote_qemu_and_removes_its_directory(sshd, remote_dir, tmp_path):
    proc, run_dir = _start(sshd, remote_dir, tmp_path / "results")
    assert qemu_pids_using(remote_dir), "the remote QEMU should be running now"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _gone(remote_dir, 1), (qemu_pids_using(remote_dir), list(remote_dir.iterdir()))
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "incomplete" and "verdict" not in meta


def test_sigkilled_harness_leaves_no_remote_qemu(sshd, remote_dir, tmp_path):
    """SIGKILL runs no cleanup of ours: the dropped connection hangs up the remote
    session, and its script kills QEMU and removes the directory."""
    proc, _ = _start(sshd, remote_dir, tmp_path / "results")
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(remote_dir), (qemu_pids_using(remote_dir), list(remote_dir.iterdir()))
