"""Kernel sources: Debian's linux-source tarballs or a user's git tree (in a worktree we own).

The user's checkout and index are never touched: a git source is checked out in a
worktree under the cache, and moved between refs there so its build dir stays warm.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import debian, patches
from harness import git as gitmod
from harness.config import Reader, did_you_mean, load_yaml, search_dirs
from harness.errors import ConfigError, InfraError
from harness.fsutil import check_name, exclusive_lock, make_owned_dir, remove_owned
from harness.proc import Progress, eta
from harness.state import ROOT, cache_root

log = logging.getLogger(__name__)

DEFAULT_KERNEL = "debian-6.12"
IN_PLACE = "inplace:"  # --kernel inplace:PATH builds a git tree as it is (bisect steps)
SPECS_DIR = ROOT / "kernels"


def spec_dirs() -> list[Path]:
    """kernels/ in every search root ($HARNESS_PATH, then the harness's own)."""
    return search_dirs("kernels")


def known_specs() -> list[str]:
    return sorted({p.stem for d in spec_dirs() for p in d.glob("*.yaml")})


__all__ = ["cache_root"]  # re-exported: callers find the cache through source


@dataclass(frozen=True)
class KernelSource:
    """A kernel tree ready to patch and build."""

    name: str  # stable id used for build directories
    tree: Path
    version: tuple[int, int, int]
    kind: str  # "debian" or "git"
    description: str
    origin: str  # the --kernel value as given
    commit: str | None = None
    subject: str | None = None
    # moves a shared worktree to `commit`; run under the tree's exclusive lock (patches.py)
    checkout: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    release: str = ""  # the kernel's own name for itself: 7.5.0-rc1-next-20261130-dirty

    @property
    def version_str(self) -> str:
        return self.release or ".".join(str(v) for v in self.version)


def parse_version(makefile_text: str, where: str) -> tuple[int, int, int]:
    """VERSION.PATCHLEVEL.SUBLEVEL from the text of a kernel's top Makefile."""
    head = makefile_text[:2000]
    vals = []
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{key}\s*=\s*(\d+)", head, re.M)
        if not m:
            raise ConfigError(f"{where}: no {key} line: not a kernel tree")
        vals.append(int(m.group(1)))
    return (vals[0], vals[1], vals[2])


def parse_release(makefile_text: str, where: str, localversions: Sequence[str] = ()) -> str:
    """KERNELRELEASE as the kernel computes it, without a .config: VERSION.PATCHLEVEL.
    SUBLEVEL, EXTRAVERSION (-rc1), then the localversion* files (linux-next ships
    localversion-next, "-next-20261130"), in name order."""
    v = parse_version(makefile_text, where)
    m = re.search(r"^EXTRAVERSION\s*=[ \t]*(\S*)", makefile_text[:2000], re.M)
    extra = m.group(1) if m else ""
    return f"{v[0]}.{v[1]}.{v[2]}{extra}" + "".join(x.strip() for x in localversions)


def read_release(tree: Path) -> str:
    """The release string of a checked-out tree (git trees with changes end in -dirty)."""
    mk = tree / "Makefile"
    text = mk.read_text(errors="replace")
    local = [p.read_text(errors="replace") for p in sorted(tree.glob("localversion*"))]
    release = parse_release(text, str(mk), local)
    if (tree / ".git").exists() and git(
        tree, "status", "--porcelain", "--untracked-files=no", check=False
    ):
        release += "-dirty"
    return release


def read_version(tree: Path) -> tuple[int, int, int]:
    """The version of a checked-out tree."""
    mk = tree / "Makefile"
    try:
        text = mk.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"{tree}: not a kernel tree (no readable Makefile)") from e
    return parse_version(text, str(mk))


def resolve(spec: str | None, cache: Path | None = None) -> KernelSource:
    """Turn a --kernel value into a prepared KernelSource.

    Accepted: a spec name from kernels/*.yaml (debian-6.12, debian-7.3), or PATH[@REF] of a
    git tree.
    """
    spec = spec or DEFAULT_KERNEL
    cache = cache or cache_root()
    if spec.startswith(IN_PLACE):
        return in_place(Path(spec[len(IN_PLACE) :]), cache)
    path_part, _, ref = spec.partition("@")
    if "/" not in path_part and "@" not in spec and not path_part.startswith("~"):
        file = f"{check_name('kernel', spec)}.yaml"
        spec_file = next((d / file for d in spec_dirs() if (d / file).exists()), None)
        if spec_file is not None:
            return _debian_source(spec, spec_file, cache)
    path = Path(path_part).expanduser()
    if path.exists():
        return _git_source(path.resolve(), ref or None, cache, spec)
    known = ", ".join(known_specs())
    hint = did_you_mean(spec, known_specs())
    raise ConfigError(
        f"--kernel {spec!r}: neither a known source ({known}) nor an existing path{hint}"
    )


