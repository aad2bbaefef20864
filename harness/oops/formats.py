"""Declarative table of oops kinds: header strings, title formats, stack rules.

The rules follow syzkaller's pkg/report conventions (Apache-2.0, google/
syzkaller) so that titles match what kernel developers see on syzbot: one
`Kind` per header substring, several `Format`s per kind; the format whose
title regex matches earliest in the report wins.  Titles are Python format
strings: `{0}`, `{1}`, ... are the regex captures (of `report` when given,
else of `title`), followed by the guilty frame(s) taken from `stack`.

Additions over syzkaller: Xen hypervisor reports, hard lockups, the short
arm32 ` f from g+0x..` backtrace, arm64 `(P)` frame suffixes and x86 PV
segment selectors such as `RIP: e030:`.
"""

from __future__ import annotations

import re
import re._parser as _sre_parser  # type: ignore[import-not-found]
from dataclasses import dataclass, field

from .stack import (
    ARM_STACK_DUMP,
    CALL_TRACE,
    PARSE_STACK,
    RIP_FRAME,
    XEN_RIP,
    XEN_TRACE,
    Extractor,
    hang_frame,
    rx,
    stall_frame,
)
from .stack import MACROS as _MACROS


@dataclass(frozen=True)
class Stack:
    """How to find the guilty frame: parts scanned in order, then skip rules."""

    parts: tuple[re.Pattern[str] | None, ...]
    parts2: tuple[re.Pattern[str] | None, ...] = ()
    skip: tuple[str, ...] = ()
    extractor: Extractor | None = None
    # Tried when parts and parts2 find no frame (ours: arm32's register dump).
    parts3: tuple[re.Pattern[str] | None, ...] = ()


@dataclass(frozen=True)
class Format:
    """One title format of an oops kind."""

    title: re.Pattern[str]
    fmt: str
    report: re.Pattern[str] | None = None
    alt: tuple[str, ...] = ()
    stack: Stack | None = None
    no_stack_trace: bool = False
    corrupted: bool = False
    # Text every match of `title` starts with ("" if none): lets describe()
    # try the title only where the kind's header occurs.
    literal: str = field(default="", compare=False)


def literal_prefix(pattern: re.Pattern[str]) -> str:
    """The literal text that every match of `pattern` starts with ("" if unknown)."""
    if pattern.flags & re.IGNORECASE:
        return ""
    try:
        parsed = _sre_parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # pragma: no cover - an internal API: fall back to search()
        return ""
    chars = []
    for op, arg in parsed:
        if op is not _sre_parser.LITERAL:
            break
        chars.append(chr(arg))
    return "".join(chars)


@dataclass(frozen=True)
class Kind:
    """An oops header (plain substring) with its formats and suppressions."""

    header: str
    formats: tuple[Format, ...]
    suppressions: tuple[re.Pattern[str], ...] = ()
    # Only lines of this console context may start the kind ("xen" or any).
    xen: bool = False
    suppressions_re: re.Pattern[str] | None = field(default=None, compare=False)


# ---------------------------------------------------------------------------
# The table.

P = PARSE_STACK
_RIP_STACK = (RIP_FRAME, CALL_TRACE, P)
_TRACE = (CALL_TRACE, P)


def _rcu_stall_stack(reg_dump: str) -> Stack:
    """An RCU stall's guilty frame: under the timer interrupt (x86, arm64), else the frame
    above the dispatcher in the trace that follows a register dump matching reg_dump."""
    return Stack(
        (rx(r"apic_timer_interrupt"), RIP_FRAME, P),
        parts2=(rx(r"(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"), P),
        skip=("apic_timer_interrupt", "rcu"),
        extractor=stall_frame,
        parts3=(rx(reg_dump + "{FUNC}"), CALL_TRACE, P),
    )


def warning_stack(*skip: str) -> Stack:
    """WARNINGs: the trapping RIP/pc first, else the call trace."""
    first = re.compile(
        "(?:" + RIP_FRAME.pattern + "|--- interrupt: [0-9]+ at " + _MACROS["{FUNC}"] + ")"
    )
    return Stack(parts=(first, P), parts2=_TRACE, skip=skip)


def _f(title: str, fmt: str, **kw: object) -> Format:
    report = kw.pop("report", None)
    assert report is None or isinstance(report, str)
    pattern = rx(title)
    return Format(
        title=pattern,
        fmt=fmt,
        report=rx(report) if report else None,
        literal=literal_prefix(pattern),
        **kw,  # type: ignore[arg-type]
    )


def _kind(
    header: str, formats: list[Format], suppress: tuple[str, ...] = (), xen: bool = False
) -> Kind:
    sup = tuple(rx(s) for s in suppress)
    joined = re.compile("|".join(f"(?:{s.pattern})" for s in sup)) if sup else None
    return Kind(header, tuple(formats), sup, xen, joined)


