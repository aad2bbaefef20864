"""git, the way every stage calls it: errors name the command, refs resolve to commits.

One module, so "is this a repository", "which commit is this ref" and "their merge base"
mean the same thing in source, bisect and the nightly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import InfraError


def run(tree: Path, *args: str, check: bool = True) -> str:
    """git -C tree ARGS; stdout stripped. With check, a failure is an InfraError naming it."""
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise InfraError(f"git -C {tree} {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def is_repo(path: Path) -> bool:
    return path.is_dir() and run(path, "rev-parse", "--git-dir", check=False) != ""


def commit(repo: Path, ref: str) -> str:
    """The commit a ref names, or "" when it names none."""
    return run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)


def exists(repo: Path, sha: str) -> bool:
    """The commit is (still) in the repository: a rebased tag's old commits may be gone."""
    return run(repo, "cat-file", "-t", sha, check=False) == "commit"


def merge_base(repo: Path, a: str, b: str) -> str:
    return run(repo, "merge-base", a, b, check=False)


def subject(repo: Path, sha: str) -> str:
    return run(repo, "log", "-1", "--format=%s", sha, check=False)


def oneline(repo: Path, sha: str) -> str:
    """abcdef123456 ("subject"), as kernel mails cite a commit."""
    return run(repo, "log", "-1", '--format=%h ("%s")', sha)
