"""The oops corpus: report kinds x targets, and the title each cell must get.

tests/oops/corpus/oops-inject-6.12.patch arms one kind per boot (`oops_inject=KIND`);
tests/oops/corpus/regen.py boots every kind on every target and keeps the consoles in
tests/golden/oops/corpus/TARGET/KIND.txt; tests/oops/test_corpus.py checks them.

A title follows syzkaller's rules; where a kernel reports the same bug differently (a
list corruption without CONFIG_DEBUG_LIST is the crash it causes), the cell says so.
A cell without a console has a reason instead (missing()). A target's consoles are
checked once it is marked `recorded` (regen.py has run for it): until then its cells
are "(not generated)" in the table, and it has no folder under the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oops_golden import first_report_lines

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "oops" / "corpus"
PATCH = CORPUS / "oops-inject-6.12.patch"
HARNESS_PATH = CORPUS / "harness"  # the oops-kinds scenario and the -debug targets
SCENARIO = "oops-kinds"
GOLDEN = REPO / "tests" / "golden" / "oops" / "corpus"

SITE = "move_page_tables"  # move_ptes() is inlined into it on every target


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    cmdline: str = ""  # besides oops_inject=NAME
    what: str = ""
    # what the kernel needs to report the kind at all: CONFIG_ options, or "xen"
    needs: tuple[str, ...] = ()
    # kernels without this option report the bug as the crash it causes instead:
    # (option, {arch: title})
    otherwise: tuple[str, dict[str, str]] | None = None
    debug: bool = False  # booted on the -debug twins (a test-only fragment has its needs)

    @property
    def boot_args(self) -> str:
        return f"oops_inject={self.name} {self.cmdline}".strip()


KINDS: tuple[Kind, ...] = (
    Kind(
        "null-deref",
        f"BUG: unable to handle kernel NULL pointer dereference in {SITE}",
        what="a load through NULL under the PTE lock",
    ),
    Kind(
        "paging-fault",
        f"BUG: unable to handle kernel paging request in {SITE}",
        what="a load from a vmalloc area's guard page",
    ),
    Kind("bug-on", f"kernel BUG in {SITE}", what="BUG_ON()"),
    Kind("warn-on", f"WARNING in {SITE}", what="WARN_ON_ONCE()"),
    Kind(
        "might-sleep",
        f"BUG: sleeping function called from invalid context in {SITE}",
        needs=("CONFIG_DEBUG_ATOMIC_SLEEP",),
        what="might_sleep() under the PTE lock, at every exec",
    ),
    Kind(
        "sched-atomic",
        f"BUG: scheduling while atomic in {SITE}",
        what="schedule() under the PTE lock",
    ),
    Kind(
        "lockdep-recursive",
        f"possible deadlock in {SITE}",
        needs=("CONFIG_PROVE_LOCKING",),
        what="the second PTE lock taken without spin_lock_nested()",
    ),
    Kind(
        "lockdep-circular",
        f"possible deadlock in {SITE}",
        needs=("CONFIG_PROVE_LOCKING", "CONFIG_SPLIT_PTE_PTLOCKS"),
        what="page_table_lock -> PTE lock, then PTE lock -> page_table_lock",
    ),
    Kind(
        "lockdep-inconsistent",
        f"inconsistent lock state in {SITE}",
        needs=("CONFIG_PROVE_LOCKING",),
        what="a lock taken in softirq at boot, then with softirqs on",
    ),
    Kind(
        "bad-rss",
        "BUG: Bad rss-counter state",
        what="zap_present_ptes() counts one anon page too many",
    ),
    Kind(
        "bad-page-state",
        f"BUG: Bad page state in {SITE}",
        # the page checks at free run with DEBUG_VM or init_on_free/alloc only
        cmdline="init_on_free=1",
        what="a page freed while still mapped (mapcount 1)",
    ),
    Kind(
        "bad-page-map",
        "BUG: Bad page map",
        what="zap_present_ptes() reads a PTE with a pfn past the memmap",
    ),
    Kind(
        "pgtables-bytes",
        "BUG: non-zero pgtables_bytes on freeing mm",
        what="free_pte_range() forgets mm_dec_nr_ptes()",
    ),
    Kind(
        "list-corruption",
        f"BUG: corrupted list in {SITE}",
        what="list_del() of an entry already deleted",
        # without CONFIG_DEBUG_LIST the kernel reports the write through LIST_POISON
        otherwise=(
            "CONFIG_DEBUG_LIST",
            {
                "x86_64": f"general protection fault in {SITE}",
                "arm64": f"BUG: unable to handle kernel paging request in {SITE}",
                "arm": f"BUG: unable to handle kernel NULL pointer dereference in {SITE}",
            },
        ),
        debug=True,
    ),
    Kind(
        "rcu-stall",
        "INFO: rcu detected stall in sys_execve",
        cmdline="rcupdate.rcu_cpu_stall_timeout=3",
        what="10 s with preemption off in the first exec after init",
    ),
    Kind(
        "soft-lockup",
        "BUG: soft lockup in sys_execve",
        cmdline="watchdog_thresh=2",
        what="12 s with preemption off in the first exec after init",
        needs=("CONFIG_SOFTLOCKUP_DETECTOR",),
        debug=True,
    ),
    Kind(
        "hung-task",
        f"INFO: task hung in {SITE}",
        cmdline="sysctl.kernel.hung_task_timeout_secs=5",
        what="20 s in D state with the mmap lock held, first exec after init",
        needs=("CONFIG_DETECT_HUNG_TASK",),
        debug=True,
    ),
    Kind(
        "kasan-uaf",
        f"KASAN: slab-use-after-free Read in {SITE}",
        what="a read of a freed kmalloc object",
        needs=("CONFIG_KASAN",),
        debug=True,
    ),
    Kind(
        "kfence-uaf",
        f"KFENCE: use-after-free read in {SITE}",
        cmdline="kfence.sample_interval=1",
        what="a read of a freed KFENCE object",
        needs=("CONFIG_KFENCE",),
        debug=True,
    ),
    Kind(
        "xen-mmu",
        "WARNING in xen_mc_flush",
        what="a batched mmu_update Xen refuses (a page table mapped writable)",
        needs=("xen",),
    ),
)
BY_NAME = {k.name: k for k in KINDS}


# What each target's .config has of what the kinds need (regen.py checks it against the
# build; `xen`: booted as a Xen PV dom0).
_PLAIN_ARM = ("CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_ATOMIC_SLEEP", "CONFIG_SPLIT_PTE_PTLOCKS")
_DEBUG = ("CONFIG_DEBUG_LIST", "CONFIG_SOFTLOCKUP_DETECTOR", "CONFIG_DETECT_HUNG_TASK",
          "CONFIG_KASAN", "CONFIG_KFENCE")  # fmt: skip
OPTIONS = (*_PLAIN_ARM, *_DEBUG)


@dataclass(frozen=True)
class Target:
    name: str
    arch: str
    options: tuple[str, ...]
    twin_of: str = ""  # a test-only -debug twin boots only the debug kinds
    # its consoles are in the corpus (regen.py --targets NAME has run; set it then)
    recorded: bool = False
    # why it boots no console at all ("" when it does): every cell says so
    unbootable: str = ""

    @property
    def xen(self) -> bool:
        return "xen-pv" in self.name


TARGETS: tuple[Target, ...] = (
    Target("arm32-highmem", "arm", (*_PLAIN_ARM, "CONFIG_SOFTLOCKUP_DETECTOR"), recorded=True),
    Target("arm32-highmem-ci", "arm", _PLAIN_ARM, recorded=True),
    Target("arm32-highmem-lpae", "arm", (*_PLAIN_ARM, "CONFIG_SOFTLOCKUP_DETECTOR"), recorded=True),
    Target("arm32-highmem-lpae-ci", "arm", _PLAIN_ARM, recorded=True),
    Target("arm64-bbml2", "arm64", _PLAIN_ARM, recorded=True),
    Target("arm64-bbml2-ci", "arm64", _PLAIN_ARM, recorded=True),
    Target("x86-xen-pv", "x86_64", _PLAIN_ARM, recorded=True),
    Target("x86-xen-pv-ci", "x86_64", _PLAIN_ARM, recorded=True),
    Target("x86-64", "x86_64", _PLAIN_ARM, recorded=True),
    Target("x86-64-ci", "x86_64", _PLAIN_ARM, recorded=True),
    Target("arm32-highmem-ci-debug", "arm", OPTIONS, "arm32-highmem-ci", recorded=True),
    Target("arm64-bbml2-ci-debug", "arm64", OPTIONS, "arm64-bbml2-ci", recorded=True),
    Target(
        "x86-xen-pv-ci-debug",
        "x86_64",
        OPTIONS,
        "x86-xen-pv-ci",
        recorded=True,
        unbootable="the KASAN kernel dies as a PV dom0 before its first line (Xen 4.17: "
        "domain_crash_sync in create_bounce_frame); x86-64-ci-debug boots it without Xen",
    ),
    Target("x86-64-ci-debug", "x86_64", OPTIONS, "x86-64-ci", recorded=True),
)
TARGET_BY_NAME = {t.name: t for t in TARGETS}


def missing(target: Target, kind: Kind) -> str:
    """Why the cell has no console ("" when it has one)."""
    if target.twin_of and not kind.debug:
        return f"same kernel as {target.twin_of} there, without the debug options"
    if target.unbootable:
        return target.unbootable
    lacks = [n for n in kind.needs if n != "xen" and n not in target.options]
    if lacks:
        why = f"needs {', '.join(lacks)}"
        twin = TARGET_BY_NAME.get(f"{target.name}-debug")
        if kind.debug and twin:
            why += f" (in {twin.name})" if not twin.unbootable else f" ({twin.name}: no boot)"
        return why
    if "xen" in kind.needs and not target.xen:
        return "Xen PV dom0 only"
    return ""


def expected_title(target: Target, kind: Kind) -> str:
    if kind.otherwise and kind.otherwise[0] not in target.options:
        return kind.otherwise[1][target.arch]
    return kind.title


def cells() -> list[tuple[Target, Kind]]:
    """Every (target, kind) that has a console in the corpus."""
    return [(t, k) for t in TARGETS if t.recorded for k in KINDS if not missing(t, k)]


def golden_path(target: str, kind: str) -> Path:
    return GOLDEN / target / f"{kind}.txt"


def header(reports: list) -> list[str]:
    """A corpus golden's header: the first report, then the others' titles (repeats
    merged: COUNT is how often the first one's title came, xN the others')."""
    if not reports:
        return ["TITLE: "]
    first = reports[0]
    out = first_report_lines(first, alts=False)
    if first.count > 1:
        out.append(f"COUNT: {first.count}")
    for rep in reports[1:]:
        out.append(f"NEXT: {rep.title}" + (f" x{rep.count}" if rep.count > 1 else ""))
    return out
