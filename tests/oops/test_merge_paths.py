"""One report per bug per run, and source paths relative to the kernel tree."""

from __future__ import annotations

from pathlib import Path

from harness.oops import parse
from harness.oops.cmd import render
from harness.oops.parser import parse_strict
from harness.oops.paths import file_relative, prefixes_for, tree_relative

MIGHT_SLEEP = """\
BUG: sleeping function called from invalid context at ../../../src/debian-6.12/mm/mremap.c:190
in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: {pid}, name: {comm}
preempt_count: 1, expected: 0
CPU: 0 UID: 0 PID: {pid} Comm: {comm} Not tainted 6.12.117 #2
Hardware name: Generic DT based system
Call trace:
 unwind_backtrace from show_stack+0xb/0xc
 show_stack from dump_stack_lvl+0x73/0x7c
 dump_stack_lvl from __might_resched+0x131/0x182
 __might_resched from move_page_tables+0x181/0x450
 move_page_tables from relocate_vma_down+0x95/0xf4
 relocate_vma_down from setup_arg_pages+0x185/0x1b8
 setup_arg_pages from load_elf_binary+0x241/0xbcc
 load_elf_binary from bprm_execve+0x1b3/0x30e
 bprm_execve from do_execveat_common+0xef/0x108
 do_execveat_common from sys_execve+0x1d/0x20
 sys_execve from ret_fast_syscall+0x1/0x16
"""
WARN = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 1 at ../../../src/debian-6.12/mm/mremap.c:205 move_page_tables+0x1/0x2
Modules linked in:
CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.117 #2
Call trace:
 move_page_tables from relocate_vma_down+0x95/0xf4
 relocate_vma_down from setup_arg_pages+0x185/0x1b8
---[ end trace 0000000000000000 ]---
"""


def _log() -> str:
    parts = [MIGHT_SLEEP.format(pid=1, comm="init"), "Run /init as init process\n"]
    parts += [MIGHT_SLEEP.format(pid=30 + i, comm="mount") for i in range(5)]
    parts.append(WARN)
    return "".join(parts)


def test_repeats_are_one_report_with_a_count() -> None:
    text = _log()
    raw = parse_strict(text)
    assert len(raw) == 7
    (sleep, warn) = parse(text)
    assert sleep.title == "BUG: sleeping function called from invalid context in move_page_tables"
    assert sleep.count == 6 and len(sleep.repeats) == 5
    assert sleep.pid == 1 and sleep.start == raw[0].start  # the first occurrence, in full
    assert sleep.repeats == [r.start for r in raw[1:6]]
    assert warn.title == "WARNING in move_page_tables" and warn.count == 1
    assert [r.title for r in parse(text, merge=False)] == [r.title for r in raw]


def test_a_repeat_that_panicked_makes_the_report_panicked() -> None:
    text = _log() + "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
    merged = parse(text)
    assert [r.count for r in merged] == [6, 1]
    assert merged[1].panicked


def test_render_says_how_often() -> None:
    text = _log()
    sleep = parse(text)[0]
    shown = render(sleep, text, 1, 2)
    assert "SEEN: x6 (repeats merged, the first is shown, again at log lines 19," in shown


def test_report_paths_are_relative_to_the_tree() -> None:
    sleep, warn = parse(_log())
    assert "invalid context at mm/mremap.c:190\n" in sleep.text
    assert "PID: 1 at mm/mremap.c:205 move_page_tables" in warn.text
    assert "../" not in sleep.text + warn.text


def test_tree_relative_heuristic_and_prefixes() -> None:
    assert tree_relative("at ../../../src/debian-6.12/mm/mremap.c:175") == "at mm/mremap.c:175"
    assert tree_relative("../../../worktrees/git-linux-1/kernel/fork.c:12") == "kernel/fork.c:12"
    assert tree_relative("../../include/linux/mm.h:3") == "include/linux/mm.h:3"
    # a component that only starts like a top-level directory is not one
    assert tree_relative("../kernel-build/src/mm/x.c") == "mm/x.c"
    # nothing that is not a ../ path is touched
    assert tree_relative("/home/me/kernel/mm/x.c ok") == "/home/me/kernel/mm/x.c ok"
    assert tree_relative("a/../mm/x.c") == "a/../mm/x.c"
    # a known spelling of the tree wins over the heuristic
    pre = ["../../../home/kernel/linux/"]
    assert tree_relative("at ../../../home/kernel/linux/mm/x.c:1", pre) == "at mm/x.c:1"


def test_prefixes_for_a_build_dir(tmp_path: Path) -> None:
    tree = tmp_path / "src" / "debian-6.12"
    build = tmp_path / "build" / "arm32-highmem" / "debian-6.12"
    tree.mkdir(parents=True)
    build.mkdir(parents=True)
    pre = prefixes_for(tree, build)
    assert "../../../src/debian-6.12/" in pre and f"{tree}/" in pre
    assert file_relative(f"{build}/../../../src/debian-6.12/mm/memory.c", pre) == "mm/memory.c"
    assert file_relative("../../../src/debian-6.12/mm/memory.c", pre) == "mm/memory.c"
    assert file_relative(f"{tree}/mm/memory.c", pre) == "mm/memory.c"
