"""Inject patches into a kernel tree and take them out again, leaving the tree as it was.

Exact: patches go through `git apply` (context must match, a shifted hunk is found, but
there is no fuzz), and the whole patch is checked before a byte changes. A patch whose
reverse applies is reported as already in the tree.

Crash-safe: before the tree is touched, a journal in the harness's state folder (never
in the tree) records every file the patch will touch, with a saved copy of each. The
journal is written atomically and fsynced, so at any instant, a SIGKILL included, it
describes how to put the tree back. Putting back means restoring those copies: it needs
neither the patch nor patch -R, and a file that already matches is left alone, so
recovery can be repeated any number of times.

Without a journal (lost, or corrupt), a ledger of every file the harness ever touched in
a tree, with its pristine checksum (for a tree extracted from a tarball, the checksum the
tarball gave it), still tells a pristine tree from a patched one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness import faults
from harness.errors import InfraError, PatchError
from harness.fsutil import atomic_write_bytes, atomic_write_text, fsync_dir
from harness.proc import critical
from harness.state import cache_root, tree_state_dir

log = logging.getLogger(__name__)

JOURNAL = "journal.json"
LEDGER = "touched.json"
MANIFEST = "pristine.sha256"  # a tarball tree's files as extracted: "sha256 mode path"
LEGACY_JOURNAL = ".harness-applied-patches.json"  # inside the tree, before this version
ALREADY_APPLIED = "already applied"  # PatchError.reason when the reverse patch applies
DOES_NOT_APPLY = "does not apply"

# a journal entry: {"patch": path, "sha256": ..., "files": {rel: FileState.to_json()}}
Entry = dict[str, Any]
__all__ = ["PatchError", "ALREADY_APPLIED", "DOES_NOT_APPLY", "applied", "recover", "tree_lock"]


# ---------------------------------------------------------------- reading a patch


def _unquote(path: str) -> str:
    if path.startswith('"') and path.endswith('"'):
        return path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return path


def _strip1(path: str) -> str | None:
    path = _unquote(path.split("\t")[0].strip())
    if path == "/dev/null":
        return None
    return path.split("/", 1)[1] if "/" in path else path


def touched_files(text: str) -> list[str]:
    """Every path a -p1 patch reads or writes: modified, created, deleted, renamed, copied."""
    out: dict[str, None] = {}
    for line in text.splitlines():
        if line.startswith(("--- ", "+++ ")):
            p = _strip1(line[4:])
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            p = _unquote(line.split(" ", 2)[2].strip())
        elif line.startswith("diff --git "):
            rest = line[len("diff --git ") :]
            half = (len(rest) - 1) // 2  # "a/X b/X": the common case, spaces allowed
            if rest[:half][2:] == rest[half + 1 :][2:]:
                p = _strip1(rest[:half])
            else:
                a, _, b = rest.rpartition(" b/")
                out.setdefault(_strip1(a) or "", None)
                p = b
        else:
            continue
        if p:
            out.setdefault(p, None)
    out.pop("", None)
    for p in out:
        if p.startswith("/") or ".." in Path(p).parts:
            raise PatchError(f"patch touches {p!r}: outside the tree", reason=DOES_NOT_APPLY)
    return list(out)


def _git_apply(
    tree: Path, patch: Path, *extra: str, hold_fd: int | None = None
) -> subprocess.CompletedProcess[str]:
    # GIT_CEILING_DIRECTORIES: a tree inside another repository (kernels/ inside the
    # harness checkout) must not be treated as a subfolder of that repository
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent), "LC_ALL": "C"}
    return subprocess.run(
        ["git", "apply", "-p1", "--whitespace=nowarn", *extra, str(patch.resolve())],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C must not stop it half-way
        # the tree's lock goes with it: a git apply outliving a killed harness keeps the
        # tree until it is done, so recovery never runs under its feet
        pass_fds=(hold_fd,) if hold_fd is not None else (),
    )


def failing_hunks(patch_text: str, output: str) -> str:
    """Quote the hunks git says do not apply, so the user sees what did not fit."""
    sections = re.split(r"(?m)^(?=diff --git |--- )", patch_text)
    out = []
    for path, line in re.findall(r"patch failed: (.+):(\d+)", output):
        for chunk in sections:
            if re.search(rf"(?m)^\+\+\+ [ab]/{re.escape(path)}\s*$", chunk) or re.search(
                rf"(?m)^--- [ab]/{re.escape(path)}\s*$", chunk
            ):
                for i, hunk in enumerate(re.split(r"(?m)^(?=@@ )", chunk)[1:], 1):
                    if re.match(rf"@@ -{line}(,\d+)? ", hunk):
                        out.append(f"{path}, hunk #{i} (at line {line}):\n{hunk.rstrip()}")
                        break
                break
    return "\n\n".join(out)


def check(tree: Path, patch: Path) -> None:
    """Raise PatchError (reason: already applied / does not apply) unless patch fits exactly."""
    proc = _git_apply(tree, patch, "--check")
    if proc.returncode == 0:
        return
    if _git_apply(tree, patch, "--check", "-R").returncode == 0:
        raise PatchError(
            f"patch {patch} is {ALREADY_APPLIED} in {tree} (its reverse applies); "
            "the tree is unchanged",
            reason=ALREADY_APPLIED,
        )
    text = patch.read_text(errors="replace")
    hunks = failing_hunks(text, proc.stderr)
    raise PatchError(
        f"patch {patch} {DOES_NOT_APPLY} to {tree} exactly (no fuzz); the tree is unchanged.\n"
        f"{proc.stderr.strip()}\n" + (f"\nFailing hunks:\n{hunks}" if hunks else ""),
        reason=DOES_NOT_APPLY,
    )


# ---------------------------------------------------------------- file states


@dataclass(frozen=True)
class FileState:
    """A file as it was: its content's sha256 (None: it did not exist) and mode."""

    sha256: str | None
    mode: int | None = None
    new_dirs: tuple[str, ...] = ()  # parent folders a created file brought with it

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "mode": self.mode, "new_dirs": list(self.new_dirs)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileState:
        return cls(d.get("sha256"), d.get("mode"), tuple(d.get("new_dirs") or ()))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state_of(tree: Path, rel: str) -> FileState:
    p = tree / rel
    if p.is_symlink() or not p.exists():
        missing = []
        parent = Path(rel).parent
        while str(parent) not in (".", "") and not (tree / parent).exists():
            missing.append(str(parent))
            parent = parent.parent
        return FileState(None, None, tuple(missing))
    return FileState(_sha(p.read_bytes()), stat.S_IMODE(p.stat().st_mode))


