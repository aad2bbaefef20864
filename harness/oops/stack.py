"""Stack rules shared by the oops formats: frame patterns, skip lists, extractors.

Which frame is "guilty" decides the title; these lists encode syzkaller's
experience (Apache-2.0, google/syzkaller pkg/report) of which helpers never
are: locking, printk, allocators, string helpers, trap entry code...
"""

from __future__ import annotations

import re
from collections.abc import Callable

MACROS = {
    "{ADDR}": r"0x[0-9a-f]+",
    "{PC}": r"\[<?(?:0x)?[0-9a-f]+>?\]",
    "{FUNC}": r"([a-zA-Z0-9_]+)(?:\.|\+)",
    "{SRC}": r"([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)",
}


def rx(pattern: str) -> re.Pattern[str]:
    """Compile a pattern after expanding the {PC}/{FUNC}/{SRC}/{ADDR} macros."""
    for name, value in MACROS.items():
        pattern = pattern.replace(name, value)
    return re.compile(pattern)


# Marker inside Stack.parts: "parse a call trace from here".
PARSE_STACK = None

Extractor = Callable[[list[str]], tuple[str, int]]


# ---------------------------------------------------------------------------
# Frame patterns shared by the formats.

RIP_FRAME = rx(
    r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9a-f]+:)?(?:{PC} +){0,2}{FUNC}|(?:[0-9]+:)?0x[0-9a-f]+"
    r"|(?:[0-9]+:)?{PC} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))"
)
CALL_TRACE = rx(r"Call (?:T|t)race:|Backtrace:")
# arm32's unwinder before "Call trace:" was printed (6.1): the frames follow the stack dump
ARM_STACK_DUMP = rx(r"Stack: \(0x[0-9a-f]+ to 0x[0-9a-f]+\)")
XEN_RIP = rx(
    r"(?:RIP|PC):\s+(?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s*)?(?:[0-9a-f]{8,16}\s+)?(?:\S+#)?{FUNC}"
)
XEN_TRACE = rx(r"Xen call trace:")

# Start of a stack trace (used to stop a trace and by the corruption check).
STACK_START = tuple(
    re.compile(p)
    for p in (
        r"Call (?:T|t)race",
        r"Allocated:",
        r"Allocated by task [0-9]+:",
        r"Freed:",
        r"Freed by task [0-9]+:",
        r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:",
        r"Backtrace:",
        r"Uninit was stored to memory at",
        r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}",
    )
)
RISCV_STACK_START = STACK_START[-1]
# Text each STACK_START match contains (a cheap test before the search).
STACK_START_HINTS = (
    "Call ",
    "Allocated:",
    "Allocated by task ",
    "Freed:",
    "Freed by task ",
    " backtrace",
    "Backtrace:",
    "Uninit was stored to memory at",
    " badaddr: ",
)

# Lines that carry a frame: generic, arm verbose, arm short, Xen.
FRAME_LINES = (
    rx(r"^ *(?:{PC} ){0,2}{FUNC}"),
    rx(r"^ *{PC} \(([a-zA-Z0-9_.]+)\) from {PC} \({FUNC}"),
    rx(r"^ *([a-zA-Z0-9_.]+) from ([a-zA-Z0-9_]+)\+0x[0-9a-f]+/0x[0-9a-f]+"),
    rx(r"^ *\[<[0-9a-f]+>\] (?:[RFSCE] )?(?:[^ #]+#)?{FUNC}"),
)

# Fault-injection stacks intermixed with a report make it unreliable.
CORRUPTED_LINES = (rx(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),)

# Syscall wrappers stripped from guilty frames (raw names become ALT titles).
# Unlike syzkaller, "sys_" itself stays: arm32 calls sys_execve directly where x86 and
# arm64 go through __x64_sys_execve / __arm64_sys_execve, and all three must give the
# title syzkaller gives on x86 and arm64, "... in sys_execve".
STRIP_PREFIXES = (
    "SYSC_",
    "SyS_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_",
    "__se_sys_",
    "__do_sys_",
    "compat_SYSC_",
    "compat_SyS_",
    "ksys_",
)

