"""`harness parse` on the QEMU logs the harness must understand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from oops_golden import GOLDEN_DIR, REPO, read

from harness.oops import cmd


def _log(tmp_path: Path, name: str) -> Path:
    """The raw console log stored in our golden file."""
    path = tmp_path / f"{name}.log"
    path.write_text(read(GOLDEN_DIR / f"{name}.txt").log)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cmd.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_arm32_null_deref_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["parse", "--json", str(_log(tmp_path, "arm32-injected-a"))], capsys)
    assert code == 1
    reports = json.loads(out)["reports"]
    assert len(reports) == 1
    rep = reports[0]
    assert (
        rep["title"]
        == "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
    )
    assert rep["type"] == "NULL-POINTER-DEREFERENCE"
    assert (rep["cpu"], rep["pid"], rep["comm"], rep["version"]) == (0, 1, "swapper/0", "6.12.117")
    assert rep["tainted"] is None
    assert rep["pc"].startswith("__lock_acquire+")
    assert rep["registers"]["pc"] == "c019d7c0"
    assert rep["fault_address"] == "00000010"
    assert rep["arch"] == "arm"
    assert rep["panicked"] is True
    functions = [f["function"] for f in rep["frames"]]
    assert functions == [
        "__lock_acquire",
        "lock_acquire",
        "_raw_spin_lock",
        "__pte_offset_map_lock",
        "handle_mm_fault",
        "__get_user_pages",
        "get_user_pages_remote",
        "get_arg_page",
        "copy_string_kernel",
        "kernel_execve",
        "kernel_init",
        "ret_from_fork",
    ]
    top, caller = rep["frames"][0], rep["frames"][4]
    assert (top["offset"], top["size"]) == (0x44, 0x29E0)  # from "PC is at"
    assert (caller["offset"], caller["size"]) == (0xA5C, 0x1594)


def test_arm32_tinyconfig_73(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["parse", "--json", str(_log(tmp_path, "arm32-tinyconfig-7.3.4-pte-lockptr-injected"))],
        capsys,
    )
    rep = json.loads(out)["reports"][0]
    assert code == 1
    assert (
        rep["title"]
        == "BUG: unable to handle kernel NULL pointer dereference in pte_offset_map_lock"
    )
    assert rep["version"] == "7.3.4"


def test_xen_kernel_bug_and_dom0_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["parse", "--json", str(_log(tmp_path, "xen-pv-6.12.117-lazy-mmu-nesting-injected"))],
        capsys,
    )
    reports = json.loads(out)["reports"]
    assert code == 1
    assert [r["title"] for r in reports] == [
        "kernel BUG in xen_enter_lazy_mmu",
        "BUG: sleeping function called from invalid context in exit_signals",
    ]
    assert reports[0]["type"] == "BUG"
    assert reports[0]["registers"]["RIP"] == "e030:xen_enter_lazy_mmu+0x20/0x30"
    assert reports[1]["tainted"] == "G      D"
    notes = [n for r in reports for n in r["notes"]]
    assert "Hardware Dom0 crashed: rebooting machine in 5 seconds." in notes
    assert all(r["panicked"] for r in reports)


def test_arm64_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _log(tmp_path, "arm64-tinyconfig-6.12.117-cow-without-bbm-injected")
    code, out, _ = _run(["parse", "--json", str(path)], capsys)
    rep = json.loads(out)["reports"][0]
    assert code == 1
    assert rep["title"] == "WARNING in __check_safe_pte_update"
    assert rep["type"] == "WARNING"
    assert rep["arch"] == "arm64"
    assert rep["registers"]["x29"] == "fff0000001533ca0"
    assert rep["panicked"] is False


def test_text_output_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["parse", str(_log(tmp_path, "arm32-injected-a"))], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[:6] == [
        "TITLE: BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock",
        "ALT: bad-access in __pte_offset_map_lock",
        "TYPE: NULL-POINTER-DEREFERENCE",
        "FRAME: __pte_offset_map_lock",
        "CORRUPTED: N",
        "PANICKED: Y",
    ]
    assert "CALL TRACE:" in lines
    assert "  handle_mm_fault+0xa5c/0x1594" in lines


def test_clean_log_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["parse", str(_log(tmp_path, "x86_64-6.12.117-tcg-clean-busybox"))], capsys)
    assert code == 0
    assert "no crash report found" in out


def test_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.log"
    code, out, err = _run(["parse", str(missing)], capsys)
    assert code == 4
    assert str(missing) in err and out == ""


def test_stdin_via_subprocess(tmp_path: Path) -> None:
    log = _log(tmp_path, "arm32-injected-a").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.oops.cmd", "parse", "--json", "-"],
        input=log,
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["reports"][0]["frame"] == "__pte_offset_map_lock"


def test_missing_vmlinux_still_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path, "arm32-injected-a")
    code, out, _ = _run(
        ["parse", "--json", "--vmlinux", str(tmp_path / "vmlinux"), str(log)], capsys
    )
    assert code == 1
    assert json.loads(out)["reports"][0]["frames"][0]["file"] is None


def test_registered_in_harness_cli() -> None:
    cli = pytest.importorskip("harness.cli")
    if not hasattr(cli, "build_parser"):
        pytest.skip("harness.cli has no build_parser")
    args = cli.build_parser().parse_args(["parse", "--json", "x.log"])
    assert args.func is cmd.handler and args.json