def _debian_source(name: str, spec_file: Path, cache: Path) -> KernelSource:
    r = Reader(load_yaml(spec_file), spec_file)
    package = r.get("package", str, required=True)
    suites = r.str_list("suites")
    local = r.get("local_tarball", str, "")
    description = r.get("description", str, "")
    r.finish()
    tree = cache / "src" / name
    stamp = tree / ".harness-source"

    def tarball() -> Path:
        if local and Path(local).exists():
            return Path(local)
        deb = debian.download_deb(package, suites=suites, arch="amd64", cache=cache / "downloads")
        return _tarball_from_deb(deb, cache / "downloads")

    if not stamp.exists() or not patches.has_manifest(tree):
        # two runs on a fresh cache would extract into the same .partial folder
        tree.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(tree.with_name(f".{name}.lock"), f"extracts {tree}"):
            if not stamp.exists():
                tb = tarball()
                _extract_tarball(tb, tree, cache)
                patches.record_pristine(tree)
                stamp.write_text(f"{tb}\n")
            elif not patches.has_manifest(tree):
                _verify_old_tree(tree, tarball(), cache)
    version = read_version(tree)
    return KernelSource(
        name=name,
        tree=tree,
        version=version,
        release=read_release(tree),
        kind="debian",
        description=description or f"Debian {package}",
        origin=name,
    )


def _tarball_from_deb(deb: Path, downloads: Path) -> Path:
    """Pull usr/src/linux-source-*.tar.xz out of the .deb without unpacking the rest."""
    out = downloads / (deb.stem + ".tar.xz")
    if out.exists():
        return out
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True)
    member = None
    for line in listing.stdout.splitlines():
        m = re.search(r"(\./usr/src/linux-source-[^ ]+\.tar\.xz)$", line)
        if m:
            member = m.group(1)
    if not member:
        raise InfraError(f"{deb}: no usr/src/linux-source-*.tar.xz inside")
    tmp = out.with_suffix(".partial")
    with open(tmp, "wb") as fh:
        fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        tar = subprocess.run(["tar", "-xO", "-f", "-", member], stdin=fsys.stdout, stdout=fh)
        fsys.wait()
    if tar.returncode or fsys.returncode:
        tmp.unlink(missing_ok=True)
        raise InfraError(f"could not extract {member} from {deb}")
    tmp.rename(out)
    return out


def _extract_tarball(tarball: Path, tree: Path, cache: Path) -> None:
    log.info("extracting %s into %s (once)", tarball, tree)
    partial = tree.with_name(tree.name + ".partial")
    remove_owned(partial, cache)
    make_owned_dir(partial)
    rc, err = _untar_with_progress(tarball, partial)
    if rc:
        remove_owned(partial, cache)
        raise InfraError(f"tar -xf {tarball} failed: {err.strip()[-500:]}")
    remove_owned(tree, cache)
    partial.rename(tree)


def _untar_with_progress(tarball: Path, dest: Path) -> tuple[int, str]:
    """tar -x fed through us, so the progress line can say how much of the file is read."""
    flag = {".xz": "-J", ".gz": "-z", ".bz2": "-j", ".zst": "--zstd"}.get(tarball.suffix, "")
    cmd = ["tar", "-x", *([flag] if flag else []), "-C", str(dest), "--strip-components=1"]
    progress = Progress(f"extract {tarball.name}")
    total = tarball.stat().st_size
    t0 = time.monotonic()
    with open(tarball, "rb") as src, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        assert proc.stdin is not None
        done = 0
        try:
            while chunk := src.read(1 << 20):
                proc.stdin.write(chunk)
                done += len(chunk)
                progress.update(eta(done, total, time.monotonic() - t0))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        finally:
            rc = proc.wait()
        err.seek(0)
        text = err.read().decode(errors="replace")
    progress.done(f"{total >> 20} MiB in {time.monotonic() - t0:.0f}s")
    return rc, text


def _verify_old_tree(tree: Path, tarball: Path, cache: Path) -> None:
    """A tree extracted before the harness kept checksums: compare it in full, once.

    An older harness could leave a killed run's patch in the tree with no record; this
    finds and undoes that before the tree is trusted again.
    """
    log.info("checking %s against %s once (no checksums recorded yet)", tree, tarball)
    fresh = tree.with_name(tree.name + ".verify")
    try:
        _extract_tarball(tarball, fresh, cache)
        fixed = patches.verify_against(tree, fresh)
        if fixed:
            log.warning("%s had %d files changed from the tarball: restored", tree, len(fixed))
        patches.record_pristine(tree, source=fresh)
    finally:
        remove_owned(fresh, cache)


git = gitmod.run  # the name callers knew


