"""Report kinds, arches and console quirks, one small realistic log each."""

from __future__ import annotations

from harness.oops import Report
from harness.oops.frames import parse_trace
from harness.oops.parser import parse_strict


def stamp(block: str, caller: str = "", t: float = 10.0) -> str:
    """Prefix every line with a printk timestamp (and caller id)."""
    lines = block.strip("\n").split("\n")
    return "".join(f"[{t + i / 1e4:12.6f}]{caller} {line}\n" for i, line in enumerate(lines))


def only(text: str) -> Report:
    reports = parse_strict(text)
    assert len(reports) == 1, [r.title for r in reports]
    return reports[0]


HARD_LOCKUP = """
NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in:
CPU: 1 UID: 0 PID: 88 Comm: spin Not tainted 6.12.117 #2
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:spin_forever+0x10/0x20
Code: 90 90 f3 0f 1e fa eb fe <eb> fe 66 0f 1f 44 00 00
RSP: 0018:ffffc90000013e80 EFLAGS: 00000046
RAX: 0000000000000000 RBX: 0000000000000001 RCX: 0000000000000000
Call Trace:
 <NMI>
 ? watchdog_hardlockup_check+0x1a0/0x2e0
 </NMI>
 <TASK>
 do_spin_write+0x40/0x80
 vfs_write+0xf0/0x3c0
 ksys_write+0x60/0xe0
 do_syscall_64+0x5d/0x170
 entry_SYSCALL_64_after_hwframe+0x76/0x7e
 </TASK>
Kernel panic - not syncing: Hard LOCKUP
"""


def test_hard_lockup() -> None:
    rep = only(stamp(HARD_LOCKUP))
    assert rep.title == "BUG: hard lockup in do_spin_write"
    assert rep.type == "HANG"
    assert rep.alt_titles == ["stall in do_spin_write"]
    assert rep.panicked and rep.notes == ["Kernel panic - not syncing: Hard LOCKUP"]
    assert (rep.cpu, rep.pid, rep.comm, rep.arch) == (1, 88, "spin", "x86_64")
    assert [f.function for f in rep.frames][:2] == ["watchdog_hardlockup_check", "do_spin_write"]
    assert rep.frames[0].reliable is False


XEN_BUG = """
(XEN) Xen BUG at mm.c:2345
(XEN) ----[ Xen-4.17.5  x86_64  debug=n  Not tainted ]----
(XEN) CPU:    0
(XEN) RIP:    e008:[<ffff82d04031a2b4>] mm.c#get_page_type+0x5b4/0x1180
(XEN) RFLAGS: 0000000000010286   CONTEXT: hypervisor (d0v0)
(XEN) rax: 0000000000000000   rbx: ffff82e0000a3b00   rcx: 0000000000000000
(XEN) Xen stack trace from rsp=ffff830079c5fc48:
(XEN)    ffff82d04031bb7e 0000000000000000 ffff830079c5fd18 0000000000000001
(XEN) Xen call trace:
(XEN)    [<ffff82d04031a2b4>] R mm.c#get_page_type+0x5b4/0x1180
(XEN)    [<ffff82d04031bb7e>] F mm.c#mod_l1_entry+0x2ae/0x850
(XEN)    [<ffff82d04031d2c2>] F do_mmu_update+0x8e2/0x16a0
(XEN)    [<ffff82d0402e8b3c>] F pv_hypercall+0x2cc/0x5c0
(XEN)    [<ffff82d040201273>] F lstar_enter+0x143/0x150
(XEN)
(XEN)
(XEN) ****************************************
(XEN) Panic on CPU 0:
(XEN) Xen BUG at mm.c:2345
(XEN) ****************************************
(XEN)
(XEN) Reboot in five seconds...
"""


def test_xen_bug() -> None:
    text = stamp("Run /init as init process") + XEN_BUG.lstrip("\n") + stamp("after reboot", t=99.0)
    rep = only(text)
    assert rep.title == "Xen BUG in get_page_type"
    assert rep.type == "BUG"
    assert rep.arch == "xen"
    assert (rep.version, rep.cpu, rep.tainted) == ("4.17.5", 0, None)
    assert rep.panicked
    assert rep.pc == "mm.c#get_page_type+0x5b4/0x1180"
    assert rep.registers["RFLAGS"] == "0000000000010286"
    assert rep.registers["rbx"] == "ffff82e0000a3b00"
    assert [f.function for f in rep.frames] == [
        "get_page_type",
        "mod_l1_entry",
        "do_mmu_update",
        "pv_hypercall",
        "lstar_enter",
    ]
    assert rep.frames[0].tag == "R"
    assert rep.text.rstrip().endswith("Reboot in five seconds...")


