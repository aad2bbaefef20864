"""The guest marker protocol: the lines the harness init prints, in one place.

The init (rootfs) writes them, the local console reader and LAVA's log reader parse them,
and LAVA's test monitor matches them; a change to one side without the other would make
every boot look like a guest that never started. The nonce ties START and DONE to one run:
the kernel never prints it, so a console cannot pass by accident.

    HARNESS: START <nonce> scenario=<name> kernel=<uname -r>
    HARNESS: INFO <text>
    HARNESS: STEP <i>/<n> BEGIN <name>
    HARNESS: STEP <i>/<n> TIMEOUT <name>
    HARNESS: STEP <i>/<n> END <name> rc=<rc>      (rc 77: the step does not apply)
    HARNESS: DONE <nonce> failed=<count>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MARK = "HARNESS:"
RC_NOT_APPLICABLE = 77

START = re.compile(rb"HARNESS: START (\S+)")
DONE = re.compile(rb"HARNESS: DONE (\S+) failed=(\d+)")
STEP_END = re.compile(r"HARNESS: STEP (\d+)/(\d+) END (.*?) rc=(\d+)")
PANIC = re.compile(rb"Kernel panic - not syncing|Hardware Dom0 crashed|---\[ end Kernel panic")
# the start of a report after which the kernel is not expected to go on normally (an oops,
# a BUG); a WARN or a might_sleep splat is not one of them: the scenario goes on
FATAL = re.compile(
    rb"Unable to handle kernel (?:NULL pointer dereference|paging request)"
    rb"|BUG: unable to handle (?:kernel|page fault)|Internal error: Oops|kernel BUG at "
    rb"|general protection fault|Oops: [0-9a-f]{4} \[#"
)
# how far a boot got, for progress lines: (pattern, phase name), checked in order
PHASES = [
    (re.compile(rb"Booting Linux|Linux version"), "kernel"),
    (re.compile(rb"Run /init|Freeing unused kernel"), "init"),
    (START, "workload"),
]


@dataclass
class StepResult:
    index: int
    name: str
    rc: int


# --- what the init prints (shell fragments for rootfs.init_script) ---


def start_line(nonce: str, scenario: str) -> str:
    return f'echo "{MARK} START {nonce} scenario={scenario} kernel=$(uname -r)"'


def info_line(text_var: str) -> str:
    return f'echo "{MARK} INFO {text_var}"'


def step_begin(i: int, n: int, name: str) -> str:
    return f'echo "{MARK} STEP {i}/{n} BEGIN {name}"'


def step_timeout(i: int, n: int, name: str) -> str:
    return f'echo "{MARK} STEP {i}/{n} TIMEOUT {name}"'


def step_end(i: int, n: int, name: str, rc_var: str = "$rc") -> str:
    return f'echo "{MARK} STEP {i}/{n} END {name} rc={rc_var}"'


def done_line(nonce: str, failed_var: str = "$failed") -> str:
    return f'echo "{MARK} DONE {nonce} failed={failed_var}"'


# --- what the readers look for ---


def started(data: bytes, nonce: str) -> bool:
    m = START.search(data)
    return bool(m and m.group(1) == nonce.encode())


def start_offset(text: str, nonce: str) -> int | None:
    """Where this run's START marker is in the console text (user space began there)."""
    i = text.find(f"{MARK} START {nonce}")
    return i if i >= 0 else None


def done(data: bytes, nonce: str) -> tuple[bool, int]:
    """(the DONE marker of this run was seen, its failed count)."""
    m = next((m for m in DONE.finditer(data) if m.group(1) == nonce.encode()), None)
    return (m is not None, int(m.group(2)) if m else 0)


def steps(text: str) -> list[StepResult]:
    return [
        StepResult(int(m.group(1)), m.group(3), int(m.group(4))) for m in STEP_END.finditer(text)
    ]


def lava_monitor(scenario: str, nonce: str) -> dict[str, Any]:
    """A LAVA test monitor on the markers; each step becomes a LAVA test case.

    The step pattern waits for the end of line (CR CR LF through the pty) so 'rc=77' is
    not read as 'rc=7'; only the first digit of a failing rc is kept, so a short
    fixupdict maps every rc.
    """
    fixup = {"0": "pass", str(RC_NOT_APPLICABLE): "skip", **{str(d): "fail" for d in range(1, 10)}}
    return {
        "name": f"harness-{scenario}",
        "start": f"{MARK} START {nonce} ",
        "end": f"{MARK} DONE {nonce} failed=[0-9]+",
        "pattern": rf"{MARK} STEP [0-9]+/[0-9]+ END (?P<test_case_id>[^\r\n]+?) "
        r"rc=(?P<result>0|77|[1-9])[0-9]*\r*\n",
        "fixupdict": fixup,
    }