def _current_sha(tree: Path, rel: str) -> str | None:
    p = tree / rel
    return _sha(p.read_bytes()) if p.is_file() and not p.is_symlink() else None


class _Store:
    """The state folder of one tree: journal, ledger, saved copies."""

    def __init__(self, tree: Path, cache: Path | None = None, hold_fd: int | None = None) -> None:
        self.tree = tree
        self.hold_fd = hold_fd
        self.dir = tree_state_dir(tree, cache)
        self.saved = self.dir / "saved"

    # saved copies are content-addressed: two patches of one name cannot collide
    def save(self, data: bytes) -> str:
        sha = _sha(data)
        dest = self.saved / sha
        if not dest.exists():
            self.saved.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, data)
        return sha

    def saved_bytes(self, sha: str) -> bytes | None:
        p = self.saved / sha
        if not p.exists():
            return None
        data = p.read_bytes()
        return data if _sha(data) == sha else None

    def read_journal(self) -> list[Entry] | None:
        """The journal's entries; [] when there is none, None when it cannot be read."""
        p = self.dir / JOURNAL
        if not p.exists():
            return []
        try:
            data = json.loads(p.read_text())
            entries = data["entries"]
            for e in entries:
                for rel, fs in e["files"].items():
                    assert isinstance(rel, str) and isinstance(fs, dict)
            return list(entries)
        except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
            return None

    def write_journal(self, entries: list[Entry]) -> None:
        p = self.dir / JOURNAL
        if not entries:
            if p.exists():
                p.unlink()
                fsync_dir(self.dir)
            return
        data = {"version": 2, "tree": str(self.tree), "entries": entries}
        atomic_write_text(p, json.dumps(data, indent=1) + "\n")

    def quarantine_journal(self) -> Path:
        p = self.dir / JOURNAL
        dest = self.dir / f"{JOURNAL}.corrupt-{dt.datetime.now():%Y%m%d-%H%M%S}"
        p.rename(dest)
        return dest

    def ledger(self) -> dict[str, dict[str, Any]]:
        p = self.dir / LEDGER
        if not p.exists():
            return {}
        try:
            data = json.loads(p.read_text())
            return data if isinstance(data, dict) else {}
        except (ValueError, UnicodeDecodeError):
            log.warning("%s is unreadable; starting a new ledger", p)
            return {}

    def write_ledger(self, ledger: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self.dir / LEDGER, json.dumps(ledger, indent=1, sort_keys=True) + "\n")

    def manifest(self) -> dict[str, str] | None:
        p = self.dir / MANIFEST
        if not p.exists():
            return None
        out = {}
        for line in p.read_text().splitlines():
            sha, _mode, rel = line.split(" ", 2)
            out[rel] = sha
        return out

    def quarantine(self, rel: str) -> Path | None:
        """Keep a copy of a file the harness is about to overwrite without a record of it."""
        src = self.tree / rel
        if not src.is_file():
            return None
        dest = self.dir / "quarantine" / f"{dt.datetime.now():%Y%m%d-%H%M%S}" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return dest