def _git_source(path: Path, ref: str | None, cache: Path, origin: str) -> KernelSource:
    if not gitmod.is_repo(path):
        raise ConfigError(
            f"--kernel {path}: not a git tree (a local tree must be a git repository)"
        )
    commit = gitmod.commit(path, ref or "HEAD")
    if not commit:
        raise ConfigError(f"--kernel {origin}: {ref or 'HEAD'!r} is not a commit in {path}")
    wt = harness_worktree(path, cache)
    name = wt.name
    description = f"git tree {path} at {ref or 'HEAD'}"
    if ref is None:
        changed = git(path, "status", "--porcelain", "--untracked-files=no", check=False)
        if changed:
            n = len(changed.splitlines())
            description += f" (without its {n} uncommitted change{'s' if n > 1 else ''})"
            log.warning(
                "%s has uncommitted changes to %d file(s): the harness builds its HEAD "
                "(%s) in a worktree of its own, without them; commit them, or pass them "
                "as a patch (git -C %s diff HEAD > my.patch; --patch my.patch)",
                path, n, commit[:12], path,
            )  # fmt: skip
    return KernelSource(
        name=name,
        tree=wt,
        version=_version_at(path, commit),
        release=_release_at(path, commit),
        kind="git",
        description=description,
        origin=origin,
        commit=commit,
        subject=gitmod.subject(path, commit),
        checkout=lambda: checkout_worktree(path, wt, commit),
    )


def _release_at(repo: Path, commit: str) -> str:
    """The release string of a commit, read from git (the worktree may be busy)."""
    text = git(repo, "show", f"{commit}:Makefile")
    names = git(repo, "ls-tree", "--name-only", commit, check=False).split()
    local = [
        git(repo, "show", f"{commit}:{n}") for n in sorted(names) if n.startswith("localversion")
    ]
    return parse_release(text, f"{repo}@{commit[:12]}:Makefile", local)


def _version_at(repo: Path, commit: str) -> tuple[int, int, int]:
    """The kernel version of a commit without checking it out (the worktree may be busy)."""
    text = git(repo, "show", f"{commit}:Makefile")
    return parse_version(text, f"{repo}@{commit[:12]}:Makefile")


def _git_kernel(name: str, tree: Path, commit: str, origin: str, description: str) -> KernelSource:
    return KernelSource(
        name=name,
        tree=tree,
        version=read_version(tree),
        release=read_release(tree),
        kind="git",
        description=description,
        origin=origin,
        commit=commit,
        subject=gitmod.subject(tree, commit),
    )


def worktree_name(repo: Path, cache: Path | None = None) -> str:
    """The harness worktree (and build dir) name for a user's repository.

    A repository inside the cache is named by its path there, not its absolute path:
    ccache (base dir /) then sees the same relative paths from every checkout of the
    harness, so another checkout's builds of that repository are cache hits.
    """
    cache = (cache or cache_root()).resolve()
    try:
        key = f"cache/{repo.resolve().relative_to(cache)}"
    except ValueError:
        key = str(repo)
    return f"git-{repo.name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def harness_worktree(repo: Path, cache: Path | None = None) -> Path:
    """The harness's own worktree of a user's repository (bisect, nightly, series)."""
    cache = cache or cache_root()
    return cache / "worktrees" / worktree_name(repo, cache)


def in_place(path: Path, cache: Path) -> KernelSource:
    """A git tree built as it stands, for `git bisect run` driving its HEAD.

    The harness's own worktree keeps its name, so bisect steps share the build dir
    that `harness run --kernel REPO` uses; any other tree gets a name of its own.
    """
    path = path.expanduser().resolve()
    if not gitmod.is_repo(path):
        raise ConfigError(f"--kernel {IN_PLACE}{path}: not a git tree")
    if path.parent == (cache / "worktrees").resolve():
        name = path.name
    else:
        name = worktree_name(path, cache) + "-inplace"
    commit = git(path, "rev-parse", "HEAD")
    return _git_kernel(name, path, commit, f"{IN_PLACE}{path}", f"git tree {path} as checked out")


def checkout_worktree(repo: Path, wt: Path, commit: str) -> None:
    """Create or move the harness's detached worktree of repo to commit."""
    if (wt / ".git").exists():
        if git(wt, "status", "--porcelain", "--untracked-files=no"):
            raise InfraError(
                f"harness worktree {wt} has local changes (an interrupted run?); "
                "they are kept: inspect them, then 'git -C WT checkout -- .'"
            )
        # already there (every run of a nightly but the first): a checkout would only
        # stat the whole tree again
        if gitmod.commit(wt, "HEAD") != commit:
            git(wt, "checkout", "--quiet", "--detach", commit)
        return
    wt.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "prune")
    git(repo, "worktree", "add", "--quiet", "--detach", str(wt), commit)
