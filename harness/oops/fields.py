"""Structured fields of a report: CPU/PID/comm, taint, version, registers...

syzkaller keeps these only as text; CI and maintainers want them as data
(which CPU, which task, tainted by what, where it faulted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# "CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117 #2"
_CPU_LINE = re.compile(
    r"CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.{1,16}?) "
    r"(?:Not tainted|Tainted: (?P<taint>[A-Z](?:[A-Z ]*[A-Z])?))\s+(?P<version>\d[^\s#]*)?"
)
_OLD_PID_LINE = re.compile(
    r"Pid: (?P<pid>\d+), comm: (?P<comm>\S+) (?:Not tainted|Tainted: (?P<taint>[A-Z](?:[A-Z "
    r"]*[A-Z])?))\s+"
    r"(?P<version>\d\S*)?"
)
_XEN_BANNER = re.compile(
    r"----\[ Xen-(?P<version>\S+)\s+(?P<arch>\S+)\s.*?(?:Not tainted|Tainted:\s+(?P<taint>[A-Z]"
    r"(?:[A-Z ]*[A-Z])?))\s*\]----"
)
_XEN_CPU = re.compile(r"^CPU:\s+(\d+)\s*$")
_FALLBACK_TASK = re.compile(
    "|".join(
        (
            r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) ",
            r", CPU#(?P<cpu2>\d+): (?P<comm2>.+)/(?P<pid2>\d+)$",
            r"^Process (?P<comm3>.+) \(pid: (?P<pid3>\d+), ",
            r"pid: (?P<pid4>\d+), name: (?P<comm4>.+)$",
            r"INFO: task (?P<comm5>.+):(?P<pid5>\d+) blocked ",
            r"soft lockup - CPU#(?P<cpu6>\d+) stuck for \d+s! \[(?P<comm6>.+):(?P<pid6>\d+)\]",
            r"hard LOCKUP on cpu (?P<cpu7>\d+)",
        )
    )
)
_HARDWARE = re.compile(r"^Hardware name: (.+?)\s*$")
_FAULT = re.compile(
    "|".join(
        (
            r"BUG: kernel NULL pointer dereference, address: ([0-9a-fx]+)",
            r"BUG: unable to handle page fault for address: ([0-9a-fx]+)",
            r"BUG: unable to handle kernel (?:NULL pointer dereference|paging request) at "
            r"(\(null\)|[0-9a-fx]+)",
            r"Unable to handle kernel [a-zA-Z ]+? at virtual address ([0-9a-fx]+)",
            r"BUG: Kernel NULL pointer dereference on \w+ at (0x[0-9a-f]+)",
            r"(?:Read|Write) of size \d+ at addr ([0-9a-f]+)",
            r"(?:read|write) at (0x[0-9a-f]+)",
            r"general protection fault, probably for non-canonical address (0x[0-9a-f]+)",
            r"Unhandled fault: .* at (0x[0-9a-f]+)",
            r"Faulting linear address: ([0-9a-f]+)",
        )
    )
)
_CODE = re.compile(r"^Code: (.*?)\s*$")
# One "NAME: value" register pair; values are hex, [<hex>], seg:hex or hex(seg).
_PAIR = re.compile(
    r"([A-Za-z][A-Za-z0-9_]{0,8}) ?: ?\s*((?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]|[0-9a-fA-F]{2,16}"
    r"(?:\([0-9a-f]{4}\))?))(?=\s|$)"
)
_SYMBOLIC_PC = (
    ("pc", re.compile(r"^PC is at (\S+)")),
    ("lr", re.compile(r"^LR is at (\S+)")),
    (
        "pc",
        re.compile(
            r"^R?IP: (?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s+)*"
            r"([A-Za-z_][\w.]*\+0x[0-9a-f]+/0x[0-9a-f]+)"
        ),
    ),
    (
        "pc",
        re.compile(
            r"^(?:RIP|PC):\s+(?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s*)?(?:[0-9a-f]{8,16}\s+)?(\S+\+0x\S+)"
        ),
    ),
    ("pc", re.compile(r"^e?pc ?: ([A-Za-z_][\w.]*\+0x[0-9a-f]+/0x[0-9a-f]+)")),
    ("lr", re.compile(r"^(?:lr|ra) ?: ([A-Za-z_][\w.]*\+0x[0-9a-f]+/0x[0-9a-f]+)")),
)
_PC_STARTS = {"PC", "LR", "RI", "IP", "pc", "lr", "ep", "ra"}
_REG_SYMBOLIC = re.compile(r"^(RIP|IP|pc|lr|epc|ra) ?: ?(\S.*?)\s*$")
_PSTATE = re.compile(r"^pstate: ([0-9a-f]+)")


@dataclass
class Fields:
    """Everything extracted from the report lines (see Report for meanings)."""

    version: str | None = None
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    tainted: str | None = None
    hardware: str | None = None
    fault_address: str | None = None
    registers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    pc: str | None = None
    lr: str | None = None
    arch: str | None = None


def _registers(line: str, regs: dict[str, str]) -> None:
    m = _REG_SYMBOLIC.match(line)
    if m and ("+0x" in m.group(2) or m.group(1) in ("RIP", "IP")):
        regs.setdefault(m.group(1), m.group(2))
        return
    m = _PSTATE.match(line)
    if m:
        regs.setdefault("pstate", m.group(1))
        return
    if not _PAIR.match(line.lstrip()):
        return
    pairs = _PAIR.findall(line)
    leftover = _PAIR.sub("", line)
    if leftover.strip() and not leftover.strip().startswith("CONTEXT:"):
        return
    for name, value in pairs:
        if value.startswith("[<"):
            value = value[2:-2]
        regs.setdefault(name, value)


def extract(lines: list[str], xen: bool = False) -> Fields:
    """Scan report lines once and fill every field that is present."""
    f = Fields()
    task_found = False
    fallback: dict[str, str] = {}
    for line in lines:
        if not task_found:
            m = None
            if "omm: " in line:
                m = _CPU_LINE.search(line) or _OLD_PID_LINE.search(line)
            if m:
                groups = m.groupdict()
                if groups.get("cpu") is not None:
                    f.cpu = int(groups["cpu"])
                f.pid = int(groups["pid"])
                f.comm = groups["comm"]
                f.tainted = (groups["taint"] or "").rstrip() or None
                f.version = groups["version"]
                task_found = True
            elif "CPU" in line or "pid: " in line or "INFO: task" in line or "LOCKUP" in line:
                # (every _FALLBACK_TASK alternative contains one of these)
                m = _FALLBACK_TASK.search(line)
                if m:
                    for key, value in m.groupdict().items():
                        if value is not None:
                            fallback.setdefault(key.rstrip("234567"), value)
        if xen:
            m = _XEN_BANNER.search(line)
            if m and f.version is None:
                f.version = m.group("version")
                f.tainted = (m.group("taint") or "").rstrip() or None
            m = _XEN_CPU.match(line)
            if m and f.cpu is None:
                f.cpu = int(m.group(1))
        if f.hardware is None:
            m = _HARDWARE.match(line)
            if m:
                f.hardware = m.group(1)
        if f.fault_address is None and ("addr" in line or " at " in line):
            m = _FAULT.search(line)
            if m:
                f.fault_address = next(g for g in m.groups() if g is not None)
        if f.code is None and line.startswith("Code: "):
            m = _CODE.match(line)
            f.code = m.group(1) if m else None
        if line[:2] in _PC_STARTS:
            for name, pattern in _SYMBOLIC_PC:
                if getattr(f, name) is None:
                    m = pattern.match(line)
                    if m:
                        setattr(f, name, m.group(1))
        if ":" in line[:12]:
            _registers(line, f.registers)
    if not task_found:
        if f.cpu is None and "cpu" in fallback:
            f.cpu = int(fallback["cpu"])
        if "pid" in fallback:
            f.pid = int(fallback["pid"])
        f.comm = fallback.get("comm")
    f.arch = "xen" if xen else guess_arch(lines, f.registers)
    return f


_ARM64_MARKS = ("el0t_64", "el1h_64", "Mem abort info:", "ESR = 0x", "el0_svc", "__arm64_")


def guess_arch(lines: list[str], regs: dict[str, str]) -> str | None:
    """x86_64 / arm / arm64 from register names and arch-specific frames."""
    if "pstate" in regs or "x29" in regs:
        return "arm64"
    if "RIP" in regs or "RSP" in regs or "RAX" in regs:
        return "x86_64"
    if "psr" in regs or "r10" in regs:
        return "arm"
    joined = "\n".join(lines[:400])
    if any(mark in joined for mark in _ARM64_MARKS):
        return "arm64"
    if "entry_SYSCALL_64" in joined or "x64_sys" in joined:
        return "x86_64"
    if ") from [<" in joined or "PC is at" in joined or "ret_fast_syscall" in joined:
        return "arm"
    return None
