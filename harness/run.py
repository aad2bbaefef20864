"""One run: target x scenario x kernel source -> results/<run-id>/ and an exit code."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import build as build_mod
from harness import (
    console,
    hypervisor,
    known,
    kselftest,
    ktap,
    markers,
    patches,
    qemu,
    rootfs,
    source,
    variants,
)
from harness import machine as machine_mod
from harness.config import Scenario, Target, Variant, load_scenario, load_target, read_fragment
from harness.errors import (
    EXIT_INFRA,
    EXIT_USAGE,
    BuildError,
    ConfigError,
    HarnessError,
    InfraError,
    NotApplicable,
    StaleError,
)
from harness.fsutil import atomic_write_text
from harness.oops import parse
from harness.oops.model import Report
from harness.results import (
    Metadata,
    new_run_dir,
    summary_text,
    write_junit,
    write_report_text,
    write_reports,
)
from harness.ssh import HostKeyError
from harness.verdict import Kind, Verdict, decide

log = logging.getLogger(__name__)
HOST_KEY_CAUSE = "ssh host key refused"  # a bisection aborts on it (no commit is to blame)


@dataclass
class RunOptions:
    target: str
    scenario: str = "boot"
    kernel: str | None = None
    patches: tuple[Path, ...] = ()
    accel: str | None = None
    jobs: int | None = None
    quiet: bool = False
    results_root: Path | None = None
    boot_timeout: int | None = None
    clean: bool = False  # a canary's clean twin: its steps and cmdline without its patches
    cmdline: str = ""  # appended to the target's and the scenario's kernel command line
    remote: machine_mod.RemoteOptions | None = None  # --host: QEMU runs there, over SSH

    def argv(self, *verb: str) -> list[str]:
        """The harness command line that repeats this run (it never carries a secret)."""
        out = ["harness", *(verb or ("run",)), self.target, "--scenario", self.scenario]
        if self.kernel:
            out += ["--kernel", self.kernel]
        for p in self.patches:
            out += ["--patch", str(p)]
        if self.accel and self.accel != "auto":
            out += ["--accel", self.accel]
        if self.boot_timeout:
            out += ["--timeout", str(self.boot_timeout)]
        if self.clean:
            out.append("--clean")
        if self.cmdline:
            out += ["--cmdline", self.cmdline]
        return out + remote_argv(self.remote)

    def command(self, *verb: str) -> str:
        return shlex.join(self.argv(*verb))

    @classmethod
    def from_args(cls, args: Any) -> RunOptions:
        """From the flags `harness run` and `harness lava run|job|submit` share."""
        return cls(
            target=args.target,
            scenario=args.scenario,
            kernel=args.kernel,
            patches=tuple(Path(p) for p in args.patch or ()),
            accel=args.accel,
            jobs=args.jobs,
            quiet=args.quiet,
            results_root=Path(args.results) if args.results else None,
            boot_timeout=args.timeout,
            clean=getattr(args, "clean", False),
            cmdline=check_cmdline(getattr(args, "cmdline", None) or ""),
            remote=remote_from_args(args),
        )


def remote_from_args(args: Any) -> machine_mod.RemoteOptions | None:
    """--host, --known-hosts, --identity, --remote-dir (run, bisect, nightly)."""
    host = getattr(args, "host", None)
    if not host:
        for flag in ("known_hosts", "identity", "remote_dir"):
            if getattr(args, flag, None):
                raise ConfigError(f"--{flag.replace('_', '-')} needs --host")
        return None
    return machine_mod.RemoteOptions.make(
        host, getattr(args, "known_hosts", None), getattr(args, "identity", None),
        getattr(args, "remote_dir", None),
    )  # fmt: skip


def remote_from_argv(argv: list[str]) -> machine_mod.RemoteOptions | None:
    """remote_argv() read back (a nightly worker's spec)."""
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    return remote_from_args(
        argparse.Namespace(**{k.lstrip("-").replace("-", "_"): v for k, v in flags.items()})
    )


def remote_argv(remote: machine_mod.RemoteOptions | None) -> list[str]:
    """The flags that repeat remote (paths and a host name: never a secret)."""
    if remote is None:
        return []
    out = ["--host", str(remote.ssh.host)]
    if remote.ssh.known_hosts:
        out += ["--known-hosts", str(remote.ssh.known_hosts)]
    if remote.ssh.identity:
        out += ["--identity", str(remote.ssh.identity)]
    if remote.base_dir != machine_mod.REMOTE_BASE:
        out += ["--remote-dir", remote.base_dir]
    return out


@dataclass
class RunOutcome:
    run_id: str
    results_dir: Path
    verdict: Verdict
    reports: list[Report]
    summary: str
    build_seconds: float = 0.0
    build_steps: int = 0
    boot_seconds: float = 0.0


def check_cmdline(text: str) -> str:
    """A --cmdline value: one line of printable words, spaces normalised."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ConfigError(f"--cmdline {text!r}: control characters (a newline?) are not allowed")
    return " ".join(text.split())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class PatchPlan:
    """What a run injects: a variant (the first candidate that applies exactly), the
    scenario's own patches with it, then the user's."""

    base: list[Path]  # the scenario's patches, applied with whichever variant
    candidates: list[variants.Candidate]
    user: list[Path]
    clean: bool = False

    @property
    def alternatives(self) -> list[list[Path]]:
        return [[*self.base, *c.patches] for c in self.candidates]

    @property
    def patches(self) -> list[Path]:
        """Applied after the variant (all of them when the scenario has no variants)."""
        return self.user if self.candidates else [*self.base, *self.user]

    def chosen(self, index: int | None, version: str) -> tuple[Variant | None, str]:
        """The variant kept, and the note that says which and why."""
        cand = self.candidates[index] if index is not None and self.candidates else None
        note = cand.describe(version) if cand else ""
        if self.clean:
            note = (note + "; " if note else "") + "clean twin: the bug patches are left out"
        return (cand.variant if cand else None), note


def select_patches(
    scenario: Scenario, src: source.KernelSource, user: tuple[Path, ...], *, clean: bool = False
) -> PatchPlan:
    """The scenario's patches, its variants to try for this kernel, and the user's patches.

    clean (a canary's twin) keeps the variant's non-bug parts (requires_console, and an
    enabler patch named in `enablers`) and drops the bug.
    """
    cands = variants.candidates(scenario, src.version, clean=clean)
    base = [] if clean else list(scenario.patches)
    mine = []
    for p in user:
        if not p.exists():
            raise ConfigError(f"--patch {p}: no such file")
        mine.append(p.resolve())
    return PatchPlan(base, cands, mine, clean)


@dataclass
class Prepared:
    """Everything up to the boot: shared by `harness run`, LAVA jobs and bisect steps."""

    opts: RunOptions
    target: Target
    scenario: Scenario
    rdir: Path
    meta: Metadata
    source: source.KernelSource | None = None
    variant: Variant | None = None
    build: build_mod.BuildResult | None = None
    initrd: Path | None = None
    cmdline: str = ""
    nonce: str = ""
    argv: list[str] = field(default_factory=list)
    known_issues: list[known.KnownIssue] = field(default_factory=list)
    boot_timeout: int = 0
    accel: str = ""
    boot_seconds: float = 0.0
    hv_image: Path | None = None


def start(opts: RunOptions) -> Prepared:
    """Load target and scenario, create the results folder (marked incomplete)."""
    target: Target = load_target(opts.target)
    scenario: Scenario = load_scenario(opts.scenario)
    if opts.clean and not scenario.canary:
        raise ConfigError(
            f"--clean: {scenario.name} is not a canary (only a canary has a clean twin); "
            "run it without --clean"
        )
    issues = known.load()  # a bad known-issues file fails before anything is built
    run_id, rdir = new_run_dir(target.name, scenario.name, opts.results_root)
    meta = Metadata(
        rdir / "metadata.json",
        {
            "run_id": run_id,
            "results_dir": str(rdir),
            "target": target.name,
            "scenario": scenario.name,
            "canary": scenario.canary,
            "command": opts.command(),
            "started": dt.datetime.now(dt.UTC).isoformat(),
            "host": {
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "node": platform.node(),
            },
        },
    )
    return Prepared(opts, target, scenario, rdir, meta, nonce=run_id[-6:], known_issues=issues)


def check_target_fits(scenario: Scenario, target: Target) -> None:
    """A scenario made for another arch or hypervisor would only ever 'miss': say so first."""
    if scenario.arches and target.arch not in scenario.arches:
        raise NotApplicable(f"it is for {', '.join(scenario.arches)}, the target is {target.arch}")
    hv = target.hypervisor.kind if target.hypervisor else None
    if scenario.requires_hypervisor and hv != scenario.requires_hypervisor:
        raise NotApplicable(
            f"it needs the kernel under {scenario.requires_hypervisor}; the target boots "
            + (f"under {hv}" if hv else "without a hypervisor")
        )


def finish(prep: Prepared, body: Callable[[Prepared], tuple[Verdict, list[Report]]]) -> RunOutcome:
    """Run body, turn harness errors into verdicts, and close the results folder.

    Ctrl-C and SIGTERM leave the folder marked incomplete and propagate (exit 130). Any
    other exception is a crash of the harness: its traceback goes to traceback.txt and
    the verdict is internal-error (exit 3), never one a bisection or CI takes for a
    regression or a build error.
    """
    target, scenario, meta, rdir = prep.target, prep.scenario, prep.meta, prep.rdir
    reports: list[Report] = []
    verdict: Verdict | None = None
    try:
        verdict, reports = body(prep)
    except NotApplicable as e:
        verdict = Verdict(
            Kind.NOT_APPLICABLE,
            EXIT_USAGE,
            f"scenario {scenario.name} does not apply to target {target.name}: {e}"
            + (f". {scenario.not_applicable_hint}" if scenario.not_applicable_hint else ""),
        )
    except HarnessError as e:
        lines = str(e).splitlines() or [type(e).__name__]
        verdict = Verdict(_kind_of(e), e.exit_code, lines[0], lines[1:])
        if isinstance(e, patches.PatchError):
            verdict.cause = e.reason
        elif isinstance(e, HostKeyError):
            verdict.cause = HOST_KEY_CAUSE
    except Exception as e:  # a bug of ours: say so, keep the evidence
        tb_file = rdir / "traceback.txt"
        atomic_write_text(tb_file, traceback.format_exc())
        log.error("harness crashed: %s: %s (traceback in %s)", type(e).__name__, e, tb_file)
        verdict = Verdict(
            Kind.INTERNAL_ERROR,
            EXIT_INFRA,
            f"the harness crashed: {type(e).__name__}: {e}",
            [f"traceback: {tb_file}"],
        )
    finally:
        if verdict is not None:
            meta.update(
                status="complete",
                finished=dt.datetime.now(dt.UTC).isoformat(),
                verdict=verdict.verdict,
                exit_code=verdict.exit_code,
                summary=verdict.summary,
                canary_result=verdict.canary,
                **({"cause": verdict.cause} if verdict.cause else {}),
            )
        else:
            meta.update(status="incomplete", finished=dt.datetime.now(dt.UTC).isoformat())
    text = summary_text(meta.data, verdict, reports)  # the record, rendered
    atomic_write_text(rdir / "summary.txt", text)
    if not (rdir / "junit.xml").exists():
        write_junit(rdir / "junit.xml", target.name, scenario.name, verdict, 0.0, "", reports)
    return RunOutcome(
        rdir.name,
        rdir,
        verdict,
        reports,
        text,
        build_seconds=prep.build.seconds if prep.build else 0.0,
        build_steps=prep.build.steps if prep.build else 0,
        boot_seconds=prep.boot_seconds,
    )


def _kind_of(e: HarnessError) -> Kind:
    for cls, kind in (
        (patches.PatchError, Kind.PATCH_ERROR),
        (BuildError, Kind.BUILD_ERROR),
        (InfraError, Kind.INFRA_ERROR),
        (StaleError, Kind.STALE),
    ):
        if isinstance(e, cls):
            return kind
    return Kind.CONFIG_ERROR


def execute(opts: RunOptions) -> RunOutcome:
    """Build, boot under QEMU (here or on --host), parse, judge; all into the results folder."""

    def body(prep: Prepared) -> tuple[Verdict, list[Report]]:
        # connected first: a refused host key costs seconds, not a kernel build
        with machine_mod.opened(opts.remote, prep.target) as m:
            return boot_and_judge(prepare(prep, m), m)

    return finish(start(opts), body)


def prepare(prep: Prepared, machine: machine_mod.Machine | None = None) -> Prepared:
    """Source, patches, build, initramfs and the QEMU command line (with this machine's
    accelerator; the paths in it are this machine's)."""
    opts, target, scenario, meta, rdir = prep.opts, prep.target, prep.scenario, prep.meta, prep.rdir
    check_target_fits(scenario, target)
    cache = source.cache_root()
    src = source.resolve(opts.kernel, cache)
    plan = select_patches(scenario, src, opts.patches, clean=opts.clean)
    meta.update(
        kernel={
            "origin": src.origin,
            "name": src.name,
            "kind": src.kind,
            "description": src.description,
            "version": src.version_str,
            "tree": str(src.tree),
            "commit": src.commit,
            "subject": src.subject,
        },
    )
    requires = {opt: "y" for opt in scenario.requires_config}
    keep_extra = (target.lava.dtb,) if target.lava and target.lava.dtb else ()
    try:
        with patches.applied(
            src.tree,
            plan.patches,
            rdir / "patches",
            checkout=src.checkout,
            alternatives=plan.alternatives,
        ) as done:
            variant, note = plan.chosen(done.alternative, src.version_str)
            alt = done.alternative
            applied = [*(plan.alternatives[alt] if alt is not None else []), *plan.patches]
            if note and not opts.quiet:
                print(f"[scenario] {scenario.name}: {note} (kernel {src.version_str})",
                      file=sys.stderr)  # fmt: skip
            meta.update(
                variant=variant.versions if variant else None,
                variant_note=note,
                variants_tried=[
                    {"kernel": plan.candidates[i].variant.versions, "error": str(e)[:2000]}
                    for i, e in done.failures
                ],
                patches=[{"path": str(p), "sha256": _sha(p)} for p in applied],
            )
            result = build_mod.build(
                target,
                src,
                cache,
                jobs=opts.jobs,
                quiet=opts.quiet,
                requires=requires,
                hold_fds=(done.fd,),
                keep_in=rdir / "kernel",
                keep_extra=keep_extra,
            )
            # from the same (patched) tree, still held: its selftests and uapi headers
            suites = [
                kselftest.build(
                    target,
                    src.tree,
                    result.build_dir,
                    name,
                    cache,
                    jobs=opts.jobs,
                    quiet=opts.quiet,
                )  # fmt: skip
                for name in scenario.kselftests
            ]
    except patches.NoAlternativeApplies as e:
        failures = [(plan.candidates[i], err) for i, err in e.failures]
        raise variants.stale(scenario, src.version_str, src.version, failures) from None
    finally:
        blog = build_mod.build_dir_for(target, src, cache) / "build.log"
        if blog.exists():
            shutil.copy(blog, rdir / "build.log")
    meta.update(
        build={
            "dir": str(result.build_dir),
            "built_image": str(result.build_dir / target.image),
            "image": str(result.image),
            "vmlinux": str(result.vmlinux),
            "seconds": round(result.seconds, 1),
            "steps": result.steps,
            "commands": result.commands,
        }
    )
    for b in suites:
        if b.log is not None and b.log.exists():
            shutil.copy(b.log, rdir / f"kselftest-{b.suite}-build.log")
    if suites:
        meta.update(kselftests=[b.to_dict() for b in suites])
    initrd = rootfs.build_initramfs(
        target, scenario, cache, rdir / "initramfs.cpio.gz", prep.nonce, kselftests=suites
    )
    m = machine or machine_mod.LocalMachine()
    accel = m.choose_accel(target, opts.accel)
    cmdline = qemu.kernel_cmdline(target, scenario.cmdline, opts.cmdline)
    hv_image = hypervisor.image_for(target.hypervisor, cache) if target.hypervisor else None
    if hv_image is not None:
        hv_image = build_mod.keep(hv_image.parent, [hv_image], rdir / "kernel")[hv_image]
    argv = qemu.command_line(target, result.image, initrd, cmdline, accel.accel, hv_image)
    write_reproducer(rdir, argv)
    boot_meta: dict[str, Any] = {
        "argv": argv,
        "accel": accel.accel,
        "accel_reason": accel.reason,
        "cmdline": cmdline,
        "extra_cmdline": opts.cmdline,
    }
    if target.hypervisor and hv_image:
        boot_meta["hypervisor"] = {
            "kind": target.hypervisor.kind,
            "package": target.hypervisor.package,
            "image": str(hv_image),
            "sha256": _sha(hv_image),
            "cmdline": target.hypervisor.cmdline,
        }
    prep.boot_timeout = opts.boot_timeout or boot_timeout_for(target, scenario)
    prep.accel = accel.accel
    meta.update(
        boot=boot_meta,
        boot_timeout=prep.boot_timeout,
        reproducer={
            "build": result.commands,
            "boot": qemu.shell_line(argv),
            "harness": opts.command(),
        },
    )
    prep.source, prep.variant, prep.build = src, variant, result
    prep.initrd, prep.cmdline, prep.argv = initrd, cmdline, argv
    prep.hv_image = hv_image
    return prep


BOOT_ALLOWANCE = 300  # seconds for the boot itself, on top of a scenario's long steps


def boot_timeout_for(target: Target, scenario: Scenario) -> int:
    """The target's total limit, or more when the scenario's steps say they take longer
    (a kselftest suite under TCG runs for tens of minutes)."""
    return max(target.boot_timeout, sum(s.timeout for s in scenario.steps) + BOOT_ALLOWANCE)


def write_reproducer(rdir: Path, argv: list[str]) -> Path:
    """reproduce.sh: the recorded QEMU line on the folder's own copies, from anywhere."""
    prefix = str(rdir) + "/"

    def word(arg: str) -> str:
        if prefix not in arg:
            return shlex.quote(arg)
        escaped = re.sub(r'([\\"$`])', r"\\\1", arg)  # for a double-quoted word
        return '"' + escaped.replace(re.sub(r'([\\"$`])', r"\\\1", prefix), "$here/") + '"'

    words = [word(a) for a in argv]
    text = (
        "#!/bin/sh\n"
        "# Boot this run's kernel again, as the harness did (the console is on stdout).\n"
        'here=$(cd "$(dirname "$0")" && pwd)\n'
        "exec " + " ".join(words) + "\n"
    )
    path = rdir / "reproduce.sh"
    atomic_write_text(path, text)
    path.chmod(0o755)
    return path


def boot_and_judge(
    prep: Prepared, machine: machine_mod.Machine | None = None
) -> tuple[Verdict, list[Report]]:
    """Boot the prepared kernel on the machine (default: QEMU here) and judge its console."""
    m = machine or machine_mod.LocalMachine()
    assert prep.build is not None and prep.initrd is not None
    req = machine_mod.BootRequest(
        prep.target, prep.build.image, prep.initrd, prep.cmdline, prep.accel, prep.hv_image,
        prep.rdir,
    )  # fmt: skip
    t_boot = time.monotonic()
    try:
        stream = m.start(req)
    finally:
        prep.meta.merge("boot", machine=m.describe())
    boot = console.boot(
        stream,
        prep.rdir / "console.log",
        prep.nonce,
        total_timeout=prep.boot_timeout,
        silence_timeout=prep.target.silence_timeout,
        crash_quiet=prep.target.crash_quiet,
        quiet=prep.opts.quiet,
    )
    return judge(prep, boot, t_boot)


def judge(prep: Prepared, boot: console.BootResult, t_boot: float) -> tuple[Verdict, list[Report]]:
    """Parse the console into reports and decide; writes reports.json and junit.xml."""
    meta, rdir, result = prep.meta, prep.rdir, prep.build
    assert result is not None
    prefixes = _source_prefixes(prep)
    reports = parse(boot.console, source_prefixes=prefixes)
    _symbolize(reports, result.vmlinux, prep.target, prefixes)
    seen = known.split(
        reports,
        prep.known_issues,
        target=prep.target.name,
        scenario=prep.scenario.name,
        version=prep.source.version if prep.source else (0, 0, 0),
    )
    tests = judge_tests(prep, boot.console, reports, seen)
    write_reports(rdir / "reports.json", reports, {i: k.id for i, k in seen.items()},
                  tests=tests)  # fmt: skip
    write_report_text(rdir / "report.txt", reports, boot.console)
    expect = prep.variant.expect if prep.variant and not prep.opts.clean else None
    required = prep.variant.requires_console if prep.variant else ()
    verdict = decide(boot, reports, prep.scenario, expect, required, seen, tests)
    meta.update(known_issues=verdict.known)
    meta.update(
        timings={
            "build": round(result.seconds, 2),
            "boot": round(boot.seconds, 2),
            "boot_to_verdict": round(time.monotonic() - t_boot, 2),
        },
    )
    prep.boot_seconds = boot.seconds
    meta.merge(
        "boot",
        seconds=round(boot.seconds, 1),
        ending=boot.ending,
        exit_status=boot.exit_status,
        started=boot.started,
        done=boot.done,
        steps=[s.__dict__ for s in boot.steps],
    )
    write_junit(
        rdir / "junit.xml",
        prep.target.name,
        prep.scenario.name,
        verdict,
        result.seconds + boot.seconds,
        boot.console[-4000:],
        reports,
        tests,
    )
    return verdict, reports


def judge_tests(
    prep: Prepared, console_text: str, reports: list[Report], known_issues: Iterable[int] = ()
) -> list[ktap.TestResult]:
    """The kernel's own tests in the console (kselftest, KUnit), per test: named,
    crash reports attributed, the scenario's known failures applied; tests.json."""
    user_from = markers.start_offset(console_text, prep.nonce)
    tests = ktap.parse(console_text, user_from=user_from)
    known_issues = set(known_issues)
    user_docs = {t.doc for t in tests if not t.kernel}
    missing = prep.scenario.kselftests[len(user_docs) :] if user_from is not None else ()
    gave_up = _runner_exits(console_text[user_from or 0 :])[len(user_docs) :]
    for n, _suite in enumerate(missing):
        # a suite that printed no TAP at all tested nothing: never a silent pass
        name, why, said = "no-tap", "the kselftest step printed no TAP document", []
        if n < len(gave_up):  # the runner (run_vmtests.sh) gave up: it fails, saying why
            name, rc, last = gave_up[n]
            why = f"{name} printed no TAP document and exited {rc}" + (
                f" after {last!r}" if last else ""
            )
            said = [last] if last else []
        tests.append(ktap.TestResult(name, ktap.Status.ERROR, doc=1_000_000 + n,
                                     reason=why, log=said))  # fmt: skip
    if not tests:
        return []
    ktap.name_all(tests, prep.scenario.kselftests)
    hits = [(at, i, r.title, i in known_issues)
            for i, r in enumerate(reports) for at in (r.start, *r.repeats)]  # fmt: skip
    ktap.attribute(tests, hits)
    version = prep.source.version if prep.source else (0, 0, 0)
    config = prep.build.build_dir / ".config" if prep.build else None
    # unknown (no build of ours): no failure is excused by what the kernel might lack
    have = read_fragment(config) if config is not None and config.exists() else None

    def known(path: str) -> tuple[ktap.Status, str] | None:
        k = prep.scenario.known_failure(path, prep.target.arch, version, prep.accel,
                                        prep.target.qemu.memory_mb)  # fmt: skip
        if k is None:
            return None
        lacking = [o for o in k.needs if have is not None and have.get(o, "n") == "n"]
        if lacking:
            return ktap.Status.SKIP, f"the kernel lacks {', '.join(lacking)}: {k.reason}"
        if k.needs:
            return None  # it has what the test needs: a failure like any other
        return ktap.Status.XFAIL, f"known failure: {k.reason}"

    ktap.apply_known(tests, known)
    counts = ktap.counts(tests)
    prep.meta.update(tests=counts)
    units = [
        {"path": t.path, "status": str(t.status), "reason": t.reason,
         "reports": [reports[i].title for i in t.reports]}
        for t in ktap.units(tests)
    ]  # fmt: skip
    doc = {"counts": counts, "units": units, "tests": [t.to_dict() for t in tests]}
    atomic_write_text(prep.rdir / "tests.json", json.dumps(doc, indent=2) + "\n")
    return tests


_RUNNER_EXIT = re.compile(r"^# harness: (\S+) exit (\d+)$")
_OURS = ("harness: ", "HARNESS: ")  # the watchdog's heartbeats, the init's markers


def _runner_exits(text: str) -> list[tuple[str, int, str]]:
    """Each categories run's end in the guest: (runner, exit code, its last line before
    that, kernel lines and the harness's heartbeats skipped)."""
    out: list[tuple[str, int, str]] = []
    last = ""
    for line in text.splitlines():
        line = line.rstrip("\r")
        m = _RUNNER_EXIT.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)), last))
            last = ""
        elif (
            (said := line.strip()) and not ktap.TIMESTAMP.match(said) and not said.startswith(_OURS)
        ):
            last = said[:200]
    return out


def _source_prefixes(prep: Prepared) -> list[str]:
    """How this build spells its kernel tree in paths (reports say mm/x.c instead)."""
    from harness.oops.paths import prefixes_for

    if prep.source is None:
        return []
    return prefixes_for(prep.source.tree, prep.build.build_dir if prep.build else None)


def _symbolize(reports: list[Report], vmlinux: Path, target: Target, prefixes: list[str]) -> None:
    if not reports or not vmlinux.exists():
        return
    try:
        from harness.oops.symbolize import symbolize
    except ImportError:  # pragma: no cover - symbolisation is optional
        return
    symbolize(reports, vmlinux, f"{target.cross_compile}addr2line", source_prefixes=prefixes)
