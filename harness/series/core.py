"""`harness series`: a posted series tested as a reviewer would, A/B against its base.

The series is applied with `git am` in the harness worktree on its base, every patch is
built in order (incrementally: the build directory follows the patches), and the matrix
runs on the base and on the tip. A cell that passes on the base and fails on the tip is a
regression of the series: bisect names the patch (`git bisect run` between base and tip)
and its revert on the tip confirms it. The answer is a reply mail and series.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass, field
from email.utils import getaddresses
from pathlib import Path

from harness import build as build_mod
from harness import faults, patches, source
from harness import git as gitmod
from harness.bisect import BisectOptions, bisect, bisect_reset, mail_excerpt
from harness.config import load_target
from harness.errors import (
    EXIT_INFRA,
    EXIT_PASS,
    EXIT_REGRESSION,
    BuildError,
    ConfigError,
    PatchError,
)
from harness.fsutil import atomic_write_bytes, atomic_write_text
from harness.nightly import matrix, settings
from harness.nightly.model import Attempt, Cell
from harness.results import Metadata, results_root
from harness.run import RunOptions, execute
from harness.series import mbox, reply
from harness.verdict import Kind

# what a cell of the series came to, base against tip
PASS, REGRESSION, PRE_EXISTING, FIXED, FLAKY, SKIPPED, ERROR = (
    "pass", "regression", "pre-existing", "fixed", "flaky", "skipped", "error",
)  # fmt: skip
IN_SERIES = "in-series"  # a canary whose bug the series itself brings: its patch is applied
FAILING = (Kind.FAIL, Kind.CANARY_MISSED, Kind.BUILD_ERROR)
NOT_RUN = (Kind.NOT_APPLICABLE, Kind.STALE)
# the compiler's own words: file:line:col: error: ...
_CC_ERROR = re.compile(r"^(?P<where>\S+:\d+(?::\d+)?): (?:fatal )?error: (?P<what>.*)$", re.M)
_QUOTES = str.maketrans("‘’", "''")
_AM_ENV = {"GIT_COMMITTER_NAME": "harness series", "GIT_COMMITTER_EMAIL": "harness@localhost"}


@dataclass
class SeriesOptions:
    series: Path
    kernel: str
    base: str | None = None
    targets: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    jobs: int | None = None
    retries: int = 1
    calibrate: int = 3
    results_root: Path | None = None
    sender: str | None = None
    quiet: bool = False

    def command(self, mail_base: str | None = None) -> str:
        """The command line; for a mail (mail_base), without this machine's paths."""
        if mail_base:
            argv = ["harness", "series", "series.mbox", "--kernel", "LINUX", "--base", mail_base]
        else:
            argv = ["harness", "series", str(self.series), "--kernel", self.kernel]
            argv += ["--base", self.base] if self.base else []
        argv += ["--targets", *self.targets] if self.targets else []
        argv += ["--scenarios", *self.scenarios] if self.scenarios else []
        return shlex.join(argv)


@dataclass
class PatchBuild:
    """One patch of the series built for one target."""

    target: str
    label: str
    ok: bool
    seconds: float
    steps: int
    error: str = ""  # the first compiler error, relative to the tree


@dataclass
class Side:
    """A cell on the base or on the tip: its attempts, the last one deciding."""

    verdict: str
    title: str = ""
    summary: str = ""
    runs: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    cause: str = ""  # for a patch error: already applied, or does not apply

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    @property
    def flaky(self) -> bool:
        return self.verdict == Kind.PASS and any(v in FAILING for v in self.verdicts)


@dataclass
class CellResult:
    target: str
    scenario: str
    base: Side
    tip: Side
    status: str = ""
    culprit: str = ""  # the patch label ("2/3") the regression comes from
    culprit_commit: str = ""
    revert: str = ""  # what reverting the culprit on the tip did
    bisect: str = ""  # the bisect folder
    note: str = ""


