"""The tree's own selftests for the guest: built static with the target's cross compiler,
against the uapi headers of the kernel under test, and cached per tree content and arch.

The tree is never written to: the suite's folder is copied into a staging tree whose
other folders are links to the real one (a selftest build writes local_config.h next to
its sources). A test that does not build here (a library the cross toolchain lacks) is
not a failure of the kernel: it becomes a stub that prints why and exits with
kselftest's SKIP code, so the guest reports it as a skip with its reason.
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
from dataclasses import dataclass, field
from pathlib import Path

from harness import arches
from harness import build as build_mod
from harness.config import Target
from harness.errors import BuildError, ConfigError
from harness.proc import Progress, run_logged

KSFT_SKIP = 4
SELFTESTS = "tools/testing/selftests"
# the suites the harness can build and run, with the script that runs them in the guest
RUNNERS = {"mm": "run_vmtests.sh"}
# what the suite's Makefile reads besides its own folder (hashed into the cache key)
SHARED = ("lib.mk", "kselftest.h", "kselftest_harness.h", "kselftest")
LIST_MK = """harness-list:
\t@echo "GEN: $(TEST_GEN_FILES) $(TEST_GEN_PROGS) $(TEST_GEN_PROGS_EXTENDED)"
\t@echo "FILES: $(TEST_PROGS) $(TEST_FILES)"
"""
FAILED = re.compile(r"\*\*\* \[[^\]]*?:\d+: (\S+)\] Error \d+")


@dataclass
class Built:
    """A suite built for one arch: what the initramfs carries under /kselftest/<suite>."""

    suite: str
    dir: Path
    binaries: list[str]
    files: list[str]
    not_built: dict[str, str] = field(default_factory=dict)  # name -> why
    seconds: float = 0.0
    cached: bool = False
    log: Path | None = None

    def to_dict(self) -> dict[str, object]:
        return {"suite": self.suite, "dir": str(self.dir), "binaries": len(self.binaries),
                "not_built": self.not_built, "seconds": round(self.seconds, 1),
                "cached": self.cached}  # fmt: skip


def check_suite(name: str, where: str) -> str:
    if name not in RUNNERS:
        raise ConfigError(f"{where}: kselftest {name!r}: known suites: {', '.join(RUNNERS)}")
    return name


def _hash_tree(h: hashlib._Hash, root: Path, rel: Path) -> None:
    base = root / rel
    paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    for p in paths:
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")


BUILD_LOG = "harness-build.log"


def headers(target: Target, tree: Path, build_dir: Path, log: Path) -> Path:
    """`make headers` into the kernel's build folder (its usr/include), under its lock."""
    with build_mod.locked(build_dir) as fd, open(log, "a") as fh:
        cmd = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={target.arch}"]
        if target.cross_compile:
            cmd.append(f"CROSS_COMPILE={target.cross_compile}")
        rc = run_logged([*cmd, "headers"], fh, env=build_mod.build_env(),
                        pass_fds=(fd,) if fd is not None else ())  # fmt: skip
    if rc:
        raise BuildError(f"make headers failed (exit {rc}); see {log}")
    return build_dir / "usr" / "include"


