"""Symbolisation: addresses from func+off (size-disambiguated), -1 for
return addresses, inlined frames from addr2line -i; never an exception."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.oops import Frame, Report
from harness.oops.parser import parse_strict
from harness.oops.symbolize import frame_address, nm_for, symbolize

FAKE_NM = """#!{python}
import sys
print("0000000000001000 0000000000000100 T do_fault")
print("0000000000002000 0000000000000080 t dup_static")
print("0000000000003000 0000000000000040 t dup_static")
print("0000000000004000 0000000000000200 T caller")
print("0000000000005000 D some_data")
"""

# Prints what `addr2line -a -f -i` would: per address a 0x line, then
# (function, file:line) pairs, innermost inlined function first.
FAKE_ADDR2LINE = """#!{python}
import sys
args = sys.argv[1:]
open({log!r}, "a").write(" ".join(args) + "\\n")
table = {{
    0x1010: [("do_fault", "mm/memory.c:100")],
    0x303f: [
        ("inner_helper", "include/linux/mm.h:12"),
        ("dup_static", "mm/dup.c:7 (discriminator 2)"),
    ],
    0x4011: [("caller", "mm/caller.c:55")],
}}
for arg in args[args.index("-i") + 1:]:
    addr = int(arg, 16)
    print("0x%016x" % addr)
    for func, loc in table.get(addr, [("??", "??:0")]):
        print(func)
        print(loc)
"""


@pytest.fixture
def fake_tools(tmp_path: Path) -> tuple[Path, Path, Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "addr2line.args"
    for name, body in (("cross-nm", FAKE_NM), ("cross-addr2line", FAKE_ADDR2LINE)):
        path = bindir / name
        path.write_text(body.format(python=sys.executable, log=str(log)))
        path.chmod(0o755)
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    return bindir / "cross-addr2line", vmlinux, log


def _report() -> Report:
    rep = Report(title="t", pc="do_fault+0x10/0x100")
    rep.frames = [
        Frame("do_fault", 0x10, 0x100),  # the faulting PC: exact address
        Frame("dup_static", 0x3F + 1, 0x40),  # the 0x40-byte copy at 0x3000
        Frame("caller", 0x12, 0x200),
        Frame("mod_func", 0x10, 0x20, module="mymod"),  # modules are not in vmlinux
        Frame("not_in_table", 0x1, 0x2),
    ]
    return rep


def test_fake_addr2line(fake_tools: tuple[Path, Path, Path]) -> None:
    addr2line, vmlinux, log = fake_tools
    rep = _report()
    symbolize([rep], vmlinux, str(addr2line))
    fault, dup, caller, mod, unknown = rep.frames
    assert (fault.file, fault.line, fault.inlined) == ("mm/memory.c", 100, [])
    assert (dup.file, dup.line) == ("mm/dup.c", 7)
    assert dup.inlined == [{"function": "inner_helper", "file": "include/linux/mm.h", "line": 12}]
    assert (caller.file, caller.line) == ("mm/caller.c", 55)
    assert mod.file is None and unknown.file is None
    args = log.read_text().split()
    assert args[:2] == ["-e", str(vmlinux)]
    # 0x1010 exact (PC), 0x3040-1 and 0x4012-1 return addresses, one call for all.
    assert sorted(int(a, 16) for a in args[5:]) == [0x1010, 0x303F, 0x4011]


def test_arm64_pc_tag_is_exact() -> None:
    symbols = {"f": [(0x1000, 0x40)]}
    assert frame_address(Frame("f", 0x8, 0x40, tag="P"), symbols, exact=True) == 0x1008
    assert frame_address(Frame("f", 0x8, 0x40), symbols, exact=False) == 0x1007
    assert (
        frame_address(Frame("g", None, None, address="c0100010"), symbols, exact=False)
        == 0xC010000F
    )


def test_nm_for() -> None:
    assert nm_for("aarch64-linux-gnu-addr2line") == "aarch64-linux-gnu-nm"
    assert nm_for("/usr/bin/llvm-addr2line") == "/usr/bin/llvm-nm"


def test_missing_tools_warn_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rep = _report()
    caplog.set_level(logging.WARNING)
    symbolize([rep], tmp_path / "no-vmlinux", "addr2line")
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"")
    symbolize([rep], vmlinux, str(tmp_path / "no-such-addr2line"))
    assert all(f.file is None for f in rep.frames)
    assert "no-vmlinux" in caplog.text and "no-such-addr2line" in caplog.text


def test_broken_vmlinux_warns(
    fake_tools: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    addr2line, vmlinux, _ = fake_tools
    caplog.set_level(logging.WARNING)
    real = shutil.which("addr2line")
    if real is None:
        pytest.skip("no addr2line")
    rep = _report()
    symbolize([rep], vmlinux, real)  # host nm/addr2line on a 4-byte "ELF": they fail
    assert all(f.file is None for f in rep.frames)


# --- a real cross toolchain -------------------------------------------------

C_SOURCE = """\
volatile int sink;
__attribute__((noinline)) int leaf(int x) { sink = x; return x * 3 + 1; }

