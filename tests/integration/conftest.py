"""Integration fixtures: the real harness CLI on real kernels, QEMU and git.

Every test here builds or boots for real (CI-sized configs, ccache). Results go to a
temporary folder; kernel sources and builds use the normal cache so tests share them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from gitutil import git_env

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    results: Path | None

    @property
    def meta(self) -> dict:
        assert self.results, self.stderr
        return json.loads((self.results / "metadata.json").read_text())

    @property
    def reports(self) -> list[dict]:
        assert self.results, self.stderr
        return json.loads((self.results / "reports.json").read_text())


@pytest.fixture
def harness(tmp_path):
    """Run `harness ...` as a user would and find its results folder."""

    def run(*args: str, timeout: int = 1800) -> Run:
        root = tmp_path / "results"
        env = {**os.environ, "HARNESS_RESULTS": str(root)}
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        runs = sorted(root.glob("*")) if root.exists() else []
        sys.stderr.write(proc.stderr[-3000:])
        return Run(proc.returncode, proc.stdout, proc.stderr, runs[-1] if runs else None)

    return run


def tree_digest(tree: Path, rel: str) -> bytes:
    return (tree / rel).read_bytes()


@pytest.fixture(scope="session")
def source_612() -> Path:
    from harness import source

    return source.resolve("debian-6.12").tree


@pytest.fixture(scope="session")
def kernel_git_repo(source_612) -> Path:
    """A real git repository made from Debian's 6.12 tarball (one commit, tag v6.12-debian).

    It lives in the harness cache (gitignored) and is reused across sessions: its path
    names the harness worktree and build dir, so a stable path keeps later runs warm.
    Fixed dates make every commit hash reproducible.
    """
    from harness import source

    repo = source.cache_root() / "test-repos" / "linux-6.12"
    if (repo / ".git").exists():
        ok = subprocess.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", "v6.12-debian"],
                            capture_output=True)  # fmt: skip
        if ok.returncode == 0:
            git_env(repo, "checkout", "-q", "-f", "--detach", "v6.12-debian")
            return repo
        shutil.rmtree(repo)
    repo.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(source_612), str(repo)], check=True)
    for junk in repo.glob(".harness-*"):
        junk.unlink()
    # Debian's tarball ignores everything at the top level ("/*" in .gitignore): restore
    # upstream's behaviour so the repository tracks the tree like a real kernel checkout.
    gitignore = repo / ".gitignore"
    text = gitignore.read_text()
    if "# Debian packaging" in text:
        gitignore.write_text(text[: text.index("#\n# Debian packaging")])
    git_env(repo, "init", "-q", "-b", "master")
    git_env(repo, "add", "-A")
    git_env(repo, "commit", "-q", "-m", "Linux 6.12.117 (Debian linux-source-6.12)")
    git_env(repo, "tag", "v6.12-debian")
    return repo
