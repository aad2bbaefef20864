"""console.boot() against a fake QEMU that replays recorded consoles."""

import os
import sys
import time
from pathlib import Path

import pytest

from harness import console

FAKE = Path(__file__).resolve().parent.parent / "fakes" / "fake_qemu.py"

CLEAN = """Booting Linux on physical CPU 0x0
Linux version 6.12.117 (harness@harness)
Run /init as init process
HARNESS: START @NONCE@ scenario=boot kernel=6.12.117
HARNESS: STEP 1/2 BEGIN churn
mm-churn: 5 rounds of 4 MB, 0 failed
HARNESS: STEP 1/2 END churn rc=0
HARNESS: STEP 2/2 BEGIN thp
HARNESS: STEP 2/2 END thp rc=77
HARNESS: DONE @NONCE@ failed=0
reboot: Power down
"""

PANIC = """Linux version 6.12.117
Unable to handle kernel NULL pointer dereference at virtual address 00000010 when read
Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b ]---
"""


def _boot(tmp_path, text, end, nonce="abc", **kw):
    log = tmp_path / "in.log"
    log.write_text(text)
    argv = [sys.executable, str(FAKE), str(log), end, nonce]
    kw.setdefault("total_timeout", 20)
    kw.setdefault("silence_timeout", 10)
    return console.boot(argv, tmp_path / "console.log", nonce, quiet=True, **kw)


def test_clean_poweroff(tmp_path):
    r = _boot(tmp_path, CLEAN, "exit")
    assert r.ending == "poweroff" and r.started and r.done and r.failed_steps == 0
    assert [(s.name, s.rc) for s in r.steps] == [("churn", 0), ("thp", 77)]
    saved = (tmp_path / "console.log").read_text()
    assert "HARNESS: DONE abc failed=0" in saved and "\r" not in saved


def test_markers_of_another_run_do_not_count(tmp_path):
    r = _boot(tmp_path, CLEAN.replace("@NONCE@", "other"), "exit", nonce="abc")
    assert not r.started and not r.done and r.ending == "qemu-exit"


def test_panic_ends_boot_even_if_qemu_hangs(tmp_path):
    t0 = time.monotonic()
    r = _boot(tmp_path, PANIC, "hang", panic_grace=1)
    assert r.ending == "panic" and not r.done
    assert time.monotonic() - t0 < 8


def test_silence_timeout_kills_qemu(tmp_path):
    pidfile = tmp_path / "pid"
    r = _boot(tmp_path, "Linux version 6.12\n", f"pidfile={pidfile}:hang", silence_timeout=1.5)
    assert r.ending == "timeout-silence"
    pid = int(pidfile.read_text())
    time.sleep(0.3)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_total_timeout_with_chatty_guest(tmp_path):
    r = _boot(tmp_path, "Linux version\n", "chatter", total_timeout=2, silence_timeout=1)
    assert r.ending == "timeout-total" and r.timed_out


def test_missing_binary_is_infra_error(tmp_path):
    from harness.errors import InfraError

    with pytest.raises(InfraError):
        console.boot(
            ["/nonexistent/qemu"],
            tmp_path / "c.log",
            "n",
            total_timeout=1,
            silence_timeout=1,
            quiet=True,
        )


def test_console_window_keeps_head_and_tail_only():
    from harness.console import ConsoleWindow

    w = ConsoleWindow(head=100, tail=100)
    for i in range(10000):
        w.add(f"line {i:05d}\n".encode())
    text = w.text()
    assert text.startswith("line 00000\n")
    assert text.rstrip().endswith("line 09999")
    assert "bytes of the console are not kept in memory" in text
    assert len(w.head) <= 100 and len(w.tail) <= 200
    assert w.total == 110000


def test_line_ends_cr_only_crlf_split_and_nul():
    from harness.console import _LineEnds

    ends = _LineEnds()
    out = ends.feed(b"a\r\nb\rc\r") + ends.feed(b"\nd\0e\r\r\n") + ends.feed(b"f") + ends.flush()
    assert out == b"a\nb\nc\nde\nf"