XEN_PAGE_FAULT = """
(XEN) ----[ Xen-4.17.5  x86_64  debug=y  Not tainted ]----
(XEN) CPU:    1
(XEN) RIP:    e008:[<ffff82d040239ab1>] common/sched/credit2.c#runq_tickle+0x161/0x571
(XEN) RFLAGS: 0000000000010046   CONTEXT: hypervisor
(XEN) Xen call trace:
(XEN)    [<ffff82d040239ab1>] R common/sched/credit2.c#runq_tickle+0x161/0x571
(XEN)    [<ffff82d04023a1c5>] F common/sched/credit2.c#csched2_unit_wake+0x175/0x190
(XEN)    [<ffff82d040244d7f>] F vcpu_wake+0x12f/0x590
(XEN)
(XEN) Pagetable walk from 0000000000000008:
(XEN)  L4[0x000] = 0000000000000000 ffffffffffffffff
(XEN)
(XEN) ****************************************
(XEN) Panic on CPU 1:
(XEN) FATAL PAGE FAULT
(XEN) [error_code=0000]
(XEN) Faulting linear address: 0000000000000008
(XEN) ****************************************
(XEN)
(XEN) Manual reset required ('noreboot' specified)
"""


def test_xen_fatal_page_fault() -> None:
    rep = only(XEN_PAGE_FAULT.lstrip("\n"))
    assert rep.title == "Xen panic: FATAL PAGE FAULT in runq_tickle"
    assert rep.type == "DoS"
    assert rep.fault_address == "0000000000000008"
    assert rep.cpu == 1


XEN_ARM_ASSERT = """
(XEN) Assertion 'IS_ALIGNED(s, PAGE_SIZE)' failed at arch/arm/mm.c:1243
(XEN) ----[ Xen-4.18-rc  arm32  debug=y  Not tainted ]----
(XEN) CPU:    0
(XEN) PC:     00271a38 destroy_xen_mappings+0x50/0x5c
(XEN) CPSR:   a00f005a MODE:Hypervisor
(XEN) Xen call trace:
(XEN)    [<00271a38>] destroy_xen_mappings+0x50/0x5c (PC)
(XEN)    [<00235aa8>] vunmap+0x30/0x1a0 (LR)
(XEN)    [<0026ad88>] unmap_domain_page_global+0x10/0x20
(XEN)    [<00208e38>] unmap_guest_area+0x90/0xec
(XEN)
(XEN) ****************************************
(XEN) Panic on CPU 0:
(XEN) Assertion 'IS_ALIGNED(s, PAGE_SIZE)' failed at arch/arm/mm.c:1243
(XEN) ****************************************
"""


def test_xen_arm_assertion() -> None:
    rep = only(XEN_ARM_ASSERT.lstrip("\n"))
    assert rep.title == "Xen assertion failure in destroy_xen_mappings"
    assert rep.type == "BUG"
    assert [f.tag for f in rep.frames[:3]] == ["PC", "LR", None]
    assert rep.pc == "destroy_xen_mappings+0x50/0x5c"


def test_dom0_crash_recorded_on_dom0_panic() -> None:
    text = stamp("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)")
    text += "(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.\n"
    rep = only(text)
    assert rep.title == "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)"
    assert rep.notes[-1] == "Hardware Dom0 crashed: rebooting machine in 5 seconds."
    assert rep.panicked


def test_dom0_crash_alone_is_a_report() -> None:
    rep = only(
        stamp("Freeing unused kernel memory")
        + "(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.\n"
    )
    assert rep.title == "Xen: Dom0 crashed"
    assert rep.type == "DoS" and rep.panicked