def _stage(tree: Path, suite: str, stage: Path) -> Path:
    """A tree of links to the real one with the suite's folder (and the selftests'
    top-level files) copied, so the build writes only into the copy."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for top in tree.iterdir():
        if top.name not in ("tools", ".git"):
            (stage / top.name).symlink_to(top)
    tools = stage / "tools"
    tools.mkdir()
    for part in (tree / "tools").iterdir():
        if part.name != "testing":
            (tools / part.name).symlink_to(part)
    testing = tools / "testing"
    testing.mkdir()
    for part in (tree / "tools" / "testing").iterdir():
        if part.name != "selftests":
            (testing / part.name).symlink_to(part)
    st = testing / "selftests"
    st.mkdir()
    for part in (tree / SELFTESTS).iterdir():
        if part.name == suite or part.is_file():
            (shutil.copytree if part.is_dir() else shutil.copy2)(part, st / part.name)
        else:
            (st / part.name).symlink_to(part)
    return st / suite


def _reasons(output: str, failed: list[str]) -> dict[str, str]:
    """Why each failed binary failed: the first compiler or linker error naming it."""
    lines = output.splitlines()
    out = {}
    for name in failed:
        hit = next((ln.strip() for ln in lines
                    if re.search(rf"\b{re.escape(name)}(\.c)?[:\s]", ln)
                    and ("error" in ln or "undefined reference" in ln)), "")  # fmt: skip
        out[name] = hit[-300:] or "did not build (see the kselftest build log)"
    return out


def build(target: Target, tree: Path, build_dir: Path, suite: str, cache: Path, *,
          jobs: int | None = None, quiet: bool = False) -> Built:  # fmt: skip
    """The suite's binaries for the target, built once per content of what they are
    built from (the suite's sources, the shared kselftest files, the uapi headers, the
    compiler)."""
    check_suite(suite, "kselftest")
    if not (tree / SELFTESTS / suite / RUNNERS[suite]).exists():
        raise ConfigError(f"{tree} has no {SELFTESTS}/{suite}/{RUNNERS[suite]}")
    arch = arches.load().selftests_arch(target.debian_arch)
    _, version = build_mod.cross_gcc(target)  # present, and in the cache key
    root = cache / "kselftest" / target.debian_arch
    root.mkdir(parents=True, exist_ok=True)
    sweep(root)
    log = root / f"{suite}-build-{os.getpid()}.log"  # this run's: others build beside it
    log.write_text("")
    t0 = time.monotonic()
    progress = Progress(f"kselftest {suite}", quiet)
    progress.update("uapi headers", force=True)
    uapi = headers(target, tree, build_dir, log)
    h = hashlib.sha256(f"{suite}\0{arch}\0{version}\0static-v1\0".encode())
    _hash_tree(h, tree, Path(SELFTESTS) / suite)
    for rel in SHARED:
        if (tree / SELFTESTS / rel).exists():
            _hash_tree(h, tree, Path(SELFTESTS) / rel)
    _hash_tree(h, tree, Path("tools/include"))
    for header in sorted((tree / "mm").glob("*.h")) + sorted((tree / "lib").glob("test_*.h")):
        _hash_tree(h, tree, header.relative_to(tree))  # mm/gup_test.h, lib/test_hmm_uapi.h
    _hash_tree(h, uapi.parent, Path("include"))
    out = root / f"{suite}-{h.hexdigest()[:16]}"
    manifest = out / "harness-manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        progress.done(f"cached ({len(m['binaries'])} binaries)")
        log.unlink()
        kept = out / BUILD_LOG
        return Built(suite, out, m["binaries"], m["files"], m["not_built"], 0.0, True,
                     kept if kept.exists() else None)  # fmt: skip
    stage = _stage(tree, suite, root / f"stage-{os.getpid()}")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")  # two runs may build it at once
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    make = ["make", "-C", str(stage), f"ARCH={arch}", f"CROSS_COMPILE={target.cross_compile}",
            f"OUTPUT={tmp}", f"KHDR_INCLUDES=-isystem {uapi}", "LDFLAGS=-static"]  # fmt: skip
    try:
        (stage / "harness-list.mk").write_text(LIST_MK)
        listed = subprocess.run([*make, "-s", "-f", "Makefile", "-f", "harness-list.mk",
                                 "harness-list"], capture_output=True, text=True)  # fmt: skip
        if listed.returncode:
            raise BuildError(f"kselftest {suite}: cannot list its tests:\n{listed.stderr[-2000:]}")
        gen = files = []
        for line in listed.stdout.splitlines():
            if line.startswith("GEN: "):
                gen = sorted({Path(w).name for w in line[5:].split()})
            elif line.startswith("FILES: "):
                files = sorted(set(line[7:].split()))
        progress.update(f"building {len(gen)} tests for {arch}", force=True)
        text: list[str] = []
        with open(log, "a") as fh:
            rc = run_logged([*make, "-k", f"-j{jobs or os.cpu_count() or 1}"], fh,
                            env=build_mod.build_env(), on_line=text.append)  # fmt: skip
        built = sorted(n for n in gen if (tmp / n).is_file())
        failed = [n for n in gen if n not in built]
        not_built = _reasons("".join(text), failed)
        if rc and not failed:
            raise BuildError(f"kselftest {suite}: make failed (exit {rc}); see {log}")
        strip = f"{target.cross_compile}strip"
        if shutil.which(strip) and built:
            subprocess.run([strip, *(str(tmp / n) for n in built)], capture_output=True)
        for name in files:
            src = stage / name
            if src.is_file():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, tmp / name)
        m = {"binaries": built, "files": files, "not_built": not_built}
        shutil.copy(log, tmp / BUILD_LOG)  # the log of the build a cache hit reuses
        (tmp / "harness-manifest.json").write_text(json.dumps(m, indent=2) + "\n")
        try:
            tmp.rename(out)
        except OSError:  # another run finished the same build first: theirs is as good
            if not (out / "harness-manifest.json").exists():
                raise
    finally:
        shutil.rmtree(stage.parents[3], ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    log.unlink()
    seconds = time.monotonic() - t0
    progress.done(f"{len(built)} built, {len(failed)} not buildable here, in {seconds:.0f}s")
    return Built(suite, out, built, files, not_built, seconds, False, out / BUILD_LOG)


_LEFT = re.compile(r"(?:stage-|.*\.tmp-|.*-build-)(\d+)(?:\.log)?")
FAILED_LOG_DAYS = 7  # a failed build's log is named in its error: kept a while


def sweep(root: Path) -> list[Path]:
    """What runs killed mid-build left (their staging copies, half outputs, logs).

    Each carries its run's pid: a pid that no longer runs cannot finish it."""
    gone = []
    for p in root.iterdir():
        m = _LEFT.fullmatch(p.name)
        if not m or _alive(int(m.group(1))):
            continue
        if p.suffix == ".log" and time.time() - p.stat().st_mtime < FAILED_LOG_DAYS * 86400:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stub(name: str, why: str) -> str:
    """A not-built test in the guest: a skip that says why."""
    return (
        f"#!/bin/sh\necho {shlex.quote(f'# SKIP: {name} was not built: {why}')}\nexit {KSFT_SKIP}\n"
    )


