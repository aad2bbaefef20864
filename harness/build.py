"""Configure and build a kernel out of tree: defconfig + fragments, cross toolchain, ccache.

The build directory is per target and source, so moving a tree between commits (bisect)
or in and out of a canary patch rebuilds incrementally.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.config import Target, read_fragment
from harness.errors import BuildError, InfraError, NotApplicable
from harness.fsutil import exclusive_lock
from harness.proc import Progress, eta, run_logged
from harness.source import KernelSource

_STEP = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|HOSTLD|OBJCOPY|GEN|CPP|LDS|SYSMAP|KSYMS|UPD)\s+(\S+)")


@dataclass
class BuildResult:
    """What a run needs from the build, and how to redo it by hand."""

    build_dir: Path
    image: Path
    vmlinux: Path
    log: Path
    seconds: float
    commands: list[str] = field(default_factory=list)
    config_seconds: float = 0.0
    steps: int = 0


def cross_gcc(target: Target) -> tuple[str, str]:
    """The target's cross gcc and its `--version` text (part of a cache key): user-space
    builds (workloads, selftests) need it present before anything else."""
    gcc = f"{target.cross_compile}gcc"
    if not shutil.which(gcc):
        raise InfraError(f"cross compiler {gcc} not found; run ./bootstrap.sh")
    return gcc, subprocess.run([gcc, "--version"], capture_output=True, text=True).stdout


def build_dir_for(target: Target, source: KernelSource, cache: Path) -> Path:
    return cache / "build" / target.build_name / source.name


def make_command(target: Target, source: KernelSource, build_dir: Path, jobs: int) -> list[str]:
    """The make invocation every step uses; identical CC between configure and build matters."""
    cross = target.cross_compile
    cmd = ["make", "-C", str(source.tree), f"O={build_dir}", f"ARCH={target.arch}"]
    if cross:
        cmd.append(f"CROSS_COMPILE={cross}")
    if shutil.which("ccache"):
        cmd += [f"CC=ccache {cross}gcc", "HOSTCC=ccache gcc"]
    cmd.append(f"-j{jobs}")
    return cmd


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("KBUILD_BUILD_USER", "harness")
    env.setdefault("KBUILD_BUILD_HOST", "harness")
    env.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "ccache"))
    env.setdefault("CCACHE_BASEDIR", "/")
    env["LC_ALL"] = "C"
    return env


def config_inputs_hash(target: Target, extra: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(target.defconfig.encode())
    for frag in target.fragments:
        h.update(frag.read_bytes())
    h.update(json.dumps(sorted({**target.config, **extra}.items())).encode())
    return h.hexdigest()[:16]


def check_config(final: Path, wanted: dict[str, tuple[str, str]]) -> None:
    """Every option the target asks for must survive olddefconfig, else name it."""
    have = read_fragment(final)
    missing = []
    for opt, (value, origin) in sorted(wanted.items()):
        got = have.get(opt, "n")
        if value == "n":
            ok = got == "n"
        else:
            ok = got == value
        if not ok:
            missing.append(f"  {opt}={value} (asked by {origin}); final .config has {opt}={got}")
    if missing:
        raise BuildError(
            f"{final}: options asked for are not in the final .config (unmet dependencies?):\n"
            + "\n".join(missing)
        )


def check_requires(final: Path, requires: dict[str, str]) -> None:
    """A scenario's prerequisites: refuse before spending minutes on a kernel it cannot test."""
    have = read_fragment(final)
    lacking = [f"{opt}={have.get(opt, 'n')}" for opt in requires if have.get(opt, "n") == "n"]
    if lacking:
        raise NotApplicable("kernel lacks " + ", ".join(lacking))


def wanted_options(target: Target, extra: dict[str, str]) -> dict[str, tuple[str, str]]:
    wanted: dict[str, tuple[str, str]] = {}
    for frag in target.fragments:
        for k, v in read_fragment(frag).items():
            wanted[k] = (v, str(frag.name))
    for k, v in target.config.items():
        wanted[k] = (v, f"{target.path.name} config")
    for k, v in extra.items():
        wanted[k] = (v, "scenario")
    return wanted


@contextmanager
def locked(build_dir: Path) -> Iterator[int]:
    """One build per directory at a time (nightly runs targets in parallel).

    Yields the lock's descriptor: make inherits it, so a compiler left running by a
    killed harness still holds the directory until it exits.
    """
    with exclusive_lock(build_dir / ".harness-lock", f"builds in {build_dir}") as fd:
        yield fd