@dataclass
class SeriesResult:
    exit_code: int
    summary: str
    folder: Path


@dataclass
class Job:
    """One series on one tree: what every step after `git am` works from."""

    opts: SeriesOptions
    repo: Path
    wt: Path  # the harness worktree, held for the whole series
    series: mbox.Series
    base: str
    folder: Path
    files: list[Path]  # the patches as applied
    commits: list[str] = field(default_factory=list)  # one per patch; the last is the tip


def status_of(base: Side, tip: Side) -> str:
    """A cell's status from its base and tip results."""
    if base.verdict in NOT_RUN and tip.verdict in NOT_RUN:
        return SKIPPED
    if tip.verdict == Kind.PATCH_ERROR and tip.cause == patches.ALREADY_APPLIED:
        return IN_SERIES
    if tip.flaky:
        return FLAKY
    known = (Kind.PASS, *FAILING)
    if base.verdict not in known or tip.verdict not in known:
        return ERROR
    if not base.failing:
        return REGRESSION if tip.failing else PASS
    return PRE_EXISTING if tip.failing else FIXED


def first_compiler_error(log_text: str, tree: Path) -> str:
    """The first `file:line: error:` of a build log, its path relative to the tree."""
    m = _CC_ERROR.search(log_text)
    if not m:
        return ""
    where = re.sub(rf"^\S*?{re.escape(tree.name)}/", "", m.group("where"))
    what = m.group("what").strip().translate(_QUOTES)  # a UTF-8 locale's ‘quotes’
    return f"{where}: error: {what}"


def _say(opts: SeriesOptions, text: str) -> None:
    if not opts.quiet:
        print(f"[series] {text}", file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:48] or "series"


def _git_am(wt: Path, patch: Path) -> subprocess.CompletedProcess[str]:
    # the user's hooks and am.threeWay must not change what is tested: exact or nothing
    return subprocess.run(
        ["git", "-C", str(wt), "-c", "core.hooksPath=/dev/null", "am", "--quiet", "--no-3way",
         "--committer-date-is-author-date", str(patch)],
        capture_output=True, text=True, env={**os.environ, **_AM_ENV},
    )  # fmt: skip


def _am_in_progress(wt: Path) -> bool:
    rel = gitmod.run(wt, "rev-parse", "--git-path", "rebase-apply", check=False)
    return bool(rel) and (wt / rel if not Path(rel).is_absolute() else Path(rel)).exists()


def start_at(repo: Path, wt: Path, base: str) -> None:
    """The worktree on the base, whatever a killed series or bisect left in it."""
    if (wt / ".git").exists():
        bisect_reset(wt)
        if _am_in_progress(wt):
            gitmod.run(wt, "am", "--abort", check=False)
    source.checkout_worktree(repo, wt, base)


def apply_series(wt: Path, series: mbox.Series, files: list[Path], base: str) -> list[str]:
    """git am every patch on base in the worktree; its commits. A patch that does not apply
    exactly is named with its hunk, and the worktree goes back to the base."""
    commits: list[str] = []
    for mail, f in zip(series.patches, files, strict=True):
        proc = _git_am(wt, f)
        if proc.returncode:
            out = proc.stdout + proc.stderr
            if _am_in_progress(wt):
                gitmod.run(wt, "am", "--abort", check=False)
            gitmod.run(wt, "checkout", "--quiet", "--detach", "--force", base, check=False)
            errors = [ln for ln in out.splitlines() if ln.startswith("error:")][:6]
            text = mail.raw.decode("utf-8", "replace").rsplit("\n-- \n", 1)[0]  # no signature
            hunks = patches.failing_hunks(text, out)
            raise PatchError(
                f"patch {mail.label} ({mail.title}) does not apply on {base[:12]} "
                f"({gitmod.subject(wt, base)}):\n"
                + "\n".join(errors)
                + (f"\n{hunks}" if hunks else ""),
            )
        commits.append(gitmod.run(wt, "rev-parse", "HEAD"))
        faults.point("series:am")  # the reliability suite kills a series between patches
    return commits