_KASAN_HDR = r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {FUNC}"
_KFENCE_PART = rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {FUNC}")
_LOCKDEP_AT = rx(r"at: (?:{PC} +)?{FUNC}")

KINDS: tuple[Kind, ...] = (
    _kind(
        "BUG:",
        [
            _f(
                r"BUG: KASAN:",
                "KASAN: {0} {2} in {3}",
                report=r"BUG: KASAN: ([a-z\-]+) in {FUNC}(?:.*\n)+?.*(Read|Write) (?:of size|at "
                r"addr) (?:[0-9a-f]+)",
                alt=("bad-access in {3}",),
                stack=Stack(
                    (rx(r"BUG: KASAN: (?:[a-z\-]+) in {FUNC}"), CALL_TRACE, P),
                    skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"),
                ),
            ),
            _f(
                r"BUG: KASAN:",
                "KASAN: invalid-free in {1}",
                report=_KASAN_HDR,
                alt=("invalid-free in {1}",),
                stack=Stack(
                    (rx(_KASAN_HDR), CALL_TRACE, P), skip=("slab_", "kfree", "vunmap", "vfree")
                ),
            ),
            _f(
                r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
                "KASAN: {0} {1}",
            ),
            _f(r"BUG: KASAN: (.*)", "KASAN: {0}", corrupted=True),
            _f(
                r"BUG: KMSAN: kernel-usb-infoleak",
                "KMSAN: kernel-usb-infoleak in {1}",
                report=r"BUG: KMSAN: kernel-usb-infoleak in {FUNC}",
                alt=("KMSAN origin in {2}",),
                stack=Stack(
                    (P, rx(r"(Local variable .* created at:|Uninit was created at:)"), P),
                    skip=(
                        "alloc_skb",
                        "usb_submit_urb",
                        "usb_start_wait_urb",
                        "usb_bulk_msg",
                        "usb_interrupt_msg",
                        "usb_control_msg",
                    ),
                ),
                no_stack_trace=True,
            ),
            _f(
                r"BUG: KMSAN:",
                "KMSAN: {0} in {2}",
                report=r"BUG: KMSAN: ([a-z\-]+) in {FUNC}",
                alt=("bad-access in {2}",),
                stack=Stack(
                    (P, rx(r"(Local variable .* created at:|Uninit was created at:)"), P),
                    skip=(
                        "alloc_skb",
                        "netlink_ack",
                        "netlink_rcv_skb",
                        "_encrypt$",
                        "^(?:crypto|cipher|drbg|rng)_",
                    ),
                ),
                no_stack_trace=True,
            ),
            _f(
                r"BUG: KCSAN: data-race",
                "KCSAN: {0}",
                report=r"BUG: KCSAN: (.*)",
                no_stack_trace=True,
            ),
            _f(r"BUG: KCSAN:", "KCSAN: {0}", report=r"BUG: KCSAN: (.*)", no_stack_trace=True),
            _f(
                r"BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {FUNC}",
                "KFENCE: {0} {1} in {3}",
                alt=("bad-access in {3}",),
                stack=Stack((_KFENCE_PART, P)),
            ),
            _f(
                r"BUG: KFENCE: invalid free in {FUNC}",
                "KFENCE: invalid free in {1}",
                alt=("invalid-free in {1}",),
                no_stack_trace=True,
                stack=Stack((_KFENCE_PART, P)),
            ),
            _f(
                r"BUG: KFENCE: invalid (read|write) in {FUNC}",
                "KFENCE: invalid {0} in {2}",
                alt=("bad-access in {2}",),
                stack=Stack((_KFENCE_PART, P)),
            ),
            _f(
                r"BUG: KFENCE: memory corruption in {FUNC}",
                "KFENCE: memory corruption in {1}",
                no_stack_trace=True,
                stack=Stack((_KFENCE_PART, P)),
            ),
            _f(
                r"BUG: (?:unable to handle kernel paging request|unable to handle page fault for "
                r"address"
                r"|Unable to handle kernel data access)",
                "BUG: unable to handle kernel paging request in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_RIP_STACK),
            ),
            _f(
                r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer "
                r"dereference"
                r"|Kernel NULL pointer dereference)",
                "BUG: unable to handle kernel NULL pointer dereference in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_RIP_STACK),
            ),
            # The second half of the header is a separate printk and may be lost.
            _f(
                r"BUG: (?:unable to handle kernel|Unable to handle kernel)",
                "BUG: unable to handle kernel",
                corrupted=True,
            ),
            _f(
                r"BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion"
                r"|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
                "BUG: {0} {1} in {2}",
                stack=Stack(_TRACE, skip=("spin_", "_lock", "_unlock")),
            ),
            _f(
                r"BUG: soft lockup",
                "BUG: soft lockup in {0}",
                alt=("stall in {0}",),
                stack=Stack(_RIP_STACK, extractor=stall_frame),
            ),
            _f(
                r"BUG: .*still has locks held!",
                "BUG: still has locks held in {0}",
                report=r"BUG: .*still has locks held!(?:.*\n)+?.*{PC} +{FUNC}",
            ),
            _f(
                r"BUG: scheduling while atomic",
                "BUG: scheduling while atomic in {0}",
                stack=Stack(_TRACE, skip=("schedule",)),
            ),
            _f(
                r"BUG: lock held when returning to user space",
                "BUG: lock held when returning to user space in {0}",
                report=r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the "
                r"kernel with "
                r"locks still held(?:.*\n)+?.*at: (?:{PC} +)?{FUNC}",
                no_stack_trace=True,
            ),
            _f(
                r"BUG: bad unlock balance detected!",
                "BUG: bad unlock balance in {0}",
                stack=Stack((rx(r"{PC} +{FUNC}"), CALL_TRACE, P)),
            ),
            _f(
                r"BUG: held lock freed!",
                "BUG: held lock freed in {0}",
                report=r"BUG: held lock freed!(?:.*\n)+?.*{PC} +{FUNC}",
            ),
            _f(r"BUG: Bad rss-counter state", "BUG: Bad rss-counter state", no_stack_trace=True),
            _f(
                r"BUG: non-zero nr_ptes on freeing mm",
                "BUG: non-zero nr_ptes on freeing mm",
                no_stack_trace=True,
            ),
            _f(
                r"BUG: non-zero nr_pmds on freeing mm",
                "BUG: non-zero nr_pmds on freeing mm",
                no_stack_trace=True,
            ),
            # Linux >= 4.15 counts page-table bytes instead of nr_ptes and nr_pmds.
            _f(
                r"BUG: non-zero pgtables_bytes on freeing mm",
                "BUG: non-zero pgtables_bytes on freeing mm",
                no_stack_trace=True,
            ),
            # Filesystem type and block device vary between runs: keep them out.
            _f(
                r"BUG: Dentry .* still in use",
                "BUG: Dentry still in use in {0}",
                report=r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]",
                alt=("BUG: Dentry still in use [{0} of {1}]",),
            ),
            _f(
                r"BUG: Bad page (state|cache)",
                "BUG: Bad page {0} in {1}",
                stack=Stack(
                    (rx(r"page last allocated"), P),
                    # without page_owner (syzkaller then says "corrupted"): the caller
                    # that freed or allocated the page, as on the kernel's own stack
                    parts2=_TRACE,
                    skip=(
                        "(free|put|get|update|release)_page",
                        "free_unref",
                        "^_*folio",
                        "truncate_inode_pages",
                        "page_frag_free",
                        "alloc",
                        "vmap",
                        "page_owner",
                        "bad_page",
                        "check_new_page",
                    ),
                ),
            ),
            _f(r"BUG: Bad page map", "BUG: Bad page map"),
            _f(r"BUG: workqueue lockup", "BUG: workqueue lockup", no_stack_trace=True),
            _f(
                r"BUG: sleeping function called from invalid context at (.*)",
                "BUG: sleeping function called from invalid context in {1}",
                stack=Stack(_TRACE),
            ),
            _f(
                r"BUG: using ([a-z_]+)\(\) in preemptible",
                "BUG: using {0}() in preemptible code in {1}",
                stack=Stack(
                    _TRACE,
                    skip=(
                        "dump_stack",
                        "preemption",
                        "preempt",
                        "debug_",
                        "processor_id",
                        "this_cpu",
                    ),
                ),
            ),
            _f(
                r"BUG: workqueue leaked lock or atomic",
                "BUG: workqueue leaked lock or atomic in {0}",
                report=r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: "
                r"([a-zA-Z0-9_]+)\n",
                no_stack_trace=True,
            ),
            _f(
                r"BUG: memory leak",
                "memory leak in {0}",
                stack=Stack(
                    (rx(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:"), P),
                    skip=(
                        "kmemleak",
                        "mmap",
                        "kmem",
                        "slab",
                        "alloc",
                        "create_object",
                        "idr_get",
                        "list_lru_init",
                        "kasprintf",
                        "kvasprintf",
                        "pcpu_create",
                        "strdup",
                        "strndup",
                        "memdup",
                    ),
                ),
            ),
            _f(
                r"BUG: .*stack guard page was hit at",
                "BUG: stack guard page was hit in {0}",
                alt=("stack-overflow in {0}",),
                stack=Stack(_RIP_STACK, extractor=stall_frame),
            ),
            # arm/arm64 spelling of what x86 reports as a lockdep WARNING.
            _f(
                r"BUG: Invalid wait context",
                "WARNING: locking bug in {0}",
                stack=Stack(_TRACE, skip=("lock_sock", "release_sock")),
            ),
            _f(r"BUG:\s*(?:\n|$)", "BUG: corrupted", corrupted=True),
        ],
        (
            "ODEBUG:",
            "Boot_DEBUG:",
            "xlog_status:",
            "DEBUG:",
            "BUG: no syscalls can create resource",
        ),
    ),
    _kind(
        "WARNING:",
        [
            _f(
                r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
                "WARNING: ODEBUG bug in {0}",
                stack=warning_stack(
                    "debug_",
                    "rcu",
                    "hrtimer_",
                    "timer_",
                    "work_",
                    "percpu_",
                    "vunmap",
                    "vfree",
                    "__free_",
                    "debug_check",
                    "kobject_",
                ),
            ),
            # DEBUG_LIST's report is a WARN without CONFIG_BUG_ON_DATA_CORRUPTION, a BUG
            # with it (syzbot's configs): the same bug, the same title
            _f(
                r"WARNING: .*lib/list_debug\.c.* (?:__list_|at)",
                "BUG: corrupted list in {0}",
                stack=warning_stack("__list_"),
            ),
            _f(
                r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)",
                "WARNING: bad usercopy in {0}",
                stack=warning_stack("usercopy", "__check"),
            ),
            _f(
                r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)",
                "WARNING: kobject bug in {0}",
                stack=warning_stack("kobject_"),
            ),
            _f(
                r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
                "WARNING: proc registration bug in {0}",
                stack=warning_stack("proc_"),
            ),
            _f(
                r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)",
                "WARNING: refcount bug in {0}",
                stack=warning_stack("refcount", "kobject_"),
            ),
            _f(
                r"WARNING: .*kernel/locking/lockdep\.c.*lock_",
                "WARNING: locking bug in {0}",
                stack=warning_stack("lock_sock", "release_sock"),
            ),
            _f(
                r"WARNING: .*still has locks held!",
                "WARNING: still has locks held in {0}",
                report=r"WARNING: .*still has locks held!(?:.*\n)+?.*at: {FUNC}",
            ),
            _f(
                r"WARNING: Nested lock was not taken",
                "WARNING: nested lock was not taken in {0}",
                stack=warning_stack(),
            ),
            _f(
                r"WARNING: lock held when returning to user space",
                "WARNING: lock held when returning to user space in {0}",
                report=r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the "
                r"kernel with "
                r"locks still held(?:.*\n)+?.*at: (?:{PC} +)?{FUNC}",
                no_stack_trace=True,
            ),
            _f(
                r"WARNING: .*mm/.*\.c.* k?.?malloc",
                "WARNING: kmalloc bug in {0}",
                stack=warning_stack("kmalloc", "krealloc", "slab", "kmem"),
            ),
            _f(
                r"WARNING: .*mm/vmalloc.c.*__vmalloc_node",
                "WARNING: zero-size vmalloc in {0}",
                stack=warning_stack(),
            ),
            _f(
                r"WARNING: .* usb_submit_urb",
                "WARNING in {0}/usb_submit_urb",
                stack=warning_stack(
                    "usb_submit_urb",
                    "usb_start_wait_urb",
                    "usb_bulk_msg",
                    "usb_interrupt_msg",
                    "usb_control_msg",
                ),
            ),
            # "WARNING: file.c:12 at func+0x1/0x2, CPU#1: comm/123" (kernels >= 6.19).
            _f(r"WARNING: {SRC} at 0x\d+, CPU#\d+", "WARNING in {1}", stack=warning_stack()),
            _f(r"WARNING: .* at {SRC} {FUNC}", "WARNING in {2}", stack=warning_stack()),
            _f(r"WARNING: {SRC} at {FUNC}", "WARNING in {2}", stack=warning_stack()),
            _f(r"WARNING: \[.*\] {SRC} at {FUNC}.*", "WARNING in {2}", stack=warning_stack()),
            _f(
                r"WARNING: possible circular locking dependency detected",
                "possible deadlock in {0}",
                report=r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is "
                r"trying to acquire lock",
                stack=Stack(
                    (_LOCKDEP_AT, _LOCKDEP_AT, P),
                    skip=(
                        "process_one_work",
                        "flush_workqueue",
                        "drain_workqueue",
                        "destroy_workqueue",
                    ),
                ),
            ),
            _f(
                r"WARNING: possible irq lock inversion dependency detected",
                "possible deadlock in {0}",
                report=r"WARNING: possible irq lock inversion dependency detected(?:.*\n)+?.*just "
                r"changed the state "
                r"of lock(?:.*\n)+?.*at: (?:{PC} +)?{FUNC}",
            ),
            _f(
                r"WARNING: .*-safe -> .*-unsafe lock order detected",
                "possible deadlock in {0}",
                stack=Stack((rx(r"which became (?:.*) at:"), P)),
            ),
            _f(
                r"WARNING: possible recursive locking detected",
                "possible deadlock in {0}",
                report=r"WARNING: possible recursive locking detected(?:.*\n)+?.*is trying to "
                r"acquire lock"
                r"(?:.*\n)+?.*at: (?:{PC} +)?{FUNC}",
            ),
            _f(
                r"WARNING: inconsistent lock state",
                "inconsistent lock state in {1}",
                report=r"WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:{PC} "
                r"+)?{FUNC}",
                stack=Stack(_TRACE),
            ),
            _f(
                r"WARNING: suspicious RCU usage",
                "WARNING: suspicious RCU usage in {1}",
                report=r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{SRC}",
                stack=Stack(_TRACE, skip=("rcu", "kmem", "slab")),
            ),
            _f(
                r"WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
                "WARNING: kernel stack regs has bad '{0}' value",
                no_stack_trace=True,
            ),
            _f(
                r"WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
                "WARNING: kernel stack frame pointer has bad value",
                no_stack_trace=True,
            ),
            _f(
                r"WARNING: bad unlock balance detected!",
                "WARNING: bad unlock balance in {0}",
                stack=Stack((rx(r"{PC} +{FUNC}"), CALL_TRACE, P)),
            ),
            _f(
                r"WARNING: held lock freed!",
                "WARNING: held lock freed in {0}",
                report=r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {PC})? +{FUNC}",
            ),
            _f(
                r"WARNING: kernel stack regs .* has bad 'bp' value",
                "WARNING: kernel stack regs has bad value",
                no_stack_trace=True,
            ),
            _f(
                r"WARNING: kernel stack frame pointer .* has bad value",
                "WARNING: kernel stack regs has bad value",
                no_stack_trace=True,
            ),
            _f(r"WARNING:\s*(?:\n|$)", "WARNING: corrupted", corrupted=True),
        ],
        (
            r"WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
            r"WARNING: workqueue cpumask: online intersect > possible intersect",
            r"WARNING: [Tt]he mand mount option",
            r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
            r"WARNING: Unprivileged eBPF is enabled with eIBRS",
            r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size",
            r"WARNING: See https.* for mitigation options.",
            r"WARNING: kernel not compiled with CPU_SRSO",
            r"EXT4-[Ff][Ss](?: \(.*\))?:",
            r"(?i:warning: .* uses (deprecated v2 capabilities|wireless extensions))",
            r"XFS \(\w+\): WARNING",
        ),
    ),
    _kind(
        "INFO:",
        [
            _f(
                r"INFO: possible circular locking dependency detected",
                "possible deadlock in {0}",
                report=r"INFO: possible circular locking dependency detected \](?:.*\n)+?.*is "
                r"trying to acquire "
                r"lock(?:.*\n)+?.*at: {PC} +{FUNC}",
            ),
            _f(
                r"INFO: possible irq lock inversion dependency detected",
                "possible deadlock in {0}",
                report=r"INFO: possible irq lock inversion dependency detected \](?:.*\n)+?.*just "
                r"changed the "
                r"state of lock(?:.*\n)+?.*at: {PC} +{FUNC}",
            ),
            _f(
                r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
                "possible deadlock in {0}",
                report=r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \](?:.*\n)"
                r"+?.*is trying to "
                r"acquire(?:.*\n)+?.*at: {PC} +{FUNC}",
            ),
            _f(
                r"INFO: possible recursive locking detected",
                "possible deadlock in {0}",
                report=r"INFO: possible recursive locking detected \](?:.*\n)+?.*is trying to "
                r"acquire "
                r"lock(?:.*\n)+?.*at: {PC} +{FUNC}",
            ),
            _f(
                r"INFO: inconsistent lock state",
                "inconsistent lock state in {0}",
                report=r"INFO: inconsistent lock state \](?:.*\n)+?.*takes(?:.*\n)+?.*at: {PC} "
                r"+{FUNC}",
            ),
            _f(
                r"INFO: rcu_(?:preempt|sched|bh) self-detected(?: expedited)? stall",
                "INFO: rcu detected stall in {0}",
                alt=("stall in {0}",),
                # the CPU reports itself: arm32, and arm64 and x86 (native and Xen PV) on
                # our 6.12 kernels, dump the interrupted registers, then that task's call
                # trace, without an IRQ frame
                stack=_rcu_stall_stack(r"(?:PC is at |pc : |RIP: [0-9a-f]{4}:)"),
            ),
            _f(
                r"INFO: rcu_(?:preempt|sched|bh) detected(?: expedited)? stall",
                "INFO: rcu detected stall in {0}",
                alt=("stall in {0}",),
                stack=_rcu_stall_stack(r"PC is at "),
            ),
            _f(
                r"INFO: trying to register non-static key",
                "INFO: trying to register non-static key in {0}",
                stack=Stack(_TRACE, skip=("stack", "lock", "IRQ")),
            ),
            _f(
                r"INFO: suspicious RCU usage",
                "INFO: suspicious RCU usage in {1}",
                report=r"INFO: suspicious RCU usage(?:.*\n)+?.*?{SRC}",
                stack=Stack(_TRACE, skip=("rcu", "kmem", "slab")),
            ),
            _f(
                r"INFO: task .*(?:\n.*)? blocked (?:in I/O wait )?for more than [0-9]+ seconds",
                "INFO: task hung in {0}",
                alt=("hang in {0}",),
                stack=Stack(_TRACE, extractor=hang_frame),
            ),
            _f(
                r"INFO: task .* can't die for more than .* seconds",
                "INFO: task can't die in {0}",
                alt=("hang in {0}",),
                stack=Stack(_TRACE, skip=("schedule",)),
            ),
            # Captured for corrupted old-style KASAN reports.
            _f(r"INFO: (Freed|Allocated) in (.*)", "INFO: {0} in {1}", corrupted=True),
            _f(r"INFO:\s*(?:\n|$)", "INFO: corrupted", corrupted=True),
        ],
        (
            "INFO: lockdep is turned off",
            "INFO: Stall ended before state dump start",
            "INFO: NMI handler",
            "INFO: recovery required on readonly filesystem",
            "(handler|interrupt).*took too long",
            "INFO: sys_.* is not present in /proc/kallsyms",
            "INFO: no syscalls can create resource",
            "rmt_storage:INFO:",
            "_INFO:",
        ),
    ),
    _kind(
        "Unable to handle kernel",
        [
            _f(
                r"Unable to handle kernel (paging request|NULL pointer dereference|access to user "
                r"memory)",
                "BUG: unable to handle kernel {0} in {1}",
                alt=("bad-access in {1}",),
                stack=Stack(_RIP_STACK, parts2=(RIP_FRAME, ARM_STACK_DUMP, P)),
            )
        ],
    ),
    _kind(
        "general protection fault",
        [
            _f(
                r"general protection fault.*:",
                "general protection fault in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_RIP_STACK),
            )
        ],
        (r"general protection fault .* error:\d+ in ",),
    ),
    _kind(
        "stack segment: ",
        [_f(r"stack segment: ", "stack segment fault in {0}", stack=Stack(_RIP_STACK))],
    ),
    _kind(
        "Kernel panic",
        [
            # The stack may be too corrupted to print a symbol or to unwind.
            _f(
                r"Kernel panic - not syncing: stack-protector:",
                "kernel panic: stack is corrupted in {0}",
                report=r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted "
                r"in: {FUNC}",
                no_stack_trace=True,
            ),
            _f(
                r"Kernel panic - not syncing: stack-protector:",
                "kernel panic: stack is corrupted in {0}",
                report=r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted "
                r"in: [a-f0-9]+",
                stack=Stack(_TRACE, skip=("stack_chk",)),
            ),
            _f(
                r"Kernel panic - not syncing: corrupted stack end",
                "kernel panic: corrupted stack end in {0}",
                report=r"Kernel panic - not syncing: corrupted stack end detected inside scheduler",
                alt=("stack-overflow in {0}",),
                stack=Stack(_TRACE, skip=("schedule", "retint_kernel"), extractor=stall_frame),
            ),
            _f(
                r"Kernel panic - not syncing: kernel stack overflow",
                "kernel stack overflow in {0}",
                alt=("stack-overflow in {0}",),
                stack=Stack(_TRACE, skip=("bad_stack",), extractor=stall_frame),
            ),
            _f(
                r"Kernel panic - not syncing: Attempted to kill init!",
                "kernel panic: Attempted to kill init!",
            ),
            _f(
                r"Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error "
                r"-[0-9]+",
                "kernel panic: Couldn't open N_TTY ldisc",
            ),
            # These follow the real report; seeing them first means it was lost.
            _f(
                r"Kernel panic - not syncing: Fatal exception",
                "kernel panic: Fatal exception",
                corrupted=True,
            ),
            _f(
                r"Kernel panic - not syncing: panic_on_warn set",
                "kernel panic: panic_on_warn set",
                corrupted=True,
            ),
            _f(
                r"Kernel panic - not syncing: hung_task: blocked tasks",
                "kernel panic: hung_task: blocked tasks",
                corrupted=True,
            ),
            _f(r"Kernel panic - not syncing: (.*)", "kernel panic: {0}"),
        ],
    ),
    _kind(
        "PANIC: double fault",
        [_f(r"PANIC: double fault", "PANIC: double fault in {0}", stack=Stack((RIP_FRAME,)))],
    ),
    _kind(
        "rust_kernel: panicked",
        [
            _f(
                r"rust_kernel: panicked",
                "{0} in {1}",
                report=r"rust_kernel: panicked at [^\n]*?\n(.+?)\n",
                stack=Stack(_TRACE, skip=(re.escape("__rustc::rust_begin_unwind"),)),
            )
        ],
    ),
    _kind(
        "kernel BUG",
        [
            _f(
                r"kernel BUG at mm/usercopy.c",
                "BUG: bad usercopy in {0}",
                stack=Stack(_TRACE, skip=("usercopy", "__check")),
            ),
            _f(
                r"kernel BUG at lib/list_debug.c",
                "BUG: corrupted list in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_TRACE),
            ),
            # skb wrappers BUG_ON their arguments: the caller is to blame.
            _f(
                r"kernel BUG at (.*)", "kernel BUG in {1}", stack=Stack(_RIP_STACK, skip=("^skb_",))
            ),
        ],
    ),
    _kind("Kernel BUG", [_f(r"Kernel BUG (.*)", "kernel BUG {0}")]),
    _kind("BUG kmalloc-", [_f(r"BUG kmalloc-.*: Object already free", "BUG: Object already free")]),
    _kind(
        "divide error:", [_f(r"divide error: ", "divide error in {0}", stack=Stack((RIP_FRAME,)))]
    ),
    _kind(
        "divide_error:", [_f(r"divide_error: ", "divide error in {0}", stack=Stack((RIP_FRAME,)))]
    ),
    _kind(
        "invalid opcode:",
        [_f(r"invalid opcode: ", "invalid opcode in {0}", stack=Stack((RIP_FRAME,)))],
    ),
    _kind(
        "UBSAN:",
        [
            _f(
                r"UBSAN:",
                "UBSAN: undefined-behaviour in {0}",
                report=r"UBSAN: Undefined behaviour in",
                stack=Stack(_TRACE, skip=("ubsan", "overflow")),
            ),
            _f(
                r"UBSAN: array-index-out-of-bounds in",
                "UBSAN: array-index-out-of-bounds in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_TRACE, skip=("ubsan", "overflow")),
            ),
            _f(
                r"UBSAN:",
                "UBSAN: {0} in {1}",
                report=r"UBSAN: (.*?) in",
                stack=Stack(_TRACE, skip=("ubsan", "overflow")),
            ),
        ],
    ),
    _kind(
        "Booting the kernel.",
        [_f(r"^Booting the kernel", "unexpected kernel reboot", no_stack_trace=True)],
        (r"Parsing ELF|Decompressing Linux|Unknown parameter '",),
    ),
    _kind(
        "unregister_netdevice: waiting for",
        [
            _f(
                r"unregister_netdevice: waiting for (?:.*) to become free",
                "unregister_netdevice: waiting for DEV to become free",
                no_stack_trace=True,
            )
        ],
    ),
    _kind(
        "VFS: Close: file count is 0",
        [
            _f(
                r"VFS: Close: file count is 0",
                "VFS: Close: file count is zero (use-after-free)",
                no_stack_trace=True,
            )
        ],
    ),
    _kind(
        "VFS: Busy inodes after unmount",
        [
            _f(
                r"VFS: Busy inodes after unmount",
                "VFS: Busy inodes after unmount (use-after-free)",
                no_stack_trace=True,
            )
        ],
    ),
    # arm64 reports e.g. synchronous external aborts only this way.
    _kind(
        "Internal error:",
        [
            _f(
                r"Internal error:",
                "Internal error in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_RIP_STACK),
            )
        ],
    ),
    _kind(
        "Unhandled fault:",
        [
            _f(
                r"Unhandled fault:",
                "Unhandled fault in {0}",
                alt=("bad-access in {0}",),
                stack=Stack(_RIP_STACK),
            )
        ],
    ),
    _kind(
        "Alignment trap:",
        [_f(r"Alignment trap:", "Alignment trap in {0}", stack=Stack(_RIP_STACK))],
    ),
    # Hard lockups are NMI watchdog reports; syzkaller only sees the panic.
    _kind(
        "detected hard LOCKUP",
        [
            _f(
                r"[Ww]atchdog detected hard LOCKUP",
                "BUG: hard lockup in {0}",
                alt=("stall in {0}",),
                stack=Stack(_RIP_STACK, parts2=_TRACE, extractor=stall_frame),
            )
        ],
    ),
    _kind(
        "trusty: panic",
        [
            _f(
                r"trusty: panic.* ASSERT FAILED",
                "trusty: ASSERT FAILED: {0}",
                report=r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)",
                no_stack_trace=True,
            ),
            _f(
                r"trusty: panic.* ASSERT FAILED.*: *(.*)",
                "trusty: ASSERT FAILED: {0}",
                corrupted=True,
            ),
            _f(
                r"trusty: panic",
                "trusty: panic: {0}",
                report=r"trusty: panic \(.*?\): (.+)",
                no_stack_trace=True,
            ),
        ],
    ),
    _kind("SYZFAIL:", [_f(r"SYZFAIL:(.*)", "SYZFAIL:{0}", no_stack_trace=True)]),
    _kind(
        "SYZFATAL:",
        [_f(r"SYZFATAL:(.*)()", "SYZFATAL:{0}", alt=("SYZFATAL{1}",), no_stack_trace=True)],
    ),
    # --- Xen hypervisor, "(XEN) " lines only -------------------------------
    _kind(
        "Xen BUG at",
        [
            _f(
                r"Xen BUG at {SRC}",
                "Xen BUG in {1}",
                stack=Stack((XEN_RIP, XEN_TRACE, P), parts2=(XEN_TRACE, P)),
            )
        ],
        xen=True,
    ),
    _kind(
        "Assertion '",
        [
            _f(
                r"Assertion '.*' failed at {SRC}",
                "Xen assertion failure in {1}",
                stack=Stack((XEN_RIP, XEN_TRACE, P), parts2=(XEN_TRACE, P)),
            )
        ],
        xen=True,
    ),
    _kind(
        "Xen WARN at",
        [
            _f(
                r"Xen WARN at {SRC}",
                "Xen WARN in {1}",
                stack=Stack((XEN_RIP, XEN_TRACE, P), parts2=(XEN_TRACE, P)),
            )
        ],
        xen=True,
    ),
    _kind(
        "----[ Xen-",
        [
            # A fatal trap: registers and trace first, the panic message last.
            _f(
                r"----\[ Xen-[^\n]*\n(?:.*\n)*?Panic on CPU \d+:\n(.+)",
                "Xen panic: {0} in {1}",
                stack=Stack((XEN_RIP, XEN_TRACE, P), parts2=(XEN_TRACE, P)),
            ),
            _f(
                r"----\[ Xen-",
                "Xen crash in {0}",
                stack=Stack((XEN_RIP, XEN_TRACE, P), parts2=(XEN_TRACE, P)),
            ),
        ],
        xen=True,
    ),
    _kind(
        "Panic on CPU",
        [
            _f(
                r"Panic on CPU \d+:",
                "Xen panic: {0}",
                report=r"Panic on CPU \d+:\n(.+)",
                no_stack_trace=True,
            )
        ],
        xen=True,
    ),
    _kind(
        "Dom0 crashed", [_f(r"Dom0 crashed", "Xen: Dom0 crashed", no_stack_trace=True)], xen=True
    ),
    _kind(
        "Domain 0 crashed",
        [_f(r"Domain 0 crashed", "Xen: Dom0 crashed", no_stack_trace=True)],
        xen=True,
    ),
)

