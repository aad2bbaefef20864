"""A linux-next-like history on Debian's real 6.12 sources, for nightly and bisect tests.

Mainline ("Linux 7.5-rc1") moves a little every day; three subsystem branches (mm, arm64,
xen) are rebased onto it and merged into that day's next-YYYYMMDD tag, which also adds
localversion-next, so the kernel calls itself 7.5.0-rc1-next-YYYYMMDD, a version no
canary was ported to. No day's tag is an ancestor of the next day's.

- next-20261201: clean.
- next-20261202: the mm branch carries the pte_lockptr HIGHPTE bug in another form than
  the canary's patch (virt_to_page() instead of virt_to_ptdesc(), at the same lines), so
  the canary no longer applies (stale) while `boot` hits the bug with the canary's title.
- next-20261203: that bug is gone from mm; mm carries a flaky bug instead: a per-boot coin
  makes move_page_tables() BUG one boot in two.

Dates and identity are fixed (gitutil), so the commit hashes are reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gitutil import git_env
from kseries import comment, commit

DAYS = ("20261201", "20261202", "20261203")
BUG_SUBJECT = "mm/pgtable: take the PTE lock from the table's own page"
FLAKY_SUBJECT = "mm/mremap: check the arguments of move_page_tables()"
BUG_TITLE = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
FLAKY_TITLE_RX = r"^kernel BUG (at mm/mremap\.c|in move_page_tables)"


@dataclass
class History:
    repo: Path  # the maintainers' tree: every day's tag and branches
    tags: dict[str, str] = field(default_factory=dict)  # next-YYYYMMDD -> commit
    bug: str = ""  # the commit that brought the pte_lockptr bug (next-20261202)
    flaky: str = ""  # the commit that brought the flaky bug (next-20261203)
    mainline: dict[str, str] = field(default_factory=dict)  # day -> mainline head


def _bump_version(repo: Path) -> None:
    mk = repo / "Makefile"
    text = mk.read_text()
    text = re.sub(r"(?m)^VERSION = \d+$", "VERSION = 7", text, count=1)
    text = re.sub(r"(?m)^PATCHLEVEL = \d+$", "PATCHLEVEL = 5", text, count=1)
    text = re.sub(r"(?m)^SUBLEVEL = \d+$", "SUBLEVEL = 0", text, count=1)
    text = re.sub(r"(?m)^EXTRAVERSION =.*$", "EXTRAVERSION = -rc1", text, count=1)
    mk.write_text(text)


def _bug_in_another_form(repo: Path) -> None:
    """The seed bug, written differently from the canary's patch: same lines, same oops."""
    p = repo / "mm/pgtable-generic.c"
    text = p.read_text()
    text = text.replace(
        "\tif (likely(pte))\n\t\t*ptlp = pte_lockptr(mm, &pmdval);\n",
        "\tif (likely(pte))\n\t\t*ptlp = ptlock_ptr(page_ptdesc(virt_to_page(pte)));\n",
        1,
    )
    text = text.replace(
        "\tptl = pte_lockptr(mm, &pmdval);\n\tspin_lock(ptl);\n",
        "\t/* the table's own page holds its lock */\n"
        "\tptl = ptlock_ptr(page_ptdesc(virt_to_page(pte)));\n\tspin_lock(ptl);\n",
        1,
    )
    assert "virt_to_page(pte)" in text
    p.write_text(text)


def _flaky_bug(repo: Path) -> None:
    """move_page_tables() BUGs in one boot of two: a coin tossed once per boot."""
    p = repo / "mm/mremap.c"
    text = p.read_text()
    text = text.replace(
        '#include "internal.h"\n', '#include <linux/random.h>\n\n#include "internal.h"\n', 1
    )
    head = (
        "unsigned long move_page_tables(struct vm_area_struct *vma,\n"
        "\t\tunsigned long old_addr, struct vm_area_struct *new_vma,\n"
        "\t\tunsigned long new_addr, unsigned long len,\n"
        "\t\tbool need_rmap_locks, bool for_stack)\n{\n"
    )
    assert head in text
    coin = "static int move_page_tables_coin = -1;\n\n"
    check = (
        "\tif (move_page_tables_coin < 0)\n"
        "\t\tmove_page_tables_coin = get_random_u32() & 1;\n"
        "\tBUG_ON(move_page_tables_coin);\n"
    )
    body = text.split(head, 1)
    # the first statement after the declarations
    decls, rest = body[1].split("\n\n", 1)
    text = body[0] + coin + head + decls + "\n\n" + check + "\n" + rest
    p.write_text(text)


def build(base_repo: Path, work: Path) -> History:
    """Make the maintainers' tree in `work` (a clone of base_repo at v6.12-debian)."""
    git_env(work.parent, "clone", "-q", "--shared", "--no-checkout", str(base_repo), str(work))
    git_env(work, "checkout", "-q", "-B", "master", "v6.12-debian")
    h = History(work)
    _bump_version(work)
    main = commit(work, "Linux 7.5-rc1")
    for n, day in enumerate(DAYS, 1):
        git_env(work, "checkout", "-q", "-B", "master", main)
        comment(work, "mm/mmap.c", f"mainline, day {n}: the mmap_lock rules are unchanged.")
        main = h.mainline[day] = commit(work, f"mm/mmap: comment for day {n}")
        branches = {}
        # mm: rebased every day onto the new mainline
        git_env(work, "checkout", "-q", "-B", f"mm-{day}", main)
        comment(work, "mm/memory.c", "handle_mm_fault() may drop mmap_lock (VM_FAULT_RETRY).")
        commit(work, "mm/memory: note when handle_mm_fault() drops mmap_lock")
        if day == DAYS[1]:
            _bug_in_another_form(work)
            h.bug = commit(work, BUG_SUBJECT)
        if day == DAYS[2]:
            _flaky_bug(work)
            h.flaky = commit(work, FLAKY_SUBJECT)
        branches["mm"] = git_env(work, "rev-parse", "HEAD")
        # arm64 and xen: code an arm32 build never compiles
        git_env(work, "checkout", "-q", "-B", f"arm64-{day}", main)
        comment(work, "arch/arm64/mm/mmu.c", "split_kernel_leaf_mapping() may sleep.")
        branches["arm64"] = commit(work, "arm64/mm: note that splitting may sleep")
        git_env(work, "checkout", "-q", "-B", f"xen-{day}", main)
        comment(work, "arch/x86/xen/mmu_pv.c", "lazy MMU sections may nest.")
        branches["xen"] = commit(work, "x86/xen: note that lazy MMU sections nest")
        git_env(work, "checkout", "-q", "-B", f"next-{day}-build", main)
        for name, head in branches.items():
            git_env(work, "merge", "-q", "--no-ff", "-m", f"Merge branch '{name}'", head)
        (work / "localversion-next").write_text(f"-next-{day}\n")
        git_env(work, "add", "localversion-next")
        tag_commit = commit(work, f"Add linux-next specific files for {day}")
        git_env(work, "tag", "-f", f"next-{day}", tag_commit)
        h.tags[f"next-{day}"] = tag_commit
    return h