def _run_side(cell: Cell, wt: Path, root: Path, opts: SeriesOptions) -> Side:
    """The cell on the tree as checked out: a failure is retried (as the nightly does),
    an infrastructure error until it goes or the retries are spent."""
    run_opts = RunOptions(
        cell.target,
        cell.scenario,
        kernel=f"{source.IN_PLACE}{wt}",
        jobs=opts.jobs,
        quiet=opts.quiet,
        results_root=root,
    )
    attempts: list[Attempt] = []
    side = Side(verdict=Kind.INFRA_ERROR)
    while not attempts or (len(attempts) <= opts.retries and matrix.needs_retry(cell, attempts)):
        out = execute(run_opts)
        v = out.verdict
        rj = out.results_dir / "reports.json"
        reports = json.loads(rj.read_text()) if rj.exists() else []
        counted = [r for r in reports if not r.get("known_issue")]
        attempts.append(Attempt(v.verdict, v.exit_code, v.summary))
        side.verdict, side.summary, side.cause = v.verdict, v.summary, v.cause
        side.title = counted[0].get("title", "") if counted else ""
        side.runs.append(str(out.results_dir))
        side.verdicts.append(v.verdict)
    return side


def _build_patches(job: Job, target: str) -> list[PatchBuild]:
    """Each patch built in order, on top of the one before (the build dir follows)."""
    opts, wt = job.opts, job.wt
    tgt = load_target(target)
    cache = source.cache_root()
    logs = job.folder / "builds" / target
    logs.mkdir(parents=True, exist_ok=True)
    out = []
    for mail, commit in zip(job.series.patches, job.commits, strict=True):
        source.checkout_worktree(job.repo, wt, commit)
        src = source.in_place(wt, cache)
        log = build_mod.build_dir_for(tgt, src, cache) / "build.log"
        try:
            res = build_mod.build(tgt, src, cache, jobs=opts.jobs, quiet=opts.quiet)
            out.append(PatchBuild(target, mail.label, True, round(res.seconds, 1), res.steps))
            _say(opts, f"{target}: patch {mail.label} builds ({res.steps} steps, "
                       f"{res.seconds:.0f}s)")  # fmt: skip
        except BuildError as e:
            text = log.read_text(errors="replace") if log.exists() else ""
            err = first_compiler_error(text, wt) or str(e).splitlines()[0]
            out.append(PatchBuild(target, mail.label, False, 0.0, 0, err))
            _say(opts, f"{target}: patch {mail.label} does NOT build: {err}")
        finally:
            if log.exists():
                shutil.copy(log, logs / f"{mail.index:04d}-build.log")
    return out