OOPS_THEN_WEDGED = """Linux version 6.12.117
HARNESS: START @NONCE@ scenario=boot kernel=6.12.117
HARNESS: STEP 1/1 BEGIN mremap
Unable to handle kernel paging request at virtual address dead000000000108
Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP
Call trace:
 move_page_tables+0x1c/0x2a0
---[ end trace 0000000000000000 ]---
"""
WARN_THEN_QUIET = """Linux version 6.12.117
HARNESS: START @NONCE@ scenario=boot kernel=6.12.117
WARNING: CPU: 0 PID: 1 at mm/memory.c:100 do_wp_page+0x1/0x2
---[ end trace 0000000000000000 ]---
"""


def test_a_fatal_report_then_silence_ends_the_boot_at_once(tmp_path):
    t0 = time.monotonic()
    r = _boot(tmp_path, OOPS_THEN_WEDGED, "hang", silence_timeout=60, crash_quiet=1)
    assert r.ending == "crash-quiet" and r.started and not r.done
    assert time.monotonic() - t0 < 10


def test_a_warning_lets_the_scenario_go_on(tmp_path):
    r = _boot(tmp_path, WARN_THEN_QUIET, "hang", silence_timeout=2, crash_quiet=1)
    assert r.ending == "timeout-silence"  # not cut short: a WARN is not fatal


# an oops in a user process the kernel survives: the scenario goes on printing, never
# quiet for crash_quiet, and powers off
OOPS_THEN_MORE_OUTPUT = (
    OOPS_THEN_WEDGED
    + """@SLEEP 0.6@
HARNESS: STEP 1/1 END mremap rc=139
@SLEEP 0.6@
mm-churn: 5 rounds of 4 MB, 0 failed
@SLEEP 0.6@
HARNESS: DONE @NONCE@ failed=1
reboot: Power down
"""
)

# a Xen PV dom0 oops: Xen's own lines keep coming for a while after dom0's report
XEN_TRAILER = """Linux version 6.12.117
HARNESS: START @NONCE@ scenario=boot kernel=6.12.117
kernel BUG at arch/x86/include/asm/xen/hypervisor.h:79!
Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
---[ end trace 0000000000000000 ]---
@SLEEP 0.6@
(XEN) d0v0 Unhandled invalid opcode fault/trap [#6, ec=ffffffff]
@SLEEP 0.6@
(XEN) domain_crash called from traps.c:1007
@SLEEP 0.6@
(XEN) Domain 0 (vcpu#0) crashed on cpu#0:
"""

XEN_PANIC = (
    XEN_TRAILER
    + """Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
@SLEEP 0.3@
(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.
"""
)


def test_an_oops_then_more_output_lets_the_scenario_end_normally(tmp_path):
    r = _boot(tmp_path, OOPS_THEN_MORE_OUTPUT, "exit", silence_timeout=60, crash_quiet=1)
    assert r.ending == "poweroff" and r.done and r.failed_steps == 1


def test_xens_crash_trailer_is_waited_for_then_the_boot_ends(tmp_path):
    t0 = time.monotonic()
    r = _boot(tmp_path, XEN_TRAILER, "hang", silence_timeout=60, crash_quiet=1)
    assert r.ending == "crash-quiet"
    assert time.monotonic() - t0 < 10  # seconds after the trailer, not the silence limit
    assert "(XEN) Domain 0 (vcpu#0) crashed on cpu#0:" in (tmp_path / "console.log").read_text()


def test_a_panic_ends_the_boot_with_xens_last_line_kept(tmp_path):
    t0 = time.monotonic()
    r = _boot(tmp_path, XEN_PANIC, "exit", silence_timeout=60, crash_quiet=30)
    assert r.ending == "panic"
    assert time.monotonic() - t0 < 10
    assert "Hardware Dom0 crashed" in (tmp_path / "console.log").read_text()
