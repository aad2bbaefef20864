"""Helpers of the reliability suite (conftest.py says what it checks).

The kernel is a small real tree (tests/fakes/small_linux.py) built in seconds by real
make and the target's cross compiler, and the boot is a fake QEMU that boots what was
built: a kernel with the canary's patch left in oopses, so a leak is a wrong verdict,
not only a diff.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from small_linux import bug_patch, make_small_linux, second_patch

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
MAIN_CACHE = Path(os.environ.get("HARNESS_CACHE") or REPO / "kernels")
TARGET = "arm32-highmem-ci"
SPEC = "small-linux"
ROUNDS = int(os.environ.get("HARNESS_RELIABILITY_ROUNDS", "2"))

# (kind, phase, signal) -> counters, for the table printed at the end
TABLE: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
    lambda: {"kills": 0, "pristine": 0, "leftover": 0, "wrong": 0, "incomplete": 0}
)

GIT_SHIM = """#!/bin/sh
# git, except that a real `git apply` (not --check) can be made to stop half-way:
# it truncates the first file it would write, says so, and dies after a while.
if [ -n "$RELIABILITY_SLOW_APPLY" ] && [ "$1" = "apply" ]; then
  case " $* " in
    *" --check "*) ;;
    *)
      f="$RELIABILITY_SLOW_APPLY"
      head -c 20 "$f" > "$f.half" && mv "$f.half" "$f"
      echo "git apply: stopped half-way" >&2
      : > "$RELIABILITY_MARK"
      sleep 2
      exit 1
      ;;
  esac
fi
exec /usr/bin/git "$@"
"""


@dataclass
class Small:
    """The suite's world: a private cache, results root, PATH shims and the small tree."""

    root: Path
    pristine: Path
    repo: Path
    patches: list[Path]
    base_env: dict[str, str]
    runs: int = 0
    notes: list[str] = field(default_factory=list)

    def kernel(self, kind: str) -> str:
        return SPEC if kind == "tarball" else str(self.repo)

    def tree(self, kind: str) -> Path:
        if kind == "tarball":
            return self.root / "cache" / "src" / SPEC
        from harness.source import worktree_name

        return self.root / "cache" / "worktrees" / worktree_name(self.repo)

    def build_log(self, kind: str) -> Path:
        name = SPEC if kind == "tarball" else self.tree(kind).name
        return self.root / "cache" / "build" / TARGET / name / "build.log"

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base_env, **extra}

    def new_results(self) -> Path:
        self.runs += 1
        return self.root / "results" / f"r{self.runs:04d}"

    def argv(self, kind: str, *extra: str, patched: bool | list[Path] = False) -> list[str]:
        cmd = [sys.executable, "-m", "harness.cli", "run", TARGET, "--kernel", self.kernel(kind)]
        chosen = self.patches if patched is True else (patched or [])
        for p in chosen:
            cmd += ["--patch", str(p)]
        return [*cmd, *extra]

    def run(
        self, kind: str, *extra: str, patched: bool | list[Path] = False, timeout: int = 300, **env
    ):
        results = self.new_results()
        proc = subprocess.run(
            self.argv(kind, *extra, patched=patched),
            cwd=REPO,
            env=self.env(HARNESS_RESULTS=str(results), **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return proc, results

    def start(
        self, kind: str, *, patched: bool | list[Path] = True, **env
    ) -> tuple[subprocess.Popen, Path]:
        results = self.new_results()
        proc = subprocess.Popen(
            self.argv(kind, patched=patched),
            cwd=REPO,
            env=self.env(HARNESS_RESULTS=str(results), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return proc, results

    def leftovers(self) -> list[str]:
        """Processes still running on this suite's files (make, QEMU, git, the harness)."""
        mark = str(self.root)
        found = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(d / "cwd")
            except OSError:
                continue
            if mark in cmd or cwd.startswith(mark):
                found.append(f"{d.name}: {cmd.strip()[:160]}")
        return found

    def wait_no_leftovers(self, seconds: float = 15.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            left = self.leftovers()
            if not left:
                return []
            time.sleep(0.2)
        left = self.leftovers()
        for entry in left:  # do not let one failure poison the next cycles
            pid = int(entry.split(":")[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    def differences(self, kind: str) -> list[str]:
        """Files where the tree differs from the pristine source (harness marks aside)."""
        tree = self.tree(kind)
        want = {
            str(p.relative_to(self.pristine)): p.read_bytes()
            for p in self.pristine.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(self.pristine).parts
        }
        have = {
            str(p.relative_to(tree)): p.read_bytes()
            for p in tree.rglob("*")
            if p.is_file()
            and not p.name.startswith(".harness-")
            and p.name != ".git"
            and ".git" not in p.relative_to(tree).parts
        }
        diffs = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        return diffs


def _oops_text() -> str:
    golden = (
        REPO / "tests" / "golden" / "oops" / "arm32-tinyconfig-6.12.117-pte-lockptr-injected.txt"
    )
    text = golden.read_text()
    start = text.index("8<--- cut here ---")
    end = text.index("Kernel panic - not syncing", start)
    end = text.index("\n", end)
    return text[start:end] + "\n"


def make_small(tmp_path_factory) -> Small:
    from harness.config import load_target

    root = tmp_path_factory.mktemp("reliability")
    allowed = list(load_target(TARGET).required_options()) + ["CONFIG_BASE"]
    pristine = make_small_linux(root / "linux-small", allowed)
    tarball = root / "linux-small.tar.xz"
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(root), "linux-small"], check=True)
    repo = root / "linux-git"
    shutil.copytree(pristine, repo, symlinks=True)
    g = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*g, "init", "-q", "-b", "master"], check=True)
    subprocess.run([*g, "add", "-A"], check=True)
    subprocess.run([*g, "commit", "-qm", "small linux"], check=True)
    hpath = root / "hpath"
    (hpath / "kernels").mkdir(parents=True)
    (hpath / "kernels" / f"{SPEC}.yaml").write_text(
        f"description: a small real tree for the reliability suite\n"
        f"package: linux-source-small\nsuites: [bookworm]\nlocal_tarball: {tarball}\n"
    )
    # two patches with one file name: their saved copies must not collide
    p1, p2 = root / "one" / "fix.patch", root / "two" / "fix.patch"
    p1.parent.mkdir()
    p2.parent.mkdir()
    p1.write_text(bug_patch(root / "diffs"))
    p2.write_text(second_patch(root / "diffs"))
    bindir = root / "bin"
    bindir.mkdir()
    qemu = bindir / "qemu-system-arm"
    qemu.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKES / "qemu_from_image.py"} "$@"\n')
    qemu.chmod(0o755)
    (bindir / "git").write_text(GIT_SHIM)
    (bindir / "git").chmod(0o755)
    oops = root / "oops.txt"
    oops.write_text(_oops_text())
    cache = root / "cache"
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    for deb in (MAIN_CACHE / "downloads").glob("busybox-static_*_armhf.deb"):
        shutil.copy(deb, downloads)  # the suite needs no network when the main cache has it
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HARNESS_CACHE": str(cache),
        "HARNESS_PATH": str(hpath),
        "FAKE_QEMU_OOPS": str(oops),
        "FAKE_QEMU_STEP_SECONDS": "0.6",
    }
    env.pop("HARNESS_FAULT", None)
    s = Small(root, pristine, repo, [p1, p2], env)
    for kind in ("tarball", "git"):
        proc, _ = s.run(kind, "-q", timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc, _ = s.run(kind, "-q", patched=True)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # the canary is caught
        assert s.differences(kind) == []
    return s
