"""Fakes for the nightly's unit tests: attempts with results folders, a runner, a git tree."""

from __future__ import annotations

import json
from pathlib import Path

from gitutil import git_env
from kernel_tree import make_fake_tree

from harness.nightly.model import Attempt, Cell

BUG = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
CANARY_TITLE = BUG


def report(title: str = BUG) -> dict:
    return {
        "title": title,
        "type": "NULL-POINTER-DEREFERENCE",
        "text": f"8<--- cut here ---\nUnable to handle kernel NULL pointer <{title}>\n",
        "comm": "init",
        "pid": 1,
        "cpu": 0,
        "tainted": None,
        "version": "6.12.117",
        "frames": [
            {
                "function": "__pte_offset_map_lock",
                "offset": 0x40,
                "size": 0x100,
                "file": "mm/pgtable-generic.c",
                "line": 377,
                "reliable": True,
                "inlined": [
                    {"function": "spin_lock", "file": "include/linux/spinlock.h", "line": 351}
                ],
            },
            {"function": "handle_mm_fault", "offset": 0x10, "size": 0x200, "reliable": True},
        ],
    }


def attempt(verdict: str, *titles: str, folder: Path | None = None, **kw) -> Attempt:
    """An Attempt; with folder, also a results folder holding the files a run writes."""
    reports = [report(t) for t in titles]
    canary = kw.pop("canary", None)
    summary = kw.pop("summary", f"{verdict}: {titles[0]}" if titles else verdict)
    a = Attempt(verdict, 0, summary, reports=reports, canary=canary, **kw)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("console.log", "build.log", "report.txt"):
            (folder / name).write_text(f"{name} of {folder.name}\n")
        (folder / "metadata.json").write_text(json.dumps({"status": "complete"}))
        (folder / "reports.json").write_text(json.dumps(reports))
        a.results_dir = folder
        a.run_id = folder.name
        a.started = "2026-03-02T01:00:00+00:00"
        a.build_seconds, a.boot_seconds, a.seconds = 12.0, 30.0, 45.0
    return a


def caught(folder: Path | None = None) -> Attempt:
    return attempt(
        "fail", CANARY_TITLE, folder=folder, canary={"caught": True, "title": CANARY_TITLE}
    )


BOOT = Cell("arm32-highmem-ci", "boot")
CANARY = Cell("arm32-highmem-ci", "pte-lockptr-highpte", canary=True)


def make_fake_linux(root: Path) -> Path:
    """A fake kernel git tree with next- tags: 0301 clean, 0302 has the bug, 0303 reverts."""
    r = make_fake_tree(root, ["CONFIG_BASE"])
    git_env(r, "init", "-q", "-b", "master")
    git_env(r, "add", "-A")
    git_env(r, "commit", "-q", "-m", "base")
    git_env(r, "tag", "next-20260301")
    (r / "mm" / "a.c").write_text("int a; /* PTE_LOCKPTR_BUG */\n")
    git_env(r, "commit", "-q", "-am", "mm: let pte_lockptr() consume a pte_t pointer")
    git_env(r, "tag", "next-20260302")
    git_env(r, "revert", "--no-edit", "HEAD")
    git_env(r, "tag", "next-20260303")
    return r


class FakeRunner:
    """Judges the worktree as checked out: the bug marker makes boot fail, canaries get
    caught unless their bug is already in the tree; `script` overrides per cell."""

    def __init__(self, worktree_of, script: dict | None = None) -> None:
        self.worktree_of = worktree_of
        self.script = script or {}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, cell: Cell, root: Path) -> Attempt:
        wt = self.worktree_of()
        head = git_env(wt, "rev-parse", "HEAD")
        self.calls.append((cell.key, head))
        n = sum(1 for k, _ in self.calls if k == cell.key)
        folder = root / f"run-{len(self.calls)}"
        scripted = self.script.get(cell.key)
        if scripted:
            a = scripted(n, folder)
        else:
            buggy = "PTE_LOCKPTR_BUG" in (wt / "mm" / "a.c").read_text()
            if cell.canary and buggy:
                a = attempt(
                    "patch-error",
                    cause="already applied",
                    folder=folder,
                    summary="patch x is already applied in t (its reverse applies); the tree "
                    "is unchanged",
                    details=[],
                )
            elif cell.canary:
                a = caught(folder)
            elif buggy:
                a = attempt("fail", BUG, folder=folder)
            else:
                a = attempt("pass", folder=folder)
        a.commit = head
        return a