def _restore(store: _Store, rel: str, want: FileState) -> bool:
    """Put one file back as it was; True when something had to change."""
    tree = store.tree
    path = tree / rel
    if want.sha256 is None:
        changed = False
        if path.exists() or path.is_symlink():
            path.unlink()
            changed = True
        for d in want.new_dirs:  # innermost first
            with contextlib.suppress(OSError):
                (tree / d).rmdir()
        return changed
    cur = path.stat() if path.is_file() and not path.is_symlink() else None
    if (
        cur is not None
        and _current_sha(tree, rel) == want.sha256
        and (want.mode is None or stat.S_IMODE(cur.st_mode) == want.mode)
    ):
        return False
    data = store.saved_bytes(want.sha256)
    if data is None:
        raise InfraError(
            f"cannot restore {path}: the saved copy {store.saved / want.sha256} is missing "
            "or damaged"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise InfraError(f"cannot restore {path}: a folder stands where the file was")
    atomic_write_bytes(path, data, mode=want.mode if want.mode is not None else 0o644)
    return True


def _drop_temporaries(tree: Path, rels: list[str]) -> None:
    """A kill during an atomic restore leaves `.NAME.*.tmp` beside the file: remove it."""
    for rel in rels:
        p = tree / rel
        if p.parent.is_dir():
            for tmp in p.parent.glob(f".{p.name}.*.tmp"):
                tmp.unlink(missing_ok=True)


def _undo_entry(store: _Store, entry: Entry) -> list[str]:
    """Restore every file an entry recorded; returns the files that changed."""
    changed = []
    for i, (rel, fs) in enumerate(entry["files"].items()):
        if _restore(store, rel, FileState.from_json(fs)):
            changed.append(rel)
        if i == 0:
            faults.point("revert:mid")
    bad = [
        rel
        for rel, fs in entry["files"].items()
        if _current_sha(store.tree, rel) != FileState.from_json(fs).sha256
    ]
    if bad:
        raise InfraError(f"restoring {entry['patch']} left {', '.join(bad)} different from before")
    return changed


# ---------------------------------------------------------------- recovery


def recover(tree: Path, *, owned: bool = False) -> list[str]:
    """Undo whatever an interrupted run left in the tree; returns what was undone.

    Run under the tree's exclusive lock before anything else uses the tree. `owned`
    (a harness worktree) allows putting ledger files back from git's HEAD.
    """
    store = _Store(tree)
    undone = _recover_legacy(tree)
    entries = store.read_journal()
    _drop_temporaries(tree, [*store.ledger(), *(r for e in entries or [] for r in e["files"])])
    if entries is None:
        moved = store.quarantine_journal()
        log.warning("patch journal %s was unreadable (kept as %s)", store.dir / JOURNAL, moved)
    else:
        for entry in reversed(entries):
            changed = _undo_entry(store, entry)
            name = Path(entry["patch"]).name
            if changed:
                log.warning("undid %s, left applied by an interrupted run", name)
                undone.append(name)
            entries.pop()
            store.write_journal(entries)
    undone += _check_ledger(store, owned=owned)
    return undone


def _recover_legacy(tree: Path) -> list[str]:
    """A journal inside the tree, written by an older harness (patch(1), digests)."""
    jpath = tree / LEGACY_JOURNAL
    if not jpath.exists():
        return []
    try:
        entries = json.loads(jpath.read_text() or "[]")
    except (ValueError, UnicodeDecodeError):
        entries = []
    undone = []
    for entry in reversed(entries):
        copy = Path(entry.get("copy", ""))
        before = entry.get("before", {})
        if all(_current_sha(tree, f) == sha for f, sha in before.items()):
            continue
        if copy.exists():
            subprocess.run(
                ["patch", "-p1", "-R", "--batch", "--no-backup-if-mismatch", "-r", "-",
                 "-d", str(tree), "-i", str(copy)],
                capture_output=True,
            )  # fmt: skip
        bad = [f for f, sha in before.items() if _current_sha(tree, f) != sha]
        if bad:
            raise InfraError(
                f"{jpath}: an older harness left {entry.get('patch')} applied and it does "
                f"not come out cleanly ({', '.join(bad)}); re-extract or reset the tree"
            )
        undone.append(Path(entry.get("patch", "?")).name)
    jpath.unlink()
    return undone


def needs_recovery(tree: Path, *, owned: bool = False) -> bool:
    """Whether `recover` has anything to do; read-only, so a shared lock will do.

    No patching run can be under way while the caller holds the shared lock (patching
    takes it alone), so whatever this sees was left by a run that is gone.
    """
    if not tree.exists():
        return False
    store = _Store(tree)
    if (tree / LEGACY_JOURNAL).exists() or store.read_journal() != []:
        return True
    rels = [*store.ledger()]
    if any(
        (tree / r).parent.is_dir() and any((tree / r).parent.glob(f".{Path(r).name}.*.tmp"))
        for r in rels
    ):
        return True
    return bool(_dirty_ledger(store, owned=owned))


def _dirty_ledger(store: _Store, *, owned: bool) -> list[str]:
    """The files the harness once touched that are not pristine now."""
    ledger = store.ledger()
    if not ledger:
        return []
    tree = store.tree
    if (tree / ".git").exists():
        if not owned:
            return []  # a user's own tree: their changes are theirs; the journal covers ours
        proc = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "-z", "--untracked-files=all",
             "--", *sorted(ledger)],
            capture_output=True, text=True,
        )  # fmt: skip
        return [e[3:] for e in proc.stdout.split("\0") if len(e) > 3]
    return [
        rel
        for rel, rec in sorted(ledger.items())
        if _current_sha(tree, rel) != FileState.from_json(rec).sha256
    ]