def run(opts: SeriesOptions) -> SeriesResult:
    """Apply, build patch by patch, run the matrix on base and tip, bisect, reply."""
    series = mbox.read_series(opts.series)
    repo = Path(opts.kernel).expanduser().resolve()
    if not gitmod.is_repo(repo):
        raise ConfigError(f"--kernel {opts.kernel}: not a git tree (series needs a local git tree)")
    base_ref = opts.base or series.base_commit
    if not base_ref:
        raise ConfigError(
            f"{opts.series}: no base-commit trailer (git format-patch --base); name the base "
            "with --base REF"
        )
    base = gitmod.commit(repo, base_ref)
    if not base:
        where = "--base" if opts.base else f"{opts.series}: the base-commit trailer"
        raise ConfigError(f"{where} {base_ref} is not a commit in {repo}: fetch the tree the "
                          "series was made on, or pass --base")  # fmt: skip
    targets, scenarios = settings.load(None).matrix()
    cells = matrix.plan(opts.targets or targets, opts.scenarios or scenarios)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = (opts.results_root or results_root()) / f"series-{stamp}-{_slug(series.title)}"
    folder.mkdir(parents=True)
    meta = Metadata(
        folder / "metadata.json",
        {"command": opts.command(), "series": str(opts.series), "kernel": str(repo),
         "base": base, "started": dt.datetime.now(dt.UTC).isoformat()},
    )  # fmt: skip
    files = []
    for mail in series.patches:
        f = folder / "patches" / f"{mail.index:04d}-{_slug(mail.title)}.patch"
        f.parent.mkdir(exist_ok=True)
        atomic_write_bytes(f, mail.mbox_bytes)
        files.append(f)
    _say(opts, f"{len(series.patches)} patches on {gitmod.oneline(repo, base)}; "
               f"{len(cells)} cells on base and tip")  # fmt: skip
    wt = source.harness_worktree(repo)
    with patches.holding(wt):
        start_at(repo, wt, base)
        try:
            commits = apply_series(wt, series, files, base)
        except PatchError as e:
            meta.update(status="complete", result="does-not-apply", error=str(e))
            text = f"the series does not apply: {e}\n"
            atomic_write_text(folder / "summary.txt", text)
            return SeriesResult(e.exit_code, text, folder)
        job = Job(opts, repo, wt, series, base, folder, files, commits)
        meta.update(commits=commits, tip=commits[-1])
        _say(opts, f"applied: tip {commits[-1][:12]}")
        builds, cells_out = _matrix_and_builds(job, cells)
        for c in cells_out:
            if c.status == REGRESSION:
                _find_culprit(job, c, builds)
        text, code = _finish(job, builds, cells_out)
    meta.update(status="complete", finished=dt.datetime.now(dt.UTC).isoformat(), exit_code=code)
    return SeriesResult(code, text, folder)


def _matrix_and_builds(job: Job, cells: list[Cell]) -> tuple[list[PatchBuild], list[CellResult]]:
    """Base cells, then the patches built in order, then tip cells: each target's build dir
    moves forward once."""
    opts, wt, folder = job.opts, job.wt, job.folder
    bases: dict[Cell, Side] = {}
    source.checkout_worktree(job.repo, wt, job.base)
    for cell in cells:
        _say(opts, f"base: {cell.key}")
        bases[cell] = _run_side(cell, wt, folder / "runs" / "base", opts)
        _say(opts, f"base: {cell.key}: {bases[cell].verdict} {bases[cell].title}".rstrip())
    builds: list[PatchBuild] = []
    for target in dict.fromkeys(c.target for c in cells):
        builds += _build_patches(job, target)
    source.checkout_worktree(job.repo, wt, job.commits[-1])
    out = []
    for cell in cells:
        _say(opts, f"tip: {cell.key}")
        tip = _run_side(cell, wt, folder / "runs" / "tip", opts)
        status = status_of(bases[cell], tip)
        out.append(CellResult(cell.target, cell.scenario, bases[cell], tip, status))
        _say(opts, f"tip: {cell.key}: {tip.verdict} {tip.title} -> {status}".replace("  ", " "))
    return builds, out


def _find_culprit(job: Job, c: CellResult, builds: list[PatchBuild]) -> None:
    """The first bad patch of a regression: the first that breaks the build, else bisect."""
    opts, commits = job.opts, job.commits
    if c.tip.verdict == Kind.BUILD_ERROR:
        broken = next((b for b in builds if b.target == c.target and not b.ok), None)
        if broken:
            c.culprit, c.note = broken.label, broken.error
            c.culprit_commit = commits[int(broken.label.split("/")[0]) - 1]
        return
    if c.tip.verdict != Kind.FAIL:
        c.note = f"not bisected: the tip's verdict is {c.tip.verdict}"
        return
    if len(commits) == 1:
        c.culprit, c.culprit_commit = job.series.patches[0].label, commits[0]
        c.revert = "the base without it passes"
        return
    _say(opts, f"bisecting {c.target}/{c.scenario} within the series")
    res = bisect(
        BisectOptions(
            target=c.target,
            good=job.base,
            bad=commits[-1],
            kernel=str(job.repo),
            scenario=c.scenario,
            jobs=opts.jobs,
            results_root=job.folder / "bisect",
            calibrate=opts.calibrate,
        )
    )
    c.bisect = str(res.folder)
    if not res.culprit:
        c.note = res.summary.splitlines()[0]
        return
    c.culprit_commit = res.culprit
    c.culprit = job.series.patches[commits.index(res.culprit)].label
    c.revert = res.revert