# Frames that are never guilty: report plumbing, printing, allocators,
# locking, atomics, string/usercopy helpers, generic containers, trap entry.
_SKIP_GROUPS = {
    "sanitizers and report plumbing": r"""
        __sanitizer __asan kasan hwasan __msan kmsan kcsan_setup_watchpoint
        check_memory_region check_heap_object check_object read_word_at_a_time
        (read|write)_once_.*nocheck print_address_description print_report print_usage_bug
        __fortify_report
    """,
    "panic, traps, stack dumping, printing": r"""
        panic invalid_op report_bug fixup_bug do_error _trap$|do_trap show_stack dump_stack
        walk_stack dump_backtrace warn_slowpath warn_alloc warn_bogus __warn
        unwind_backtrace walk_stackframe ^unwind_frame$ ^kunwind_ show_trace_log_lvl
        program_check_exception program_check_common print_tainted ^get_taint$
        stack_trace_consume_entry arch_stack_walk stack_trace_save printk va_format dev_info
        dev_notice dev_warn dev_err dev_alert dev_crit dev_emerg hex_dump_to_buffer
        print_hex_dump assertfail
    """,
    "allocators and page cache helpers": r"""
        alloc_page k?v?(?:m|z|c)alloc krealloc kmem_cache allocate_slab
        __alloc_frozen_pages_noprof folio_(?:alloc|unlock) filemap_alloc_folio
        __filemap_get_folio find_or_create_page do_read_cache_folio read_cache_page
        pagecache_get_page grab_cache_page_write_begin slab_ ^kv?free$ kfree_skb memdup
        strdup strndup
    """,
    "locking": r"""
        lockdep lock_acquire lock_release lock_class mark_lock (reacquire|mark)_held_locks
        raw_spin_rq spin_lock spin_trylock spin_unlock read_lock read_trylock write_lock
        write_trylock read_unlock write_unlock ^down$ down_read down_write down_read_trylock
        down_write_trylock down_trylock up_read up_write ^mutex_ ^__mutex_ ^rt_mutex_
        owner_on_cpu osq_lock osq_unlock print_unlock imbalance_bug bh_enable bh_disable
        (trace|lockdep)_(hard|soft)irq ^(un)?lock_page lock_timer_base
    """,
    "atomics, refcounts, bits": r"""
        atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)
        (set|clear|change|test)_bit ^refcount_ ^kref_ ref_tracker seqprop_assert
    """,
    "string and memory helpers": r"""
        memcpy memcmp memset memchr memmove strcmp strncmp strcpy strlcpy strncpy strscpy
        strlen strstr strnstr strnlen strchr string pointer snprintf scnprintf kasprintf
        kvasprintf ^crc\d+ crc_itu_t
    """,
    "user copies and might_sleep checks": r"""
        copy_to_user copy_from_user copy_to_iter copy_from_iter copy_page_to_iter
        copy_page_from_iter copy_folio_to_iter ^copyin$ ^copyout$ put_user get_user
        might_fault __might_fault might_sleep __might_resched extract_(user|iter)_to_sg
    """,
    "containers": r"""
        list_add list_del list_replace list_move list_splice ^rb_ ^__rb_ ^klist_
        xas_(?:start|load|find) find_lock_entries rhashtable_lookup ida_free
    """,
    "workqueues, timers, completions": r"""
        del_timer flush_work __cancel_work_timer cancel_work_sync try_to_grab_pending
        flush_workqueue drain_workqueue destroy_workqueue queue_work insert_work
        __queue_delayed_work queue_delayed_work_on finish_wait kthread_stop ^complete$
        wait_for_completion __wake_up __timer_delete_sync sk_stop_timer_sync __mod_timer
    """,
    "device model, USB, MMIO": r"""
        kobject_ add_uevent_var get_device_parent device_add device_del device_unregister
        device_destroy device_release devres_release_all ^put_device$ device_for_each_child
        device_remove_file sysfs_remove hwrng_unregister i2c_del_adapter __unregister_client
        rollback_registered unregister_netdev tty_unregister_device dummy_urb_enqueue
        usb_kill_urb usb_kill_anchored_urbs usb_control_msg usb_hcd_submit_urb
        usb_submit_urb readb$ readw$ readl$ readq$ writeb$ writew$ writel$ writeq$ logic_in
        logic_out
    """,
    "VFS": r"""
        ^iput$ ^iput_final$ ^ihold$ drop_nlink fast_dput dput truncate_inode_pages_range
        cleanup_srcu_struct
    """,
    "arm64 fault entry, misc": r"""
        do_(kernel|translation)_fault do_mem_abort el1_abort el1h_64_sync(?:_handler)?
        __phys_addr debug_object timer_is_static_object work_is_static_object perf_trace
        _indirect_thunk_
    """,
}
SKIP = tuple(p for group in _SKIP_GROUPS.values() for p in group.split())


