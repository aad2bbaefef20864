"""The kernel tree of a nightly: fetch it if it has a remote, pick tonight's ref.

linux-next publishes one tag a day (next-YYYYMMDD) on a history that is rebuilt daily, so
the default ref is the newest such tag; a tree without one (a developer's branch) is tested
at HEAD. A tree without any remote is used as it is: offline nightlies work.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from harness import git as gitmod
from harness.errors import ConfigError
from harness.nightly.settings import Settings
from harness.proc import Progress, kill_group, spawn_stderr

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
    if not gitmod.is_repo(tree):
        raise ConfigError(f"--kernel {path}: not a git tree (nightly needs a local git tree)")
    return tree


def remotes(tree: Path) -> dict[str, str]:
    """Remote name -> fetch URL."""
    out = gitmod.run(tree, "remote", "-v", check=False)
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


def update(
    tree: Path,
    settings: Settings,
    fetch: bool = True,
    *,
    remote: str | None = None,
    quiet: bool = True,
) -> Fetch:
    """`git fetch --tags` from a remote (a name, or a URL/path fetched directly), with
    progress; a failure is reported, not fatal (the local tags are then tested)."""
    found = remotes(tree)
    if not fetch:
        return Fetch("", "", True, "fetch disabled (--no-fetch): testing the local refs")
    if remote and remote not in found:
        by_url = [n for n, u in found.items() if u.rstrip("/") == remote.rstrip("/")]
        name, url = (by_url[0], remote) if by_url else (remote, remote)
    else:
        picked = remote or pick_remote(found, settings)
        if picked is None:
            return Fetch("", "", True, "the tree has no remote: testing the local refs (offline)")
        name, url = picked, found[picked]
    if name == url:  # a URL, not a remote: its tags only (it may have no HEAD to fetch)
        cmd = ["git", "-C", str(tree), "fetch", "--progress", "--force", url,
               "+refs/tags/*:refs/tags/*"]  # fmt: skip
    else:
        cmd = ["git", "-C", str(tree), "fetch", "--progress", "--tags", "--force", name]
    what = name if name == url else f"{name} ({url})"
    rc, err = _fetch_with_progress(cmd, f"fetch {name}", quiet)
    if rc is None:
        return Fetch(name, url, False, f"git fetch {what} timed out after {FETCH_TIMEOUT} s")
    if rc:
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
        return Fetch(name, url, False, f"git fetch {what} failed: {first or lines[-1:] or '?'}")
    return Fetch(name, url, True, f"fetched {what}")


def _fetch_with_progress(cmd: list[str], label: str, quiet: bool) -> tuple[int | None, str]:
    """Run git fetch, showing its progress lines (CR-separated) on one status line."""
    progress = Progress(label, quiet)
    proc = spawn_stderr(cmd)
    assert proc.stderr is not None
    t0 = time.monotonic()
    out = b""
    try:
        while True:
            chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else b""
            if not chunk:
                break
            out += chunk
            last = re.split(rb"[\r\n]+", out.rstrip(b"\r\n"))[-1]
            progress.update(last.decode(errors="replace").strip())
            if time.monotonic() - t0 > FETCH_TIMEOUT:
                kill_group(proc.pid)
                proc.wait()
                return None, out.decode(errors="replace")
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
    text = out.decode(errors="replace").replace("\r", "\n")
    progress.done(f"done (exit {rc})")
    return rc, text


def newest_tag(tree: Path, pattern: str) -> str | None:
    """The tag matching pattern with the greatest first group (the date), else by name."""
    rx = re.compile(pattern)
    best: tuple[str, str] | None = None
    for tag in gitmod.run(tree, "tag", "--list", check=False).splitlines():
        m = rx.match(tag)
        if m:
            key = m.group(1) if m.groups() else tag
            if best is None or (key, tag) > best:
                best = (key, tag)
    return best[1] if best else None


def resolve(tree: Path, ref: str | None, settings: Settings) -> Ref:
    """Tonight's ref: the one asked for, else the newest next- tag, else HEAD."""
    name = ref or newest_tag(tree, settings.ref_pattern) or "HEAD"
    commit = gitmod.commit(tree, name)
    if not commit:
        raise ConfigError(f"--ref {name}: not a commit in {tree}")
    describe = gitmod.run(tree, "describe", "--tags", "--always", commit, check=False)
    if name == "HEAD":
        name = describe or commit[:12]
    return Ref(
        name=name,
        commit=commit,
        describe=describe,
        subject=gitmod.subject(tree, commit),
        tags=gitmod.run(tree, "tag", "--points-at", commit, check=False).split(),
    )


def tag_date(tree: Path, ref: Ref, pattern: str) -> str:
    """The date a nightly is about, YYYYMMDD: the tag's own (next-20261130), else the
    commit's. History is ordered by it, not by when the nightly ran: re-testing an older
    tag compares it with the tag before it."""
    m = re.match(pattern, ref.name)
    if m and m.groups() and re.fullmatch(r"\d{8}", m.group(1)):
        return m.group(1)
    for tag in ref.tags:
        m = re.match(pattern, tag)
        if m and m.groups() and re.fullmatch(r"\d{8}", m.group(1)):
            return m.group(1)
    day = gitmod.run(tree, "log", "-1", "--format=%cs", ref.commit, check=False)
    return day.replace("-", "")