def _table(cells: list[CellResult]) -> str:
    width = max([len(f"{c.target}/{c.scenario}") for c in cells] + [4])
    rows = [f"  {'cell':{width}}  {'base':13}  {'series':13}  result"]
    for c in cells:
        rows.append(f"  {c.target + '/' + c.scenario:{width}}  {c.base.verdict:13}  "
                    f"{c.tip.verdict:13}  {c.status}")  # fmt: skip
    return "\n".join(rows)


def _builds_table(builds: list[PatchBuild], series: mbox.Series) -> str:
    rows = []
    for mail in series.patches:
        mine = [b for b in builds if b.label == mail.label]
        what = ", ".join(
            f"{b.target}: {'ok' if b.ok else 'FAILS: ' + b.error}" for b in mine
        )  # fmt: skip
        rows.append(f"  [{mail.label}] {mail.title}\n      {what}")
    return "\n".join(rows)


def _report_excerpt(c: CellResult) -> tuple[str, list[dict]]:
    """The culprit's oops as bisect saved it (else the tip's own), and its frames."""
    frames: list[dict] = []
    for run in reversed(c.tip.runs):
        rj = Path(run) / "reports.json"
        reps = json.loads(rj.read_text()) if rj.exists() else []
        hunted = [r for r in reps if r.get("title") == c.tip.title]
        if hunted:
            frames = hunted[0].get("frames") or []
            break
    for path in ([Path(c.bisect) / "culprit-report.txt"] if c.bisect else []) + [
        Path(r) / "report.txt" for r in reversed(c.tip.runs)
    ]:
        if path.exists():
            return mail_excerpt(path.read_text(errors="replace")), frames
    return "", frames


def where_defined(tree: Path, functions: list[str], arch: str) -> dict[str, str]:
    """file:line of each function's definition in the tree: where a trace without debug
    info (no line numbers from addr2line) points a reader. One git grep for all of them."""
    names = [f for f in dict.fromkeys(functions) if re.fullmatch(r"[A-Za-z_]\w*", f)]
    if not names:
        return {}
    rx = re.compile(rf"^(?:[A-Za-z_].*[ *])?({'|'.join(names)})\(")
    dirs = ("mm", "kernel", "fs", "lib", "include", f"arch/{arch}", "drivers/xen")
    specs = [f"{d}/*.{ext}" for d in dirs for ext in ("c", "h")]
    out = gitmod.run(tree, "grep", "-n", "-E", "-e", rx.pattern.replace("(?:", "("), "--",
                     *specs, check=False)  # fmt: skip
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        path, num, text = (line.split(":", 2) + ["", ""])[:3]
        m = rx.match(text)
        if not m or text.rstrip().endswith(";") or text.startswith("extern"):
            continue  # a prototype, not the definition
        rank = 0 if path.endswith(".c") else 1
        if m.group(1) not in found or rank < found[m.group(1)][0]:
            found[m.group(1)] = (rank, f"{path}:{num}")
    return {n: found[n][1] for n in names if n in found}


