"""A target's `board:` block, and a board that does not come up (fake console commands,
nothing listening on the SSH port; the real boards are tests/integration/test_board.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from harness.board import BoardMachine
from harness.config import load_target
from harness.errors import ConfigError, InfraError
from harness.machine import BootRequest, RemoteOptions, opened


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when we return: nobody listens


@pytest.fixture(autouse=True)
def _lab(tmp_path, monkeypatch):
    """tmp_path is a HARNESS_PATH folder: its targets inherit the harness's."""
    monkeypatch.setenv("HARNESS_PATH", str(tmp_path))


def _target(tmp: Path, board: str, name: str = "desk-board"):
    d = tmp / "configs" / "targets"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(f"inherits: x86-64-ci\nboard:\n{board}")
    return load_target(name)


def test_board_block(tmp_path):
    block = (
        "  host: ci@exynos:2222\n  known_hosts: keys/known\n"
        "  console: [conmux-console, exynos]\n  power_on: [pdu, 'on', 3]\n"
    )
    t = _target(tmp_path, block)
    assert t.board.host == "ci@exynos:2222" and t.board.console == ("conmux-console", "exynos")
    assert t.board.power_on == ("pdu", "on", "3") and t.board.up_timeout == 300
    m = BoardMachine(t)  # a relative known_hosts is relative to the YAML's folder
    assert m.ssh.known_hosts == tmp_path / "configs" / "targets" / "keys" / "known"
    assert m.choose_accel(t, None).accel == "none"
    with pytest.raises(ConfigError, match="is a board, nothing is emulated"):
        m.choose_accel(t, "kvm")


@pytest.mark.parametrize(
    ("block", "error"),
    [
        ("  host: h\n", r"board\.console: required"),
        ("  host: h\n  console: [c]\n  install: tftp\n", r"board\.install: only kexec"),
        ("  console: [c]\n", r"board\.host: required key is missing"),
        ("  host: 'a b'\n  console: [c]\n", r"board\.host 'a b'"),
        ("  host: h\n  console: [c]\n  workdir: tmp\n", r"board\.workdir"),
        ("  host: h\n  console: [c]\n  password: x\n", r"board\.password: unknown key"),
        ("  host: h\n  console: [c]\n  up_timeout: 0\n", r"board\.up_timeout"),
        ("  host: h\n  console: [c]\n  power_on: [pdu, on]\n", r"power_on\[1\]: .*quote it"),
    ],
)
def test_bad_board_blocks_name_the_key(tmp_path, block, error):
    with pytest.raises(ConfigError, match=error):
        BoardMachine(_target(tmp_path, block))


def test_host_and_board_do_not_mix(tmp_path):
    t = _target(tmp_path, "  host: h\n  console: [c]\n")
    with pytest.raises(ConfigError, match="is a board"), opened(RemoteOptions.make("h"), t):
        pass


def _req(t, tmp_path: Path) -> BootRequest:
    k, i = tmp_path / "bzImage", tmp_path / "initramfs.cpio.gz"
    k.write_bytes(b"k")
    i.write_bytes(b"i")
    return BootRequest(t, k, i, "console=ttyS0", "none", None, tmp_path)


def _never_up(tmp_path: Path, port: int, console: str) -> tuple[str, float, BoardMachine]:
    """A board whose SSH never answers (up_timeout 3 s): its error, how long, the machine."""
    t = _target(tmp_path, f"  host: root@127.0.0.1:{port}\n  console: {console}\n"
                          "  up_timeout: 3\n")  # fmt: skip
    m = BoardMachine(t)
    t0 = time.monotonic()
    with pytest.raises(InfraError, match="did not come up: no SSH after 3s") as e:
        m.start(_req(t, tmp_path))
    took = time.monotonic() - t0
    m.close()
    return str(e.value), took, m


def test_a_board_that_never_answers_ssh_is_an_infra_error_quoting_its_console(tmp_path):
    console = "[sh, -c, 'echo U-Boot 2024.01; echo Starting kernel; sleep 60']"
    error, took, m = _never_up(tmp_path, _closed_port(), console)
    assert "Starting kernel" in error and took < 20
    assert m.proc is not None and m.proc.child.isalive() is False  # the console is stopped
    assert "U-Boot" in (tmp_path / "board-console.log").read_text()


def test_the_console_is_read_while_an_ssh_attempt_hangs(tmp_path):
    # a port that accepts and never says a word (QEMU's hostfwd before the guest's sshd
    # runs, a console server's TCP port): the attempt waits out its 10 s banner timeout,
    # and meanwhile the board's console must still be drained and up_timeout must hold
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        console = "[sh, -c, 'sleep 1; echo Linux version 6.12 booting; sleep 60']"
        error, took, _ = _never_up(tmp_path, silent.getsockname()[1], console)
    assert took < 6, f"up_timeout 3 s took {took:.1f} s: the hanging attempt blocked"
    assert "Linux version 6.12 booting" in error
    assert "booting" in (tmp_path / "board-console.log").read_text()


def test_a_console_command_that_ends_is_an_infra_error(tmp_path):
    t = _target(tmp_path, f"  host: root@127.0.0.1:{_closed_port()}\n"
                          "  console: [sh, -c, 'echo no such board >&1; exit 1']\n")  # fmt: skip
    with pytest.raises(InfraError, match="ended before the kernel was booted"):
        BoardMachine(t).start(_req(t, tmp_path))


def test_power_commands_run_and_fail_loudly(tmp_path):
    mark = tmp_path / "powered"
    t = _target(tmp_path, f"  host: root@127.0.0.1:{_closed_port()}\n"
                          "  console: [sh, -c, 'sleep 60']\n"
                          f"  power_on: [sh, -c, 'echo on > {mark}; exit 7']\n")  # fmt: skip
    m = BoardMachine(t)
    with pytest.raises(InfraError, match=r"board\.power_on .* failed \(7\)"):
        m.start(_req(t, tmp_path))
    m.close()
    assert mark.read_text() == "on\n"