def _check_ledger(store: _Store, *, owned: bool) -> list[str]:
    """Every file the harness ever touched must be pristine now that no journal is left."""
    dirty = _dirty_ledger(store, owned=owned)
    if not dirty:
        return []
    tree = store.tree
    if (tree / ".git").exists():
        for rel in dirty:
            kept = store.quarantine(rel)
            log.warning("%s was changed with no journal to explain it; kept as %s", rel, kept)
        tracked = [r for r in dirty if subprocess.run(
            ["git", "-C", str(tree), "ls-files", "--error-unmatch", "--", r],
            capture_output=True).returncode == 0]  # fmt: skip
        if tracked:
            subprocess.run(["git", "-C", str(tree), "checkout", "-q", "HEAD", "--", *tracked],
                           check=False)  # fmt: skip
        for rel in set(dirty) - set(tracked):
            (tree / rel).unlink(missing_ok=True)
        return [f"{rel} (restored from HEAD)" for rel in dirty]
    fixed = []
    ledger = store.ledger()
    for rel in dirty:
        want = FileState.from_json(ledger[rel])
        kept = store.quarantine(rel)
        _restore(store, rel, want)
        log.warning(
            "%s differed from its pristine copy with no journal to explain it; restored "
            "(the changed file is kept as %s)",
            rel,
            kept,
        )
        fixed.append(f"{rel} (restored to pristine)")
    return fixed


def record_pristine(tree: Path, *, source: Path | None = None) -> Path:
    """Checksum every file of a tree just extracted from a tarball (or of `source`).

    The manifest lets the harness tell a pristine tree from a patched one for any file,
    even one it never touched before.
    """
    base = source or tree
    lines = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                continue
            rel = str(p.relative_to(base))
            if rel.startswith(".harness-"):
                continue
            mode = stat.S_IMODE(p.stat().st_mode)
            lines.append(f"{_sha(p.read_bytes())} {mode:o} {rel}")
    lines.sort(key=lambda s: s.split(" ", 2)[2])
    store = _Store(tree)
    atomic_write_text(store.dir / MANIFEST, "\n".join(lines) + "\n")
    return store.dir / MANIFEST