ARM64_NULL = """
Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
Mem abort info:
  ESR = 0x0000000096000006
  EC = 0x25: DABT (current EL), IL = 32 bits
Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP
Modules linked in:
CPU: 2 UID: 0 PID: 77 Comm: mmstress Tainted: G        W          6.14.0 #1
Hardware name: linux,dummy-virt (DT)
pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : folio_remove_rmap_ptes+0x24/0x1c0
lr : zap_present_ptes+0x1a8/0x5b0
sp : ffff800082c3b9a0
x29: ffff800082c3b9a0 x28: 0000000000000000 x27: ffff0000c2a30000
x2 : 0000000000000001 x1 : 0000000000000000 x0 : 0000000000000000
Call trace:
 folio_remove_rmap_ptes+0x24/0x1c0 (P)
 zap_present_ptes+0x1a8/0x5b0 (L)
 zap_pte_range+0x2c4/0x6a0
 unmap_page_range+0x1b0/0x3a0
 exit_mmap+0xe0/0x380
 mmput+0x70/0x1a0
 do_exit+0x2a4/0x9a0
 __arm64_sys_exit_group+0x1c/0x20
 invoke_syscall+0x48/0x110
 el0_svc+0x30/0xd0
 el0t_64_sync_handler+0x10c/0x138
 el0t_64_sync+0x198/0x19c
Code: d503201f aa0003f3 f9400408 aa0103f4 (f9400400)
---[ end trace 0000000000000000 ]---
"""


def test_arm64_null_deref_with_frame_suffixes() -> None:
    rep = only(stamp(ARM64_NULL))
    assert (
        rep.title
        == "BUG: unable to handle kernel NULL pointer dereference in folio_remove_rmap_ptes"
    )
    assert rep.arch == "arm64"
    assert rep.tainted == "G        W"
    assert rep.version == "6.14.0"
    assert rep.fault_address == "0000000000000008"
    assert rep.registers["x2"] == "0000000000000001" and rep.registers["pstate"] == "60400005"
    assert rep.lr == "zap_present_ptes+0x1a8/0x5b0"
    assert [(f.function, f.tag) for f in rep.frames[:3]] == [
        ("folio_remove_rmap_ptes", "P"),
        ("zap_present_ptes", "L"),
        ("zap_pte_range", None),
    ]
    assert rep.code == "d503201f aa0003f3 f9400408 aa0103f4 (f9400400)"


def test_arm_verbose_backtrace_frames() -> None:
    frames = parse_trace(
        [
            "Backtrace: ",
            "[<c010c8a4>] (unwind_backtrace) from [<c01093c8>] (show_stack+0x10/0x14)",
            "[<c01093c8>] (show_stack) from [<c07ce9b4>] (dump_stack+0x98/0xac)",
            "[<c07ce9b4>] (dump_stack) from [<c02a1b2c>] (handle_mm_fault+0x1c/0x30 [mymod])",
        ]
    )
    assert [(f.function, f.address, f.offset, f.module) for f in frames] == [
        ("unwind_backtrace", "c010c8a4", None, None),
        ("show_stack", "c01093c8", 0x10, None),
        ("dump_stack", "c07ce9b4", 0x98, None),
        ("handle_mm_fault", "c02a1b2c", 0x1C, "mymod"),
    ]


def test_interleaved_tasks_are_kept_apart() -> None:
    a = "[T100]"
    b = "[T200]"
    lines = [
        (a, "------------[ cut here ]------------"),
        (a, "WARNING: CPU: 1 PID: 100 at mm/memory.c:123 zap_pte_range+0x10/0x20"),
        (b, "BUG: scheduling while atomic: kworker/0:1/200/0x00000002"),
        (a, "Modules linked in:"),
        (b, "Modules linked in:"),
        (a, "CPU: 1 UID: 0 PID: 100 Comm: stress Not tainted 6.12.117 #1"),
        (b, "CPU: 0 UID: 0 PID: 200 Comm: kworker/0:1 Not tainted 6.12.117 #1"),
        (a, "RIP: 0010:zap_pte_range+0x10/0x20"),
        (b, "Call Trace:"),
        (a, "Call Trace:"),
        (b, " <TASK>"),
        (a, " <TASK>"),
        (b, " dump_stack_lvl+0x5d/0x80"),
        (a, " unmap_page_range+0x20/0x30"),
        (b, " __schedule_bug+0x50/0x70"),
        (a, " exit_mmap+0x20/0x30"),
        (b, " __schedule+0x900/0xa00"),
        (b, " schedule+0x30/0x100"),
        (b, " worker_thread+0x100/0x200"),
        (a, " mmput+0x70/0x1a0"),
        (b, " kthread+0xe0/0x110"),
        (a, " do_exit+0x2a4/0x9a0"),
    ]
    text = "".join(f"[   50.{i:06d}]{ctx} {line}\n" for i, (ctx, line) in enumerate(lines))
    warn, sched = parse_strict(text)
    assert warn.title == "WARNING in zap_pte_range"
    assert (warn.pid, warn.comm, warn.cpu) == (100, "stress", 1)
    assert [f.function for f in warn.frames] == [
        "unmap_page_range",
        "exit_mmap",
        "mmput",
        "do_exit",
    ]
    assert sched.title == "BUG: scheduling while atomic in worker_thread"
    assert (sched.pid, sched.comm, sched.cpu) == (200, "kworker/0:1", 0)
    assert sched.type == "ATOMIC_SLEEP"