def keep(build_dir: Path, files: list[Path], dest: Path) -> dict[Path, Path]:
    """Copy what a boot uses out of the build dir while the build lock is held.

    The boot, the symbolisation and the reproducer then use exactly the kernel that was
    built, even if another run rebuilds the directory a second later.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for f in files:
        copy = dest / f.name
        shutil.copyfile(f, copy)
        out[f] = copy
    return out


def configure(
    target: Target,
    source: KernelSource,
    build_dir: Path,
    log_fh: IO[str],
    *,
    jobs: int,
    extra: dict[str, str] | None = None,
    hold_fds: tuple[int, ...] = (),
) -> list[str]:
    """defconfig, merge the fragments, olddefconfig; skipped when nothing changed."""
    extra = extra or {}
    make = make_command(target, source, build_dir, jobs)
    env = build_env()
    stamp = build_dir / ".harness-config"
    inputs = config_inputs_hash(target, extra)
    defconfig = target.defconfig.split()  # "x86_64_defconfig xen.config": make merges both
    commands = [shlex.join([*make, *defconfig])]
    frags = [str(f) for f in target.fragments]
    extra_frag = build_dir / "harness-extra.config"
    inline = {**target.config, **extra}
    if inline:
        frags.append(str(extra_frag))
    merge = [
        str(source.tree / "scripts" / "kconfig" / "merge_config.sh"),
        "-m",
        "-O",
        str(build_dir),
        str(build_dir / ".config"),
        *frags,
    ]
    commands += [shlex.join(merge), shlex.join([*make, "olddefconfig"])]
    if stamp.exists() and stamp.read_text().strip() == inputs and (build_dir / ".config").exists():
        return commands
    if inline:
        extra_frag.write_text("".join(f"{k}={v}\n" for k, v in inline.items()))
    steps = [
        ([*make, *defconfig], None),
        (merge, source.tree),
        ([*make, "olddefconfig"], None),
    ]
    for cmd, cwd in steps:
        rc = run_logged(cmd, log_fh, cwd=cwd, env=env, pass_fds=hold_fds)
        if rc != 0:
            raise BuildError(f"configuring failed at: {shlex.join(cmd)} (exit {rc}); see build.log")
    check_config(build_dir / ".config", wanted_options(target, extra))
    stamp.write_text(inputs + "\n")
    return commands


def build(
    target: Target,
    source: KernelSource,
    cache: Path,
    *,
    jobs: int | None = None,
    quiet: bool = False,
    extra_config: dict[str, str] | None = None,
    requires: dict[str, str] | None = None,
    hold_fds: tuple[int | None, ...] = (),
    keep_in: Path | None = None,
    keep_extra: tuple[str, ...] = (),
) -> BuildResult:
    """Configure if needed and build the image; progress on stderr, everything in build.log.

    hold_fds: locks (the source tree's) that make and its compilers inherit. keep_in:
    where the image, vmlinux and keep_extra (build-dir relative) are copied under the
    lock; the result then names the copies.
    """
    jobs = jobs or os.cpu_count() or 1
    cross_gcc = f"{target.cross_compile}gcc"
    if not shutil.which(cross_gcc):
        raise InfraError(
            f"cross compiler {cross_gcc} not found (target {target.name}); run ./bootstrap.sh"
        )
    build_dir = build_dir_for(target, source, cache)
    with locked(build_dir) as lock_fd:
        fds = tuple(fd for fd in (lock_fd, *hold_fds) if fd is not None)
        log_path = build_dir / "build.log"
        progress = Progress("build", quiet)
        total_file = build_dir.parent / ".steps-total"
        t0 = time.monotonic()
        with open(log_path, "w") as log_fh:
            commands = configure(
                target, source, build_dir, log_fh, jobs=jobs, extra=extra_config, hold_fds=fds
            )
            if requires:
                check_requires(build_dir / ".config", requires)
            t_conf = time.monotonic() - t0
            cold = not (build_dir / "vmlinux").exists()
            total = int(total_file.read_text()) if cold and total_file.exists() else 0
            count = 0
            last_lines: list[str] = []

            def on_line(line: str) -> None:
                nonlocal count
                last_lines.append(line)
                del last_lines[:-40]
                m = _STEP.match(line)
                if m:
                    count += 1
                    left = eta(count, total, time.monotonic() - t_make) if total else ""
                    progress.update(f"{count} steps{f' ({left})' if left else ''}  "
                                    f"{m.group(1)} {m.group(2)}")  # fmt: skip

            t_make = time.monotonic()
            make = [*make_command(target, source, build_dir, jobs), *target.make_targets]
            commands.append(shlex.join(make))
            rc = run_logged(make, log_fh, env=build_env(), on_line=on_line, pass_fds=fds)
        seconds = time.monotonic() - t0
        if rc != 0:
            errors = [ln.rstrip() for ln in last_lines if "error" in ln.lower()] or last_lines[-15:]
            progress.done(f"FAILED after {seconds:.0f}s")
            raise BuildError(
                f"kernel build failed (exit {rc}) in {build_dir}; last errors:\n"
                + "\n".join(e.rstrip() for e in errors[-15:])
                + f"\nfull log: {log_path}"
            )
        if cold and count:
            total_file.write_text(str(count))
        progress.done(f"{count} steps in {seconds:.0f}s ({'cold' if cold else 'incremental'})")
        image = build_dir / target.image
        if not image.exists():
            raise BuildError(
                f"build finished but {image} is missing (make_targets in {target.path}?)"
            )
        vmlinux = build_dir / "vmlinux"
        if keep_in is not None:
            extra = [build_dir / e for e in keep_extra if (build_dir / e).exists()]
            kept = keep(build_dir, [image, *([vmlinux] if vmlinux.exists() else []), *extra],
                        keep_in)  # fmt: skip
            image, vmlinux = kept[image], kept.get(vmlinux, vmlinux)
        return BuildResult(
            build_dir=build_dir,
            image=image,
            vmlinux=vmlinux,
            log=log_path,
            seconds=seconds,
            commands=commands,
            config_seconds=t_conf,
            steps=count,
        )