def has_manifest(tree: Path) -> bool:
    return (_Store(tree).dir / MANIFEST).exists()


def verify_against(tree: Path, pristine: Path) -> list[str]:
    """Put every file of tree that differs from the same file under pristine back.

    For a tree extracted before the harness kept manifests: the one time it is compared
    in full with a fresh extraction. Returns the files restored (changed ones are kept in
    the state folder's quarantine).
    """
    store = _Store(tree)
    fixed = []
    for dirpath, _dirs, filenames in os.walk(pristine):
        for name in filenames:
            src = Path(dirpath, name)
            rel = str(src.relative_to(pristine))
            if src.is_symlink():
                continue
            data = src.read_bytes()
            if _current_sha(tree, rel) == _sha(data):
                continue
            store.quarantine(rel)
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(tree / rel, data, mode=stat.S_IMODE(src.stat().st_mode))
            fixed.append(rel)
    for rel in fixed:
        log.warning("%s differed from the tarball; restored", rel)
    return fixed


# ---------------------------------------------------------------- apply and revert


def _ledger_add(store: _Store, files: dict[str, FileState]) -> None:
    """Record each file's pristine state the first time the harness touches it."""
    ledger = store.ledger()
    new = {rel: fs for rel, fs in files.items() if rel not in ledger}
    if not new:
        return
    manifest = store.manifest() if not (store.tree / ".git").exists() else None
    for rel, fs in new.items():
        if manifest is not None:
            pristine = manifest.get(rel)
            if fs.sha256 != pristine:
                raise InfraError(
                    f"{store.tree / rel} differs from the tarball it was extracted from, and "
                    "the harness has no record of changing it: remove "
                    f"{store.tree} to have it extracted again"
                )
        ledger[rel] = fs.to_json()
    store.write_ledger(ledger)


def apply(tree: Path, patch: Path, journal: list[Entry], store: _Store | None = None) -> Entry:
    """Apply one patch exactly, journaled first; returns (and journals) its entry."""
    store = store or _Store(tree)
    data = patch.read_bytes()
    files = touched_files(data.decode("utf-8", errors="replace"))
    check(tree, patch)
    before = {rel: _state_of(tree, rel) for rel in files}
    for rel, fs in before.items():
        if fs.sha256 is not None:
            store.save((tree / rel).read_bytes())
    _ledger_add(store, before)
    entry = {
        "patch": str(patch),
        "sha256": _sha(data),
        "files": {rel: fs.to_json() for rel, fs in before.items()},
    }
    journal.append(entry)
    store.write_journal(journal)  # durable before the first byte of the tree changes
    faults.point("apply:before")
    proc = _git_apply(tree, patch, hold_fd=store.hold_fd)
    if proc.returncode != 0:  # should not happen after a clean check; put it all back
        _undo_entry(store, entry)
        journal.pop()
        store.write_journal(journal)
        raise PatchError(
            f"patch {patch} failed after a clean check:\n{proc.stderr.strip()}",
            reason=DOES_NOT_APPLY,
        )
    faults.point("apply:after")
    return entry


HELD_ENV = "HARNESS_TREE_LOCK_HELD"  # a parent (bisect) holds this tree's lock for us