OLD_X86_LEVELS = """<1>BUG: unable to handle kernel paging request at 0000000b819fdb98
<1>IP: [<ffffffff812a588f>] notify_remote_via_irq+0x13/0x34
<4>PGD 94b10067 PUD 0
<0>Oops: 0000 [#1] SMP
<4>Pid: 18, comm: events/3 Not tainted 2.6.32 #1
<4>RIP: e030:[<ffffffff812a588f>]  [<ffffffff812a588f>] notify_remote_via_irq+0x13/0x34
<0>Call Trace:
<4> [<ffffffff812712c9>] xen_send_IPI_one+0x2a/0x30
<4> [<ffffffff8100ea5f>] ? xen_restore_fl_direct_end+0x0/0x1
<4> [<ffffffff8100ea00>] xen_smp_send_reschedule+0x1f/0x21
"""


def test_loglevel_prefixes_and_old_format() -> None:
    rep = only(OLD_X86_LEVELS)
    assert rep.title == "BUG: unable to handle kernel paging request in notify_remote_via_irq"
    assert rep.type == "MEMORY_SAFETY_BUG"
    assert (rep.pid, rep.comm, rep.version) == (18, "events/3", "2.6.32")
    assert rep.fault_address == "0000000b819fdb98"
    assert rep.frames[0].address == "ffffffff812712c9"
    assert [f.reliable for f in rep.frames] == [True, False, True]


def test_timestamps_with_loglevel() -> None:
    text = "<4>[    1.000000] WARNING: CPU: 0 PID: 1 at mm/gup.c:10 gup_fn+0x1/0x2\n"
    text += "<4>[    1.000001] RIP: 0010:gup_fn+0x1/0x2\n"
    text += "<4>[    1.000002] Call Trace:\n<4>[    1.000003]  caller_fn+0x10/0x20\n"
    assert only(text).title == "WARNING in gup_fn"


BAD_PAGE = """
BUG: Bad page state in process stress  pfn:1a2b3
page: refcount:0 mapcount:1 mapping:0000000000000000 index:0x7f0000000 pfn:0x1a2b3
flags: 0x100000000080014(uptodate|lru|swapbacked|node=0|zone=1)
page dumped because: nonzero mapcount
page_owner tracks the page as allocated
page last allocated via order 0, migratetype Movable, gfp_mask 0x140cca(GFP_HIGHUSER_MOVABLE)
 post_alloc_hook+0x1c0/0x1e0
 get_page_from_freelist+0x9d0/0x1600
 __alloc_pages_noprof+0x1a0/0x360
 alloc_pages_mpol_noprof+0x90/0x1d0
 vma_alloc_folio_noprof+0x6b/0xd0
 do_anonymous_page+0x2b3/0x8f0
 __handle_mm_fault+0x7b8/0xf00
page last free pid 1 tgid 1 stack trace:
 free_unref_folios+0x2a0/0x600
Modules linked in:
CPU: 0 UID: 0 PID: 120 Comm: stress Tainted: G    B              6.12.117 #2
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 bad_page+0x6d/0x100
 free_unref_folios+0x1c0/0x600
 release_pages+0x1d0/0x4e0
 </TASK>
"""


def test_bad_page_state() -> None:
    rep = only(stamp(BAD_PAGE))
    assert rep.title == "BUG: Bad page state in do_anonymous_page"
    assert rep.tainted == "G    B"
    assert [f.function for f in rep.frames][:2] == ["dump_stack_lvl", "bad_page"]


