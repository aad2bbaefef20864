"""Commits on a real kernel git tree for tests: harmless mm changes and the seed bug.

The harmless ones compile and touch one object file each, so a build after them stays
incremental; the bug is the pte_lockptr canary patch committed as if it were upstream.
Dates and identity are fixed (gitutil), so every commit hash is reproducible.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitutil import git_env

REPO = Path(__file__).resolve().parents[2]
BUG_PATCH = REPO / "scenarios/pte-lockptr-highpte/patches/pte-lockptr-highpte-6.12.patch"
BUG_SUBJECT = "mm: let pte_lockptr() consume a pte_t pointer"


def comment(repo: Path, rel: str, text: str) -> None:
    """Add a comment block after the SPDX line: compiles, changes one object file."""
    p = repo / rel
    lines = p.read_text().splitlines(keepends=True)
    lines.insert(1, f"/*\n * {text}\n */\n")
    p.write_text("".join(lines))


def append(repo: Path, rel: str, code: str) -> None:
    p = repo / rel
    p.write_text(p.read_text() + code)


def commit(repo: Path, subject: str) -> str:
    """Commit every tracked change; returns the new commit's hash."""
    git_env(repo, "commit", "-q", "-a", "-m", subject)
    return git_env(repo, "rev-parse", "HEAD")


def commit_bug(repo: Path) -> str:
    """Commit the pte_lockptr HIGHPTE bug (the canary's patch) as an upstream change."""
    subprocess.run(
        ["patch", "-p1", "-s", "-d", str(repo)], input=BUG_PATCH.read_text(), text=True, check=True
    )
    return commit(repo, BUG_SUBJECT)