# Headers that continue the report in progress instead of starting a new one.
FOLLOW_UPS = re.compile(
    r"invalid opcode: 0000|Kernel panic - not syncing|unregister_netdevice: waiting for"
    r"|PANIC: double fault|Internal error:"
)
# Lines that end a report's description without being reports themselves.
INFO_WITH_STACK = re.compile(
    r"vmalloc: allocation failure:|FAULT_INJECTION: forcing a failure|FAULT_FLAG_ALLOW_RETRY "
    r"missing"
)
# "Hardware Dom0 crashed" is recorded on the preceding Linux report.
DOM0_CRASHED = re.compile(r"Dom0 crashed|Domain 0 crashed")

PANIC_MARK = "Kernel panic - not syncing"

# Substrings searched for in the whole log (one str.find pass each); every
# header contains one, and a line holding a trigger is then checked against
# the full header list.  Fewer, shared triggers mean fewer passes.
TRIGGERS = (
    "BUG",
    "WARN",
    "INFO:",
    "to handle kernel",
    "protection fault",
    "segment: ",
    "anic",
    "PANIC: double",
    "error:",
    "invalid opcode:",
    "UBSAN:",
    "Booting the kernel.",
    "unregister_netdevice: waiting",
    "VFS: ",
    "Unhandled fault:",
    "Alignment trap:",
    "SYZF",
    "Assertion '",
    "----[ Xen-",
    "hard LOCKUP",
    "crashed",
)