LIST_BUG = """
list_del corruption. prev->next should be ffff888003a0c0d8, but was 0000000000000000.
------------[ cut here ]------------
kernel BUG at lib/list_debug.c:62!
Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
CPU: 0 UID: 0 PID: 130 Comm: stress Not tainted 6.12.117 #2
RIP: 0010:__list_del_entry_valid_or_report+0x8b/0xd0
Call Trace:
 <TASK>
 release_pages+0x1d0/0x4e0
 tlb_flush_mmu+0x50/0x150
 unmap_page_range+0x6c0/0x1010
 </TASK>
---[ end trace 0000000000000000 ]---
"""


def test_list_corruption_bug_and_warning() -> None:
    rep = only(stamp(LIST_BUG))
    assert rep.title == "BUG: corrupted list in release_pages"
    assert rep.type == "MEMORY_SAFETY_BUG"
    assert rep.text.startswith("------------[ cut here ]")
    warn = LIST_BUG.replace(
        "kernel BUG at lib/list_debug.c:62!\nOops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n",
        "WARNING: CPU: 0 PID: 130 at lib/list_debug.c:62 "
        "__list_del_entry_valid_or_report+0x8b/0xd0\n",
    )
    # without CONFIG_BUG_ON_DATA_CORRUPTION the same corruption is a WARN: the same title
    rep = only(stamp(warn))
    assert (rep.title, rep.type) == ("BUG: corrupted list in release_pages", "MEMORY_SAFETY_BUG")


SMP_ID = """
BUG: using smp_processor_id() in preemptible [00000000] code: stress/140
caller is debug_smp_processor_id+0x17/0x20
CPU: 1 UID: 0 PID: 140 Comm: stress Not tainted 6.12.117 #2
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 check_preemption_disabled+0xd0/0xe0
 lru_add_drain+0x1e/0x50
 do_madvise+0x1a0/0x3a0
 </TASK>
"""


def test_smp_processor_id_in_preemptible() -> None:
    rep = only(stamp(SMP_ID))
    assert rep.title == "BUG: using smp_processor_id() in preemptible code in lru_add_drain"
    assert rep.type == "LOCKDEP"


RECURSIVE = """
============================================
WARNING: possible recursive locking detected
6.12.117 #2 Not tainted
--------------------------------------------
stress/150 is trying to acquire lock:
ffff888004a2c0b8 (&mm->mmap_lock){++++}-{4:4}, at: lock_mm_and_find_vma+0x2e/0x1a0

but task is already holding lock:
ffff888004a2c0b8 (&mm->mmap_lock){++++}-{4:4}, at: do_madvise+0x12a/0x3d0

stack backtrace:
CPU: 0 UID: 0 PID: 150 Comm: stress Not tainted 6.12.117 #2
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 __lock_acquire+0x1b4/0x2000
 lock_acquire+0xd0/0x2f0
 down_read+0x42/0x150
 lock_mm_and_find_vma+0x2e/0x1a0
 do_user_addr_fault+0x1b0/0x7a0
 </TASK>
"""


def test_lockdep_recursive_locking() -> None:
    rep = only(stamp(RECURSIVE))
    assert rep.title == "possible deadlock in lock_mm_and_find_vma"
    assert rep.type == "LOCKDEP"
    assert rep.text.startswith(
        "============================================\nWARNING: possible recursive"
    )


def test_root_fs_panic() -> None:
    rep = only(
        stamp("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)")
    )
    assert rep.title == "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)"
    assert rep.type == "DoS" and rep.panicked


def test_several_reports_and_a_distant_panic() -> None:
    def filler(t: float) -> str:
        return stamp("\n".join(f"boot line {i}" for i in range(100)), t=t)

    text = (
        stamp(SMP_ID)
        + filler(20.0)
        + stamp(HARD_LOCKUP.replace("Kernel panic - not syncing: Hard LOCKUP\n", ""), t=30.0)
    )
    text += filler(36.0) + stamp(
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009", t=40.0
    )
    titles = [r.title for r in parse_strict(text)]
    assert titles == [
        "BUG: using smp_processor_id() in preemptible code in lru_add_drain",
        "BUG: hard lockup in do_spin_write",
        "kernel panic: Attempted to kill init!",
    ]
    reports = parse_strict(text)
    assert all(r.panicked for r in reports)
    assert "boot line" not in reports[1].text  # the report ends at the printk gap