# the guest side: /kselftest/run SUITE categories|tests WORDS..., with bash (run_vmtests.sh
# needs it) and each binary behind /kselftest/watchdog (the per-test time limit)
RUNNER = r"""#!/bin/bash
# generated by harness: run a kselftest suite as TAP on the console
suite=$1; mode=$2; shift 2
cd "/kselftest/$suite" || { echo "# harness: no /kselftest/$suite"; exit 1; }
export PATH="/kselftest/$suite:$PATH"
if [ "$mode" = categories ]; then
	runner=$(cat .harness-runner)
	if [ "$#" -gt 0 ]; then "./$runner" -t "$*"; else "./$runner"; fi
	echo "# harness: $runner exit $?"
	exit 0
fi
echo "TAP version 13"
n=0
for t in "$@"; do
	n=$((n + 1))
	echo "# running ./$t"
	(eval "./$t" 2>&1) | sed -e 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) echo "ok $n $t" ;;
	4) echo "ok $n $t # SKIP" ;;
	*) echo "not ok $n $t # exit=$rc" ;;
	esac
done
echo "1..$n"
exit 0
"""

WATCHDOG = r"""#!/bin/sh
# generated by harness: "$@" with a time limit of $HARNESS_TEST_TIMEOUT seconds; the test
# runs in its own session so the kill takes its children too. While it runs, a line on the
# console every 30 s says so: a quiet test is not a hung guest. The timer writes nowhere
# near the test's output pipe, so the runner never waits for it.
t=${HARNESS_TEST_TIMEOUT:-300}
beat=${HARNESS_HEARTBEAT:-/dev/console}
s=${HARNESS_HEARTBEAT_EVERY:-30}; [ "$t" -lt "$s" ] && s=$t
setsid "$@" &
pid=$!
( exec </dev/null >/dev/null 2>&1
  n=0
  while [ "$n" -lt "$t" ]; do
	d=$s; [ $((n + d)) -gt "$t" ] && d=$((t - n))
	sleep "$d"; n=$((n + d))
	[ "$n" -lt "$t" ] && echo "harness: ${1##*/} running for ${n}s" >> "$beat"
  done
  : > "/tmp/.harness-timeout-$pid"
  kill -KILL -"$pid" "$pid" ) &
wd=$!
wait "$pid"
rc=$?
kill "$wd" 2>/dev/null
if [ -e "/tmp/.harness-timeout-$pid" ]; then
	rm -f "/tmp/.harness-timeout-$pid"
	echo "# harness: TIMEOUT after ${t}s: ${1##*/}"
fi
exit "$rc"
"""


def wrapper(suite: str, name: str) -> str:
    return f'#!/bin/sh\nexec /kselftest/watchdog /kselftest/{suite}/.real/{name} "$@"\n'


def guest_command(suite: str, categories: list[str], tests: list[str], test_timeout: int) -> str:
    """The step's shell line in the guest."""
    mode, words = ("tests", tests) if tests else ("categories", categories)
    return (f"HARNESS_TEST_TIMEOUT={test_timeout} /kselftest/run {suite} {mode} "
            + " ".join(shlex.quote(w) for w in words)).rstrip()  # fmt: skip


def guest_entries(built: Built) -> list[tuple[str, int, bytes]]:
    """(path, mode, data) of the suite in the initramfs: wrappers where the binaries
    were, the binaries under .real/, stubs for what did not build, the scripts."""
    s = built.suite
    out: list[tuple[str, int, bytes]] = [(f"kselftest/{s}/.harness-runner", 0o644,
                                          RUNNERS[s].encode())]  # fmt: skip
    for name in built.binaries:
        out.append((f"kselftest/{s}/.real/{name}", 0o755, (built.dir / name).read_bytes()))
        out.append((f"kselftest/{s}/{name}", 0o755, wrapper(s, name).encode()))
    for name, why in built.not_built.items():
        out.append((f"kselftest/{s}/{name}", 0o755, stub(name, why).encode()))
    for name in built.files:
        p = built.dir / name
        if p.is_file():
            out.append((f"kselftest/{s}/{name}", 0o755, p.read_bytes()))
    return out
