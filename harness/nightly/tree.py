"""The kernel tree of a nightly: fetch it if it has a remote, pick tonight's ref.

linux-next publishes one tag a day (next-YYYYMMDD) on a history that is rebuilt daily, so
the default ref is the newest such tag; a tree without one (a developer's branch) is tested
at HEAD. A tree without any remote is used as it is: offline nightlies work.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import source
from harness.errors import ConfigError
from harness.nightly.settings import Settings

FETCH_TIMEOUT = 3600


@dataclass
class Fetch:
    """What updating the tree did: the remote fetched, or why nothing was."""

    remote: str  # "" when nothing was fetched
    url: str
    ok: bool
    note: str


@dataclass
class Ref:
    name: str  # what the nightly is called after (tag, or HEAD's describe)
    commit: str
    describe: str
    subject: str
    tags: list[str]


def git_tree(path: Path) -> Path:
    """The tree as an absolute path, or a usage error if it is not a git repository."""
    tree = path.expanduser().resolve()
    if not tree.is_dir() or source.git(tree, "rev-parse", "--git-dir", check=False) == "":
        raise ConfigError(f"--kernel {path}: not a git tree (nightly needs a local git tree)")
    return tree


def remotes(tree: Path) -> dict[str, str]:
    """Remote name -> fetch URL."""
    out = source.git(tree, "remote", "-v", check=False)
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "(fetch)":
            found[parts[0]] = parts[1]
    return found


def pick_remote(found: dict[str, str], settings: Settings) -> str | None:
    """The configured linux-next remote (by URL, then by name), else origin, else any."""
    for name, url in found.items():
        if url.rstrip("/") == settings.remote_url.rstrip("/"):
            return name
    for name in (settings.remote_name, "origin"):
        if name in found:
            return name
    return sorted(found)[0] if found else None


def update(tree: Path, settings: Settings, fetch: bool = True) -> Fetch:
    """`git fetch --tags` from the tree's remote; a failure is reported, not fatal."""
    found = remotes(tree)
    if not fetch:
        return Fetch("", "", True, "fetch disabled (--no-fetch): testing the local refs")
    name = pick_remote(found, settings)
    if name is None:
        return Fetch("", "", True, "the tree has no remote: testing the local refs (offline)")
    try:
        proc = subprocess.run(
            ["git", "-C", str(tree), "fetch", "--tags", "--quiet", name],
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return Fetch(name, found[name], False, f"git fetch {name} timed out")
    if proc.returncode:
        err = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return Fetch(name, found[name], False, f"git fetch {name} failed: {err[0]}")
    return Fetch(name, found[name], True, f"fetched {name} ({found[name]})")


def newest_tag(tree: Path, pattern: str) -> str | None:
    """The tag matching pattern with the greatest first group (the date), else by name."""
    rx = re.compile(pattern)
    best: tuple[str, str] | None = None
    for tag in source.git(tree, "tag", "--list", check=False).splitlines():
        m = rx.match(tag)
        if m:
            key = m.group(1) if m.groups() else tag
            if best is None or (key, tag) > best:
                best = (key, tag)
    return best[1] if best else None


def resolve(tree: Path, ref: str | None, settings: Settings) -> Ref:
    """Tonight's ref: the one asked for, else the newest next- tag, else HEAD."""
    name = ref or newest_tag(tree, settings.ref_pattern) or "HEAD"
    commit = source.git(tree, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
    if not commit:
        raise ConfigError(f"--ref {name}: not a commit in {tree}")
    describe = source.git(tree, "describe", "--tags", "--always", commit, check=False)
    if name == "HEAD":
        name = describe or commit[:12]
    return Ref(
        name=name,
        commit=commit,
        describe=describe,
        subject=source.git(tree, "log", "-1", "--format=%s", commit, check=False),
        tags=source.git(tree, "tag", "--points-at", commit, check=False).split(),
    )


def is_ancestor(tree: Path, older: str, newer: str) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(tree), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
    )
    return proc.returncode == 0