def _trace_lines(frames: list[dict], tree: Path, arch: str, depth: int = 10) -> list[str]:
    """The trace's functions with file:line: addr2line's where the kernel has debug
    info, else where each function is defined in the tree (said so)."""
    frames = [f for f in frames if f.get("function")][:depth]
    if not frames:
        return []
    symbolised = all(f.get("file") and f.get("line") for f in frames)
    defined = {} if symbolised else where_defined(tree, [f["function"] for f in frames], arch)
    width = max(len(f["function"]) for f in frames)
    rows = []
    for f in frames:
        loc = f"{f['file']}:{f['line']}" if f.get("file") and f.get("line") else ""
        rows.append(f"  {f['function']:{width}}  {loc or defined.get(f['function'], '?')}")
    head = (
        "The call trace, symbolised:"
        if symbolised
        else "The call trace, with where each function is defined at the series tip "
        "(this kernel has no debug info for line numbers):"
    )
    return [*_wrap(head), "", *rows, ""]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=72, break_on_hyphens=False, break_long_words=False)


def _finish(job: Job, builds: list[PatchBuild], cells: list[CellResult]) -> tuple[str, int]:
    """series.json, reply.eml and summary.txt; the text and the exit code."""
    opts, repo, series, base, commits, files, folder, wt = (
        job.opts, job.repo, job.series, job.base, job.commits, job.files, job.folder, job.wt,
    )  # fmt: skip
    regressions = [c for c in cells if c.status == REGRESSION]
    broken = [b for b in builds if not b.ok]
    errors = [c for c in cells if c.status == ERROR]
    bad_labels = list(dict.fromkeys([*(c.culprit for c in regressions if c.culprit),
                                     *(b.label for b in broken)]))  # fmt: skip
    bad_mails = [m for m in series.patches if m.label in bad_labels]
    bad_files = [files[m.index - 1] for m in bad_mails] or files
    source.checkout_worktree(repo, wt, commits[-1])
    cc, gm_note = reply.maintainers(wt, bad_files)
    frm = reply.sender(repo, opts.sender)
    to = reply.unique([*(m.author for m in bad_mails), series.first.author])
    cc = reply.unique([*series.first.to, *series.first.cc, *cc], without=[*to, frm])
    body = _body(job, builds, cells, regressions, broken, frm)
    msg = reply.build(series, frm, to, cc, body)
    atomic_write_bytes(folder / "reply.eml", bytes(msg))
    code = EXIT_REGRESSION if regressions or broken else EXIT_INFRA if errors else EXIT_PASS
    data = {
        "series": {
            "path": str(opts.series),
            "cover": asdict(series.cover, dict_factory=_no_raw) if series.cover else None,
            "message_ids": bool(series.first.message_id),
            "base_commit_trailer": series.base_commit,
            "skipped": series.skipped,
        },
        "base": base,
        "tip": commits[-1],
        "patches": [
            {**asdict(m, dict_factory=_no_raw), "label": m.label, "commit": c, "file": str(f)}
            for m, c, f in zip(series.patches, commits, files, strict=True)
        ],
        "builds": [asdict(b) for b in builds],
        "cells": [asdict(c) for c in cells],
        "first_bad": bad_labels,
        "reply": {
            "file": str(folder / "reply.eml"),
            "from": frm,
            "to": to,
            "cc": cc,
            "subject": msg["Subject"],
            "get_maintainer": gm_note or "ok",
        },  # fmt: skip
        "exit_code": code,
    }
    atomic_write_text(folder / "series.json", json.dumps(data, indent=1, default=str) + "\n")
    verdict = (
        f"REGRESSION: first bad patch {', '.join(bad_labels)}" if bad_labels
        else "regression (no single patch named)" if regressions
        else "errors: some cells could not be judged" if errors
        else "no regression: Tested-by"
    )  # fmt: skip
    text = "\n".join([
        f"series: {series.title} ({len(series.patches)} patches)",
        f"base:   {gitmod.oneline(repo, base)}",
        f"result: {verdict}",
        "",
        "builds, patch by patch:",
        _builds_table(builds, series),
        "",
        _table(cells),
        *[f"  {c.target}/{c.scenario}: first bad patch {c.culprit or '?'}"
          f"{'; revert on the tip: ' + c.revert if c.revert else ''}"
          f"{'; ' + c.note if c.note else ''}" for c in regressions],
        "",
        f"reply: {folder / 'reply.eml'} (To: {', '.join(to)})",
        *([] if series.first.message_id else
          ["note: the series has no Message-Id (git format-patch --thread): the reply is "
           "not threaded"]),
        *([f"note: no Cc from get_maintainer.pl: {gm_note}"] if gm_note else []),
        f"results: {folder / 'series.json'}",
    ])  # fmt: skip
    atomic_write_text(folder / "summary.txt", text + "\n")
    return text + "\n", code