@contextlib.contextmanager
def tree_lock(tree: Path, *, exclusive: bool, owned: bool | None = None) -> Iterator[int | None]:
    """Runs that only read a tree share it; a run that patches or moves it has it alone.

    Two targets built from one source (arm32-highmem-ci and -lpae-ci, a nightly matrix)
    would otherwise see, or revert, each other's canary patches, or build a worktree
    another run has just moved to another commit. Yields the lock's file descriptor, so
    a build can hand it to make: the lock then lasts as long as any compiler it started.
    The lock file lives in the harness's state folder, not next to the tree. A reader
    takes the lock shared from the start (two targets build side by side); only when a
    dead run left something to undo does it take the lock alone first to undo it.
    """
    held = os.environ.get(HELD_ENV)
    if held and Path(held) == tree.resolve():
        yield None
        return
    if owned is None:
        owned = cache_root() in tree.resolve().parents
    with open(tree_state_dir(tree) / "lock", "a") as fh:
        _flock(fh, tree, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if not exclusive and needs_recovery(tree, owned=owned):
            fcntl.flock(fh, fcntl.LOCK_UN)  # what a dead run left: fixed alone, then shared
            _flock(fh, tree, fcntl.LOCK_EX)
            exclusive_now = True
        else:
            exclusive_now = exclusive
        faults.point("lock:acquired")
        if exclusive_now and tree.exists():
            with critical():
                recover(tree, owned=owned)  # only ever under the exclusive lock
        if exclusive_now and not exclusive:
            fcntl.flock(fh, fcntl.LOCK_SH)
        yield fh.fileno()


def _flock(fh: IO[str], tree: Path, how: int) -> None:
    try:
        fcntl.flock(fh, how | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("waiting for another run that uses %s", tree)
        fcntl.flock(fh, how)


@contextlib.contextmanager
def holding(tree: Path) -> Iterator[None]:
    """The tree alone for a whole job of many runs (bisect, nightly, series).

    The runs it starts, in this process or as child processes, inherit the lock through
    HELD_ENV; a job nested in another (a series bisecting) leaves the outer one's mark.
    """
    with tree_lock(tree, exclusive=True):
        before = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = str(tree.resolve())
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = before


@dataclass
class Applied:
    """What `applied` did: the lock's descriptor for the build to hand on, and which of
    the alternatives applied (None when there were none)."""

    fd: int | None
    alternative: int | None = None
    failures: list[tuple[int, PatchError]] = field(default_factory=list)


class NoAlternativeApplies(PatchError):
    """None of the alternatives applies; `failures` has each one's error, in order."""

    def __init__(self, failures: list[tuple[int, PatchError]]) -> None:
        super().__init__(
            "\n".join(f"alternative {i}: {e}" for i, e in failures), reason=DOES_NOT_APPLY
        )
        self.failures = failures


@contextlib.contextmanager
def applied(
    tree: Path,
    patches: list[Path],
    record_dir: Path | None = None,
    checkout: Callable[[], None] | None = None,
    alternatives: Sequence[Sequence[Path]] = (),
) -> Iterator[Applied]:
    """Check out (for a shared worktree), apply patches, run the block, revert them all.

    The tree is locked for the whole block (shared when nothing moves or patches it). If a
    patch does not apply, those already applied are reverted before the error propagates.
    `alternatives` (a scenario's variants, nearest first) are tried before `patches`: the
    first whose patches all apply exactly is kept, the others leave no trace. Each patch
    applied is also copied into record_dir (numbered, so two files of one name stay two).
    """
    exclusive = bool(patches) or checkout is not None or any(alternatives)
    with tree_lock(tree, exclusive=exclusive) as fd:
        if checkout is not None:
            checkout()
        result = Applied(fd)
        with _applied(tree, patches, fd, alternatives, result):
            if record_dir is not None:
                alt = result.alternative
                chosen = list(alternatives[alt]) if alternatives and alt is not None else []
                for i, p in enumerate([*chosen, *patches], 1):
                    record_dir.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, record_dir / f"{i:02d}-{p.name}")
            yield result


@contextlib.contextmanager
def _applied(
    tree: Path,
    patches: list[Path],
    hold_fd: int | None,
    alternatives: Sequence[Sequence[Path]],
    result: Applied,
) -> Iterator[None]:
    store = _Store(tree, hold_fd=hold_fd)
    journal: list[Entry] = []

    def undo_to(depth: int) -> None:
        with critical():
            while len(journal) > depth:
                _undo_entry(store, journal[-1])
                journal.pop()
                store.write_journal(journal)

    try:
        for i, alt in enumerate(alternatives):
            try:
                for patch in alt:
                    with critical():
                        apply(tree, patch, journal, store)
            except PatchError as e:
                undo_to(0)
                if e.reason == ALREADY_APPLIED:
                    raise  # the change is in the tree: say that, not "stale"
                result.failures.append((i, e))
                continue
            result.alternative = i
            break
        else:
            if alternatives:
                raise NoAlternativeApplies(result.failures)
        for patch in patches:
            with critical():
                apply(tree, patch, journal, store)
        yield
    finally:
        undo_to(0)
