"""One run: target x scenario x kernel source -> results/<run-id>/ and an exit code."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import build as build_mod
from harness import console, patches, qemu, rootfs, source
from harness.config import Scenario, Target, load_scenario, load_target
from harness.errors import (
    EXIT_USAGE,
    BuildError,
    ConfigError,
    HarnessError,
    InfraError,
    NotApplicable,
)
from harness.oops import parse
from harness.results import Metadata, new_run_dir, summary_text, write_junit, write_reports
from harness.verdict import Verdict, decide

log = logging.getLogger(__name__)


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


@dataclass
class RunOutcome:
    run_id: str
    results_dir: Path
    verdict: Verdict
    reports: list
    summary: str


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _argv_string(opts: RunOptions) -> str:
    parts = ["harness", "run", opts.target, "--scenario", opts.scenario]
    if opts.kernel:
        parts += ["--kernel", opts.kernel]
    for p in opts.patches:
        parts += ["--patch", str(p)]
    return shlex.join(parts)


def select_patches(
    scenario: Scenario, src: source.KernelSource, user: tuple[Path, ...]
) -> tuple[list[Path], object, str]:
    """Scenario patches + the variant for this kernel version + the user's patches."""
    variant = None
    note = ""
    if scenario.variants:
        variant = scenario.variant_for(src.version)
        if variant is None:
            ranges = ", ".join(v.versions for v in scenario.variants)
            raise ConfigError(
                f"{scenario.path}: no variant for kernel {src.version_str} "
                f"(variants cover: {ranges})"
            )
        note = f"variant for kernel {variant.versions}" + (
            f": {variant.note}" if variant.note else ""
        )
    chosen = list(scenario.patches) + (list(variant.patches) if variant else [])
    for p in user:
        if not p.exists():
            raise ConfigError(f"--patch {p}: no such file")
        chosen.append(p.resolve())
    return chosen, variant, note


def execute(opts: RunOptions) -> RunOutcome:
    """Build, boot, parse, judge; everything a run writes goes to its results folder."""
    target: Target = load_target(opts.target)
    scenario: Scenario = load_scenario(opts.scenario)
    run_id, rdir = new_run_dir(target.name, scenario.name, opts.results_root)
    meta = Metadata(
        rdir / "metadata.json",
        {
            "run_id": run_id,
            "results_dir": str(rdir),
            "target": target.name,
            "scenario": scenario.name,
            "canary": scenario.canary,
            "command": _argv_string(opts),
            "started": dt.datetime.now(dt.UTC).isoformat(),
            "host": {
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "node": platform.node(),
            },
        },
    )
    reports: list = []
    verdict: Verdict | None = None
    try:
        verdict, reports = _stages(opts, target, scenario, rdir, meta)
    except NotApplicable as e:
        verdict = Verdict(
            "not-applicable",
            EXIT_USAGE,
            f"scenario {scenario.name} does not apply to target {target.name}: kernel lacks {e}"
            + (f". {scenario.not_applicable_hint}" if scenario.not_applicable_hint else ""),
        )
    except HarnessError as e:
        kind = {BuildError: "build-error", InfraError: "infra-error"}.get(type(e), "config-error")
        lines = str(e).splitlines() or [type(e).__name__]
        verdict = Verdict(kind, e.exit_code, lines[0], lines[1:])
    finally:
        if verdict is not None:
            meta.update(
                status="complete",
                finished=dt.datetime.now(dt.UTC).isoformat(),
                verdict=verdict.verdict,
                exit_code=verdict.exit_code,
                summary=verdict.summary,
                canary_result=verdict.canary,
            )
        else:
            meta.update(status="incomplete", finished=dt.datetime.now(dt.UTC).isoformat())
    text = summary_text(meta.data, verdict, reports)
    (rdir / "summary.txt").write_text(text)
    if not (rdir / "junit.xml").exists():
        write_junit(rdir / "junit.xml", target.name, scenario.name, verdict, 0.0, "", reports)
    return RunOutcome(run_id, rdir, verdict, reports, text)


def _stages(
    opts: RunOptions, target: Target, scenario: Scenario, rdir: Path, meta: Metadata
) -> tuple[Verdict, list]:
    cache = source.cache_root()
    src = source.resolve(opts.kernel, cache)
    chosen, variant, note = select_patches(scenario, src, opts.patches)
    if note and not opts.quiet:
        print(f"[scenario] {scenario.name}: {note} (kernel {src.version_str})", file=sys.stderr)
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
        variant=variant.versions if variant else None,
        variant_note=note,
        patches=[{"path": str(p), "sha256": _sha(p)} for p in chosen],
    )
    requires = {opt: "y" for opt in scenario.requires_config}
    try:
        with patches.applied(src.tree, chosen, rdir / "patches"):
            result = build_mod.build(
                target, src, cache, jobs=opts.jobs, quiet=opts.quiet, requires=requires
            )
    finally:
        blog = build_mod.build_dir_for(target, src, cache) / "build.log"
        if blog.exists():
            shutil.copy(blog, rdir / "build.log")
    meta.update(
        build={
            "dir": str(result.build_dir),
            "image": str(result.image),
            "vmlinux": str(result.vmlinux),
            "seconds": round(result.seconds, 1),
            "steps": result.steps,
            "commands": result.commands,
        }
    )
    nonce = rdir.name[-6:]
    initrd = rootfs.build_initramfs(target, scenario, cache, rdir / "initramfs.cpio.gz", nonce)
    accel = qemu.choose_accel(target, opts.accel)
    cmdline = qemu.kernel_cmdline(target, scenario.cmdline)
    argv = qemu.command_line(target, result.image, initrd, cmdline, accel.accel)
    meta.update(
        boot={"argv": argv, "accel": accel.accel, "accel_reason": accel.reason},
        reproducer={
            "build": result.commands,
            "boot": qemu.shell_line(argv),
            "harness": meta.data["command"],
        },
    )
    if not shutil.which(argv[0]):
        raise InfraError(f"{argv[0]} not found; run ./bootstrap.sh")
    boot = console.boot(
        argv,
        rdir / "console.log",
        nonce,
        total_timeout=opts.boot_timeout or target.boot_timeout,
        silence_timeout=target.silence_timeout,
        quiet=opts.quiet,
    )
    reports = parse(boot.console)
    _symbolize(reports, result.vmlinux, target)
    write_reports(rdir / "reports.json", reports)
    expect = variant.expect if variant else None
    verdict = decide(boot, reports, scenario, expect)
    meta.update(
        boot={
            **meta.data["boot"],
            "seconds": round(boot.seconds, 1),
            "ending": boot.ending,
            "exit_status": boot.exit_status,
            "started": boot.started,
            "done": boot.done,
            "steps": [s.__dict__ for s in boot.steps],
        }
    )
    write_junit(
        rdir / "junit.xml",
        target.name,
        scenario.name,
        verdict,
        result.seconds + boot.seconds,
        boot.console[-4000:],
        reports,
    )
    return verdict, reports


def _symbolize(reports: list, vmlinux: Path, target: Target) -> None:
    if not reports or not vmlinux.exists():
        return
    try:
        from harness.oops.symbolize import symbolize
    except ImportError:  # pragma: no cover - symbolisation is optional
        return
    symbolize(reports, vmlinux, addr2line=f"{target.cross_compile}addr2line")