def _no_raw(items: list[tuple[str, object]]) -> dict[str, object]:
    return {k: v for k, v in items if k not in ("raw", "body")}


def _first_name(author: str) -> str:
    name = (getaddresses([author]) or [("", "")])[0][0]
    return name.split()[0] if name else ""


def _body(
    job: Job,
    builds: list[PatchBuild],
    cells: list[CellResult],
    regressions: list[CellResult],
    broken: list[PatchBuild],
    frm: str,
) -> str:
    """The reply's text, in the style of a reviewer's answer on the list."""
    series, tree = job.series, job.wt
    name = _first_name(series.first.author)
    hello = f"Hi {name}," if name else "Hi,"
    on = f"on top of {gitmod.oneline(job.repo, job.base)}"
    parts = [hello, ""]
    by_label = {m.label: m for m in series.patches}
    for b in broken:
        title = by_label[b.label].title
        parts += [*_wrap(f'Patch {b.label} ("{title}") breaks the build on the {b.target} '
                         f"target ({on}):"), "", f"  {b.error}", ""]  # fmt: skip
    for c in regressions:
        bad = by_label.get(c.culprit)
        if c.tip.verdict == Kind.BUILD_ERROR:
            continue  # said above, with the compiler's words
        who = f'Patch {c.culprit} ("{bad.title}")' if bad else "This series"
        parts += [*_wrap(f"{who} causes the following on the {c.target} target (harness "
                         f"scenario {c.scenario}), {on}:"),
                  "", f"  {c.tip.title or c.tip.summary}", ""]  # fmt: skip
        excerpt, frames = _report_excerpt(c)
        if excerpt:
            parts += [excerpt, ""]
        parts += _trace_lines(frames, tree, load_target(c.target).arch)
        how = "The base passes and the series tip fails"
        if bad and c.bisect:
            how += f"; bisecting within the series names patch {c.culprit}"
        if c.revert:
            how += f"; reverting it on top of the series: {c.revert}"
        parts += [*_wrap(how + "."), ""]
    if not regressions and not broken:
        tested = (
            f"I tested this series {on} under QEMU ({len(cells)} target x scenario "
            f"cell{'s' if len(cells) != 1 else ''}): every patch builds and nothing regressed."
        )
        parts += [*_wrap(tested), ""]
    parts += ["Results (base -> series):", "", _table(cells), ""]
    other = [c for c in cells if c.status in (PRE_EXISTING, FLAKY, ERROR, IN_SERIES)]
    for c in other:
        parts.append(f"  {c.target}/{c.scenario}: {c.status}: "
                     f"{c.tip.title or c.tip.summary or c.base.summary}")  # fmt: skip
    if other:
        parts.append("")
    parts += ["Builds, patch by patch:", "", _builds_table(builds, series), ""]
    if not regressions and not broken:
        parts += [f"Tested-by: {frm}", ""]
    parts += [*_wrap("Reproduce with harness (QEMU, no hardware needed), the series saved as "
                     "series.mbox, LINUX a git tree that has the base:"),
              "", f"  {job.opts.command(mail_base=job.base)}", ""]  # fmt: skip
    return "\n".join(parts)