static inline __attribute__((always_inline)) int helper(int x)
{
	return leaf(x + 1) * 2;
}

__attribute__((noinline)) int caller(int x)
{
	int y = leaf(x);
	return y + helper(x);
}

void _start(void)
{
	caller(5);
	for (;;)
		;
}
"""
CALL_LEAF_LINE = 11  # int y = leaf(x);
HELPER_CALL_LINE = 6  # return leaf(x + 1) * 2; (inlined into caller)


def _cross() -> tuple[str, str] | None:
    for prefix in ("aarch64-linux-gnu-", "arm-linux-gnueabihf-"):
        tools = [shutil.which(prefix + t) for t in ("gcc", "addr2line", "nm", "objdump")]
        if all(tools):
            return prefix, tools[0]  # type: ignore[return-value]
    return None


@pytest.mark.skipif(_cross() is None, reason="no aarch64/arm cross gcc + binutils")
def test_real_cross_addr2line(tmp_path: Path) -> None:
    prefix, gcc = _cross()  # type: ignore[misc]
    src = tmp_path / "t.c"
    src.write_text(C_SOURCE)
    elf = tmp_path / "vmlinux"
    subprocess.run(
        [gcc, "-g", "-O2", "-fno-pic", "-nostdlib", "-static", "-o", str(elf), str(src)],
        check=True,
        capture_output=True,
    )
    symbols = subprocess.run(
        [prefix + "nm", "-S", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    caller_start = caller_size = None
    for line in symbols.splitlines():
        parts = line.split()
        if parts[-1] == "caller":
            caller_start, caller_size = int(parts[0], 16), int(parts[1], 16)
    assert caller_start is not None
    dis = subprocess.run(
        [prefix + "objdump", "-d", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    calls = [
        int(row.split(":")[0], 16) for row in dis.splitlines() if "<leaf>" in row and "\tbl" in row
    ]
    returns = [
        addr + 4 - caller_start
        for addr in calls
        if caller_start <= addr < caller_start + caller_size
    ]
    assert len(returns) == 2, dis
    rep = Report(title="t")
    rep.frames = [Frame("caller", off, caller_size) for off in returns]
    symbolize([rep], elf, prefix + "addr2line")
    first, second = rep.frames
    assert first.file.endswith("t.c") and first.line == CALL_LEAF_LINE
    assert second.inlined and second.inlined[0]["function"] == "helper"
    assert second.inlined[0]["line"] == HELPER_CALL_LINE


def test_symbolize_parsed_report_end_to_end(fake_tools: tuple[Path, Path, Path]) -> None:
    addr2line, vmlinux, _ = fake_tools
    log = (
        "[    1.0] Unable to handle kernel paging request at virtual address 0000000000000008\n"
        "[    1.0] pc : do_fault+0x10/0x100\n"
        "[    1.0] Call trace:\n"
        "[    1.0]  do_fault+0x10/0x100 (P)\n"
        "[    1.0]  caller+0x12/0x200\n"
    )
    (rep,) = parse_strict(log)
    symbolize([rep], vmlinux, str(addr2line))
    assert [(f.file, f.line) for f in rep.frames] == [("mm/memory.c", 100), ("mm/caller.c", 55)]