# ---------------------------------------------------------------------------
# Frame extractors for stalls and hangs (the loop is everywhere; pick the
# entry point or the blocking call instead of the top frame).

_ANCHOR_GROUPS = {
    # do_el0_svc: arm64's syscall entry where invoke_syscall() is inlined (small configs)
    "dispatchers and syscall entries": r"""
        process_one_work do_syscall_ do_fast_syscall_ sysenter_dispatch tracesys_phase2
        el0_svc_handler invoke_syscall ^do_el0_svc$ ret_fast_syscall netif_receive_skb do_softirq
        call_timer_fn _run_timers run_timer_softirq hrtimer_run run_ksoftirqd
        smpboot_thread_fn ^kthread$ start_secondary cpu_startup_entry ret_from_fork
    """,
    "discriminating file and socket operations": r"""
        vfs_write vfs_read vfs_iter_read vfs_iter_write do_iter_read do_iter_write
        call_read_iter call_write_iter new_sync_read new_sync_write vfs_ioctl ksys_ioctl
        compat_ioctl compat_sys_ioctl blkdev_driver_ioctl blkdev_ioctl ^call_read_iter
        ^call_write_iter do_iter_readv_writev ^call_mmap mmap_region do_mmap do_dentry_open
        vfs_open ^sock_sendmsg ^sock_recvmsg ^sock_release ^__sock_release ^setsockopt$
        kernel_setsockopt sock_common_setsockopt ^listen$ kernel_listen sk_common_release
        ^sock_mmap ^accept$ kernel_accept ^sock_do_ioctl ^sock_ioctl ^compat_sock_ioctl
        ^nfnetlink_rcv_msg ^rtnetlink_rcv_msg ^netlink_dump
        ^(sys_)?(socketpair|connect|ioctl)
    """,
    "page faults, task work, cross calls": r"""
        __do_fault do_page_fault ^page_fault$ __fput task_work_run exit_to_usermode
        smp_call_function tasklet_action tasklet_hi_action
    """,
}
_STALL_ANCHORS = re.compile("|".join(p for g in _ANCHOR_GROUPS.values() for p in g.split()))


def stall_frame(frames: list[str]) -> tuple[str, int]:
    """Return the frame just above the first dispatcher/syscall anchor."""
    if not frames:
        return "", -1
    prev, prev_idx = frames[0], 0
    for i, frame in enumerate(frames):
        if _STALL_ANCHORS.search(frame):
            if "smp_call_function" in frame:
                return "smp_call_function", i
            return prev, prev_idx
        prev, prev_idx = frame, i
    return "", -1


_HANG_BUCKETS = (
    ("rtnl_lock", ""),
    ("synchronize_rcu", "synchronize_rcu"),
    ("synchronize_srcu", "synchronize_rcu"),
    ("synchronize_net", "synchronize_rcu"),
    ("synchronize_sched", "synchronize_rcu"),
)
_HANG_SKIP = (
    "sched",
    "_lock",
    "_slowlock",
    "down",
    "rwsem",
    "completion",
    "kthread",
    "wait",
    "synchronize",
    "context_switch",
    "__switch_to",
    "cancel_delayed_work",
    "rcu_barrier",
)


def hang_frame(frames: list[str]) -> tuple[str, int]:
    """Bucket hung tasks on rtnl_lock / synchronize_rcu, else skip waiting frames."""
    for i, frame in enumerate(frames):
        for anchor, replacement in _HANG_BUCKETS:
            if anchor in frame:
                return (replacement or frame), i
    for i, frame in enumerate(frames):
        if not any(s in frame for s in _HANG_SKIP):
            return frame, i
    return "", -1
