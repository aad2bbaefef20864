"""Symbolise call traces with the build's vmlinux: file:line and inlined frames.

Like scripts/decode_stacktrace.sh, addresses come from `func+0xoff/0xsize`
and the symbol table (duplicate static names are told apart by size, as
scripts/faddr2line does), and `addr2line -i` expands inlined callers.
Return addresses point after the call, so 1 is subtracted for every frame
except the faulting PC, which names the call site instead of the next line.
A missing tool or vmlinux is not an error: frames simply stay unsymbolised.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .model import Frame, Report
from .paths import file_relative

log = logging.getLogger(__name__)

TIMEOUT = 300
_NM_LINE = re.compile(r"^([0-9a-fA-F]+)(?: ([0-9a-fA-F]+))? [tTwWiI] (\S+)$")
_DISCRIMINATOR = re.compile(r"\s*\(discriminator \d+\)$")

Symbols = dict[str, list[tuple[int, int | None]]]


def nm_for(addr2line: str) -> str:
    """The nm of the same toolchain (aarch64-linux-gnu-addr2line -> ...-nm)."""
    if addr2line.endswith("addr2line"):
        return addr2line[: -len("addr2line")] + "nm"
    return "nm"


def _tool(name: str) -> str | None:
    if "/" in name:
        return name if Path(name).is_file() else None
    return shutil.which(name)


def read_symbols(vmlinux: Path, nm: str) -> Symbols:
    """Text symbols of vmlinux: name -> [(address, size or None)]."""
    out = subprocess.run(
        [nm, "-S", "--defined-only", str(vmlinux)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    symbols: Symbols = {}
    for line in out.splitlines():
        m = _NM_LINE.match(line.strip())
        if m:
            size = int(m.group(2), 16) if m.group(2) else None
            symbols.setdefault(m.group(3), []).append((int(m.group(1), 16), size))
    return symbols


def _is_exact_pc(rep: Report, index: int, frame: Frame) -> bool:
    if frame.tag in ("P", "PC"):
        return True
    if index != 0 or not rep.pc:
        return False
    return rep.pc.startswith(frame.function + "+")


def frame_address(frame: Frame, symbols: Symbols, exact: bool) -> int | None:
    """Address to look up for a frame (call site for return addresses)."""
    pc: int | None = None
    candidates = symbols.get(frame.function, []) if frame.offset is not None else []
    if candidates and not frame.module:
        start = candidates[0][0]
        for addr, size in candidates:
            if frame.size is not None and size == frame.size:
                start = addr
                break
        pc = start + (frame.offset or 0)
    elif frame.address and not frame.module:
        try:
            pc = int(frame.address, 16)
        except ValueError:
            pc = None
    if pc is None:
        return None
    return pc if exact else pc - 1


def _parse_addr2line(output: str) -> dict[int, list[tuple[str, str, int | None]]]:
    """Output of `addr2line -a -f -i`: address -> [(function, file, line)], innermost first."""
    result: dict[int, list[tuple[str, str, int | None]]] = {}
    current: list[tuple[str, str, int | None]] | None = None
    lines = output.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x") and re.fullmatch(r"0x[0-9a-fA-F]+", line.strip()):
            current = result.setdefault(int(line, 16), [])
            i += 1
            continue
        if current is not None and i + 1 < len(lines):
            func, loc = line.strip(), _DISCRIMINATOR.sub("", lines[i + 1].strip())
            file, _, num = loc.rpartition(":")
            if file and file != "??":
                current.append((func, file, int(num) if num.isdigit() else None))
            i += 2
            continue
        i += 1
    return result


def _clean(path: str, strip: str) -> str:
    if strip and path.startswith(strip):
        path = path[len(strip) :]
    return path.lstrip("./") if path.startswith("./") else path


def symbolize(
    reports: Iterable[Report],
    vmlinux: Path,
    addr2line: str = "addr2line",
    nm: str | None = None,
    source_prefixes: Iterable[str] = (),
) -> None:
    """Fill Frame.file/line/inlined of every report; warn (never raise) on failure.

    File names are relative to the kernel tree (paths.file_relative; `source_prefixes`
    are the tree's spellings, paths.prefixes_for).
    """
    reports = list(reports)
    vmlinux = Path(vmlinux)
    if not vmlinux.is_file():
        log.warning("not symbolising: %s does not exist", vmlinux)
        return
    a2l = _tool(addr2line)
    if a2l is None:
        log.warning("not symbolising: %s not found", addr2line)
        return
    symbols: Symbols = {}
    nm_tool = _tool(nm or nm_for(addr2line)) or _tool("nm")
    if nm_tool is None:
        log.warning("no nm found: only frames with printed addresses are symbolised")
    else:
        try:
            symbols = read_symbols(vmlinux, nm_tool)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("nm failed on %s: %s", vmlinux, exc)
    wanted: list[tuple[Frame, int]] = []
    for rep in reports:
        for index, frame in enumerate(rep.frames):
            addr = frame_address(frame, symbols, _is_exact_pc(rep, index, frame))
            if addr is not None:
                wanted.append((frame, addr))
    if not wanted:
        return
    addresses = sorted({addr for _, addr in wanted})
    try:
        proc = subprocess.run(
            [a2l, "-e", str(vmlinux), "-a", "-f", "-i", *(f"{a:#x}" for a in addresses)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("addr2line failed on %s: %s", vmlinux, exc)
        return
    table = _parse_addr2line(proc.stdout)
    strip = str(vmlinux.resolve().parent) + "/"
    prefixes = tuple(source_prefixes)

    def name(path: str) -> str:
        return file_relative(_clean(path, strip), prefixes)

    for frame, addr in wanted:
        chain = table.get(addr)
        if not chain:
            continue
        func, file, line = chain[-1]
        frame.file, frame.line = name(file), line
        frame.inlined = [{"function": f, "file": name(p), "line": n} for f, p, n in chain[:-1]]
