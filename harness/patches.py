"""Inject patches into a kernel tree and take them out again, leaving the tree as it was.

A journal file in the tree records what is applied, so a run killed mid-way is undone by
the next one instead of leaking a canary bug into a clean build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import InfraError, PatchError

log = logging.getLogger(__name__)

JOURNAL = ".harness-applied-patches.json"


def _patch_cmd(tree: Path, patch: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "patch",
            "-p1",
            "--forward",
            "--batch",
            "--no-backup-if-mismatch",
            "-r",
            "-",
            "-d",
            str(tree),
            "-i",
            str(patch),
            *extra,
        ],
        capture_output=True,
        text=True,
    )


def failing_hunks(patch: Path, output: str) -> str:
    """Quote the hunks patch(1) says failed, so the user sees what did not fit."""
    text = patch.read_text(errors="replace")
    files = re.split(r"(?m)^(?=--- )", text)
    out = []
    current_file = None
    for line in output.splitlines():
        m = re.match(r"patching file (\S+)", line) or re.match(r"checking file (\S+)", line)
        if m:
            current_file = m.group(1)
        m = re.match(r"Hunk #(\d+) FAILED", line)
        if m and current_file:
            n = int(m.group(1))
            for chunk in files:
                if re.search(rf"(?m)^\+\+\+ [ab]/{re.escape(current_file)}\b", chunk):
                    hunks = re.split(r"(?m)^(?=@@ )", chunk)[1:]
                    if 0 < n <= len(hunks):
                        out.append(f"{current_file}, hunk #{n}:\n{hunks[n - 1].rstrip()}")
    return "\n\n".join(out)


def _touched_files(patch: Path) -> list[str]:
    return re.findall(r"(?m)^\+\+\+ [ab]/(\S+)", patch.read_text(errors="replace"))


def _digest(tree: Path, files: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for f in files:
        p = tree / f
        out[f] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
    return out


def apply(tree: Path, patch: Path) -> dict[str, str | None]:
    """Apply one patch, all or nothing; returns the digests of the files before it."""
    files = _touched_files(patch)
    before = _digest(tree, files)
    dry = _patch_cmd(tree, patch, "--dry-run")
    if dry.returncode != 0:
        hunks = failing_hunks(patch, dry.stdout)
        raise PatchError(
            f"patch {patch} does not apply to {tree}; the tree is unchanged.\n"
            f"{dry.stdout.strip()}\n" + (f"\nFailing hunks:\n{hunks}" if hunks else "")
        )
    real = _patch_cmd(tree, patch)
    if real.returncode != 0:  # should not happen after a clean dry run; undo what landed
        _patch_cmd(tree, patch, "-R")
        raise PatchError(f"patch {patch} failed after a clean dry run:\n{real.stdout}")
    return before


def revert(tree: Path, patch: Path, before: dict[str, str | None]) -> None:
    """Reverse a patch and prove every touched file is byte-identical to before."""
    proc = _patch_cmd(tree, patch, "-R")
    if proc.returncode != 0:
        raise InfraError(f"could not revert {patch} in {tree}:\n{proc.stdout}")
    after = _digest(tree, list(before))
    changed = [f for f in before if before[f] != after[f]]
    if changed:
        raise InfraError(f"reverting {patch} left {', '.join(changed)} different from before")


def _journal(tree: Path) -> Path:
    return tree / JOURNAL


def recover(tree: Path) -> list[str]:
    """Undo patches a killed run left applied (newest first); returns what was undone."""
    jpath = _journal(tree)
    if not jpath.exists():
        return []
    entries = json.loads(jpath.read_text() or "[]")
    undone = []
    for entry in reversed(entries):
        patch = Path(entry["patch"])
        stash = Path(entry["copy"])
        src = stash if stash.exists() else patch
        log.warning("undoing %s left applied by an interrupted run", patch.name)
        revert(tree, src, entry["before"])
        undone.append(patch.name)
    jpath.unlink()
    return undone


HELD_ENV = "HARNESS_TREE_LOCK_HELD"  # a parent (bisect) holds this tree's lock for us


@contextlib.contextmanager
def tree_lock(tree: Path, *, exclusive: bool) -> Iterator[None]:
    """Runs that only read a tree share it; a run that patches or moves it has it alone.

    Two targets built from one source (arm32-highmem-ci and -lpae-ci, a nightly matrix)
    would otherwise see, or revert, each other's canary patches, or build a worktree
    another run has just moved to another commit.
    """
    if os.environ.get(HELD_ENV) == str(tree):
        yield
        return
    tree.parent.mkdir(parents=True, exist_ok=True)
    with open(tree.parent / f".{tree.name}.harness-lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another run that uses %s", tree)
            fcntl.flock(fh, fcntl.LOCK_EX)
        if tree.exists():
            recover(tree)  # only ever under the exclusive lock
        if not exclusive:
            fcntl.flock(fh, fcntl.LOCK_SH)
        yield


@contextlib.contextmanager
def applied(
    tree: Path,
    patches: list[Path],
    stash_dir: Path,
    checkout: Callable[[], None] | None = None,
) -> Iterator[list[Path]]:
    """Check out (for a shared worktree), apply patches, run the block, revert them all.

    The tree is locked for the whole block (shared when nothing moves or patches it). If a
    patch does not apply, those already applied are reverted before the error propagates.
    """
    with tree_lock(tree, exclusive=bool(patches) or checkout is not None):
        if checkout is not None:
            checkout()
        with _applied(tree, patches, stash_dir):
            yield patches


@contextlib.contextmanager
def _applied(tree: Path, patches: list[Path], stash_dir: Path) -> Iterator[None]:
    stash_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    try:
        for patch in patches:
            copy = stash_dir / patch.name
            copy.write_bytes(patch.read_bytes())  # the journal must outlive the user's file
            before = apply(tree, patch)
            entries.append({"patch": str(patch), "copy": str(copy), "before": before})
            _journal(tree).write_text(json.dumps(entries, indent=1))
        yield
    finally:
        while entries:
            revert(tree, Path(entries[-1]["copy"]), entries[-1]["before"])
            entries.pop()
            _journal(tree).write_text(json.dumps(entries, indent=1))
        _journal(tree).unlink(missing_ok=True)
