"""A board over SSH, on a stand-in: a QEMU guest with dropbear and kexec-tools in its
initramfs, reachable through user-mode networking (tests/fakes/board_standin.py).

The harness treats it as it would the Exynos board on a desk. Its `console:` command
starts the stand-in QEMU, which powers it on, and reads its serial line. The harness
waits for SSH (the host key is checked), copies the run's kernel and initramfs over,
runs `kexec -l` and `kexec -e`, and judges the console of the kernel it installed.

The stand-in's own kernel and the installed kernel are the x86 CI build that the Xen
tests share (it has KEXEC and an e1000 for this), so there is no build of its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from board_standin import console_command, host_key, initramfs
from loopback_sshd import free_port, keygen

from harness import source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oops"))

import corpus_table as C  # noqa: E402

pytestmark = pytest.mark.integration

TARGET = "x86-64-standin-board"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A HARNESS_PATH folder with the stand-in board's target YAML, and its files."""
    root = tmp_path_factory.mktemp("board")
    cache = source.cache_root()
    ident = keygen(root / "id")
    key, pub = host_key(cache, root / "dropbear_host_key")
    port = free_port()
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {pub}\n")
    cpio = initramfs(cache, root / "standin.cpio.gz", Path(f"{ident}.pub").read_text(), key)
    base = root / "standin-bzImage"  # the stand-in's own kernel, kept apart from the builds
    yield {"root": root, "cpio": cpio, "base": base, "port": port, "known": known, "id": ident}


def _write_target(board: dict, ssh_port: int | None = None, up_timeout: int = 300) -> Path:
    targets = board["root"] / "configs" / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    cmd = console_command(board["base"], board["cpio"], board["port"])
    y = targets / f"{TARGET}.yaml"
    y.write_text(
        "description: a QEMU guest standing in for a board on a desk (tests)\n"
        "inherits: x86-64-ci\n"
        "board:\n"
        f"  host: root@127.0.0.1:{ssh_port or board['port']}\n"
        f"  known_hosts: {board['known']}\n"
        f"  identity: {board['id']}\n"
        f"  console: {cmd!r}\n"
        f"  up_timeout: {up_timeout}\n"
    )
    return y


@pytest.fixture
def board_harness(harness, board, monkeypatch):
    roots = [str(board["root"]), str(C.HARNESS_PATH)]
    monkeypatch.setenv("HARNESS_PATH", os.pathsep.join(roots))
    return harness


def test_board_boots_a_kernel_installed_with_kexec(board_harness, board):
    # the x86 CI build (shared with the Xen tests) is the stand-in's own kernel too
    r = board_harness("run", "x86-64-ci")
    assert r.code == 0, r.stdout + r.stderr
    shutil.copy(r.results / "kernel" / "bzImage", board["base"])
    _write_target(board)
    r = board_harness("run", TARGET)
    assert r.code == 0, r.stdout + r.stderr
    where = r.meta["boot"]["machine"]
    assert where["kind"] == "board" and where["host"] == f"root@127.0.0.1:{board['port']}"
    assert where["host_key"].startswith("ssh-ed25519 SHA256:")
    assert where["kexec_load"].startswith("kexec -l ") and where["up_seconds"] > 0
    assert r.meta["boot"]["accel"] == "none"
    before = (r.results / "board-console.log").read_text(errors="replace")
    assert "standin-board: network up" in before  # the board's own boot, kept apart
    console = (r.results / "console.log").read_text(errors="replace")
    assert "standin-board" not in console and "HARNESS: DONE" in console
    assert r.reports == []


def test_board_catches_an_oops_in_the_installed_kernel(board_harness, board):
    assert board["base"].exists(), "needs the first test's stand-in kernel"
    kind = C.BY_NAME["null-deref"]
    r = board_harness("run", TARGET, "-s", C.SCENARIO, "--patch", str(C.PATCH),
                      "--cmdline", kind.boot_args)  # fmt: skip
    assert r.code == 1, r.stdout + r.stderr
    want = C.expected_title(C.TARGET_BY_NAME["x86-64-ci"], kind)
    assert r.reports and r.reports[0]["title"] == want, [x["title"] for x in r.reports]
    assert f"regression: {want}" in r.meta["summary"]


def test_board_that_does_not_come_up_is_an_infra_error(board_harness, board):
    """SSH never answers (the YAML names a port nobody listens on): exit 3, and the
    error quotes the board's last console lines; the stand-in is stopped."""
    assert board["base"].exists(), "needs the first test's stand-in kernel"
    _write_target(board, ssh_port=free_port(), up_timeout=30)
    try:
        r = board_harness("run", TARGET)
    finally:
        _write_target(board)
    assert r.code == 3, r.stdout + r.stderr
    assert "did not come up: no SSH after 30s" in r.stdout
    assert "standin-board: network up" in r.stdout  # its console's last lines
    assert r.meta["status"] == "complete"