def test_truncated_report_is_corrupted() -> None:
    full = stamp(ARM64_NULL)
    cut = full[: full.index("Call trace:")]
    rep = only(cut)
    assert (
        rep.title
        == "BUG: unable to handle kernel NULL pointer dereference in folio_remove_rmap_ptes"
    )
    assert rep.corrupted
    header_only = full[: full.index("Mem abort info")]
    rep = only(header_only)
    assert rep.corrupted and rep.title.endswith(" in corrupted")


def test_crlf_console_lines() -> None:
    text = stamp(SMP_ID).replace("\n", "\r\r\n")
    rep = only(text)
    assert rep.title == "BUG: using smp_processor_id() in preemptible code in lru_add_drain"
    assert text[rep.start : rep.end].startswith("[")
    assert [f.function for f in rep.frames][-1] == "do_madvise"


def test_offsets_point_into_the_log() -> None:
    text = stamp("booting") + stamp(LIST_BUG)
    rep = only(text)
    assert text[rep.start :].split("] ", 1)[1].startswith("------------[ cut here ]")
    assert text[: rep.end].endswith("---[ end trace 0000000000000000 ]---")


def test_to_dict_is_json_serialisable() -> None:
    import json

    rep = only(stamp(ARM64_NULL))
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["frames"][0]["function"] == "folio_remove_rmap_ptes"
    assert set(data) >= {
        "title",
        "alt_titles",
        "type",
        "frame",
        "corrupted",
        "corrupted_reason",
        "panicked",
        "start",
        "end",
        "text",
        "version",
        "cpu",
        "pid",
        "comm",
        "tainted",
        "hardware",
        "fault_address",
        "registers",
        "code",
        "frames",
        "arch",
    }


def test_every_header_has_a_scan_trigger() -> None:
    from harness.oops import formats

    for kind in formats.KINDS:
        assert any(t in kind.header for t in formats.TRIGGERS), kind.header


def test_arm_verbose_trace_with_register_lines() -> None:
    frames = parse_trace(
        [
            "Backtrace: ",
            "[<80260370>] (__queue_work) from [<80260b0c>] (queue_work_on+0x50/0x5c)",
            " r10:8538e974 r9:8250ca80 r8:ec3d1b63 r7:60000013 r6:84e37c00 r5:00000008",
            " r4:851eb85c",
            "[<80260abc>] (queue_work_on) from [<816df870>] (nci_send_cmd+0xb0/0x110)",
            "Exception stack(0xec3d1fa8 to 0xec3d1ff0)",
            "1fa0:                   00000000 00000000 00000006 20000140 00000000 00000000",
            "Code: 0a00003b e59f06a8 eb532efb e1a0a000 (e5990000) ",
        ]
    )
    assert [f.function for f in frames] == ["__queue_work", "queue_work_on", "nci_send_cmd"]


def test_trace_survives_an_interleaved_line() -> None:
    frames = parse_trace(
        [
            "Call Trace:",
            " <TASK>",
            " unmap_page_range+0x20/0x30",
            "random: crng init done",
            " exit_mmap+0x20/0x30",
            " </TASK>",
            "RIP: 0033:0x7f0000001234",
            " not_a_frame_of_this_trace+0x1/0x2",
        ]
    )
    assert [f.function for f in frames] == ["unmap_page_range", "exit_mmap"]


def test_bytes_input_and_garbage_never_raise() -> None:
    from harness.oops import parse

    assert parse(stamp(SMP_ID).encode())[0].frame == "lru_add_drain"
    assert parse(None) == []  # type: ignore[arg-type]


HUNG = """
INFO: task kworker/u4:1:42 blocked for more than 122 seconds.
      Not tainted 6.12.117 #2
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:kworker/u4:1    state:D stack:0     pid:42    tgid:42    ppid:2      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x3a0/0xb70
 schedule+0x27/0xd0
 io_schedule+0x46/0x70
 folio_wait_bit_common+0x13d/0x350
 migrate_pages_batch+0x8a4/0xc30
 compact_zone+0x9e4/0xe70
 </TASK>
"""


def test_hung_task_version_from_boot_banner() -> None:
    text = stamp("Linux version 6.12.117 (builder@host) (gcc 12) #2 SMP", t=0.0) + stamp(
        HUNG, t=200.0
    )
    rep = only(text)
    assert rep.title == "INFO: task hung in migrate_pages_batch"
    assert rep.type == "HANG"
    assert (rep.pid, rep.comm, rep.version) == (42, "kworker/u4:1", "6.12.117")
