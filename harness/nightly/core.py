"""One nightly, start to end: tree, matrix, classification, history, bisection, reports.

Everything a night produces goes to results/nightly-<ref>-<stamp>/ (the runs under runs/,
bisections under bisect/); the history database is results/nightly.sqlite. A nightly
interrupted half-way stays in the history marked incomplete and is never compared with.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import git as gitmod
from harness import patches, source, variants
from harness.bisect import BisectOptions, BisectResult, bisect
from harness.config import Expectation, load_scenario
from harness.errors import EXIT_INFRA, HarnessError, InfraError
from harness.fsutil import atomic_write_text
from harness.lava.store import ArtifactStore
from harness.machine import RemoteOptions
from harness.nightly import classify as cls
from harness.nightly import history as hist
from harness.nightly import kerneltests, matrix, send, settings, tree
from harness.nightly import lab as labmod
from harness.nightly.model import NEW, Attempt, Bisection, Cell, Classified, Nightly
from harness.nightly.reports import html, junit, kcidb, mail
from harness.results import results_root
from harness.verdict import Kind


@dataclass
class NightlyOptions:
    kernel: str
    ref: str | None = None
    targets: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    bisect_new: bool = False
    jobs: int | None = None  # runs at a time (--parallel)
    make_jobs: int | None = None  # make -j of each run (--jobs), default: a share of CPUs
    retries: int | None = None
    fetch: bool = True
    remote: str | None = None
    config: Path | None = None
    results_root: Path | None = None
    boot_timeout: int | None = None
    quiet: bool = False
    host: RemoteOptions | None = None  # --host: every target boots there
    send_mail: bool = False  # --mail: the summary through the settings' SMTP relay
    submit_kcidb: bool = False  # --kcidb: kcidb.json to the settings' KCIDB endpoint
    lava: str | None = None  # --lava URL: the lab's server (else the settings' lava:)
    lab: labmod.LabPlan | None = None  # filled by run(): which targets run in the lab
    hosts: dict[str, RemoteOptions | None] = field(default_factory=dict)  # filled by run()


@dataclass
class NightlyResult:
    nightly: Nightly
    cells: list[Classified]
    mail: str

    @property
    def exit_code(self) -> int:
        return self.nightly.exit_code if self.nightly.exit_code is not None else EXIT_INFRA


Bisector = Callable[[BisectOptions], BisectResult]


def _say(opts: NightlyOptions, text: str) -> None:
    if not opts.quiet:
        print(f"[nightly] {text}", file=sys.stderr, flush=True)


def _new_folder(root: Path, ref: str, now: dt.datetime) -> tuple[str, Path]:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ref)
    for n in range(1, 100):
        folder = root / (f"nightly-{safe}-{stamp}" + ("" if n == 1 else f"-{n}"))
        try:
            folder.mkdir(parents=True)
            return stamp, folder
        except FileExistsError:
            continue
    raise InfraError(f"cannot create a nightly folder under {root}")


@contextlib.contextmanager
def held_worktree(repo: Path, commit: str, cache: Path) -> Iterator[source.KernelSource]:
    """The harness worktree of repo at tonight's commit, ours for the whole matrix.

    The nightly holds the tree's exclusive lock (as bisect does) and its runs, child
    processes, inherit it (patches.HELD_ENV): nobody else moves or patches the worktree
    under the matrix, and every run builds it as it stands (inplace:). Among the nightly's
    own runs, the matrix keeps a run that patches the tree alone (matrix.run_matrix).
    """
    wt = source.harness_worktree(repo, cache)
    with patches.holding(wt):
        src = source.resolve(f"{repo}@{commit}", cache)
        if src.checkout is not None:  # resolve() leaves the checkout to the lock holder
            src.checkout()
        yield src


def expectations(scenarios: list[str], version: tuple[int, int, int]) -> dict:
    """Each canary's expected reports for this kernel version: those of its variant
    candidates (the exact one, then the nearest), since a canary whose patch is in the
    tree or stale may show any of them; empty when no variant applies at all."""
    out: dict[str, list[Expectation]] = {}
    for name in scenarios:
        sc = load_scenario(name)
        if sc.canary:
            try:
                cands = variants.candidates(sc, version)
            except HarnessError:
                cands = []
            out[name] = [c.variant.expect for c in cands if c.variant.expect]
    return out


def run(
    opts: NightlyOptions,
    runner: matrix.Runner | None = None,
    bisector: Bisector = bisect,
) -> NightlyResult:
    """The whole nightly; `runner` and `bisector` are replaceable for tests."""
    cfg = settings.load(opts.config)
    send.check(cfg, opts.config, opts.send_mail, opts.submit_kcidb)
    targets = opts.targets or cfg.matrix()[0]
    scenarios = opts.scenarios or cfg.matrix()[1]
    cells = matrix.plan(targets, scenarios)
    lab = _lab_plan(opts, cfg, targets)
    in_lab = set(lab.targets) if lab else set()
    opts = replace(
        opts,
        hosts={t: None if t in in_lab else (opts.host or cfg.host_for(t)) for t in targets},
        lab=lab,
    )
    retries = cfg.retries if opts.retries is None else opts.retries
    jobs = opts.jobs or settings.default_jobs()

    repo = tree.git_tree(Path(opts.kernel))
    fetch = tree.update(repo, cfg, opts.fetch, remote=opts.remote, quiet=opts.quiet)
    ref = tree.resolve(repo, opts.ref, cfg)
    root = (opts.results_root or results_root()).resolve()
    started = dt.datetime.now(dt.UTC)
    stamp, folder = _new_folder(root, ref.name, started)
    nightly = Nightly(
        tree=repo,
        ref=ref.name,
        commit=ref.commit,
        folder=folder,
        stamp=stamp,
        started=started,
        describe=ref.describe,
        subject=ref.subject,
        tags=ref.tags,
        remote_url=fetch.url,
        tree_name=cfg.tree_name,
    )
    (nightly.harness_failures if not fetch.ok else nightly.notes).append(fetch.note)
    _say(opts, f"{repo} at {ref.name} ({ref.commit[:12]}): {len(cells)} runs, {jobs} at a time")
    if lab:
        nightly.notes.append(lab_note(lab))
        _say(opts, lab_note(lab))
    _say(opts, f"reports: {folder}")

    db = hist.History(root / "nightly.sqlite")
    try:
        day = tree.tag_date(repo, ref, cfg.ref_pattern)
        nightly.nightly_id = nid = db.begin(repo, ref.name, ref.commit, folder, day)
        attempts, src = _run_matrix(opts, nightly, cells, runner, jobs, retries)
        version = src.version if src else None
        nightly.version = src.version_str if src else ""
        classified = [
            cls.classify(c, attempts[c], db.previous(repo, c.target, c.scenario, nid), ref.name)
            for c in cells
        ]
        for c in classified:
            prev = db.previous_tests(repo, c.cell.target, c.cell.scenario, nid)
            c.tests = kerneltests.classify_tests(c.attempts, prev, ref.name)
        if version:
            expect = expectations(scenarios, version)
            cls.settle_in_tree(classified, expect)
            cls.settle_stale(classified, expect)
        db.record(nid, classified)
        if opts.bisect_new:
            for c in classified:
                if c.status == NEW and not c.cell.canary:
                    c.bisection = bisect_new(nightly, c, db, bisector, opts)
                    db.add_bisection(nid, c, c.bisection)
        text = write_reports(nightly, classified, cfg, db, opts)
        db.finish(nid, nightly.exit_code or 0)
    finally:
        db.close()
    return NightlyResult(nightly, classified, text)


def _run_matrix(
    opts: NightlyOptions,
    nightly: Nightly,
    cells: list[Cell],
    runner: matrix.Runner | None,
    jobs: int,
    retries: int,
) -> tuple[dict[Cell, list[Attempt]], source.KernelSource | None]:
    """Check out tonight's commit and run every cell; a checkout failure fails every cell."""
    done = [0]

    def progress(cell: Cell, last: Attempt, n: int) -> None:
        done[0] += 1
        what = last.title or last.summary
        _say(
            opts,
            f"{done[0]}/{len(cells)} {cell.key}: {last.verdict}"
            + (f" after {n} runs" if n > 1 else "")
            + (f": {what}" if what else ""),
        )

    try:
        with (
            held_worktree(nightly.tree, nightly.commit, source.cache_root()) as src,
            _artifact_store(opts, nightly) as store,
        ):
            if runner is None:
                lab = opts.lab
                runner = matrix.ProcessRunner(
                    f"{source.IN_PLACE}{src.tree}",
                    opts.make_jobs or matrix.make_jobs_for(jobs),
                    opts.boot_timeout,
                    say=lambda text: _say(opts, text),
                    hosts=opts.hosts,
                    lava={t: lab.spec(store) for t in lab.targets} if lab else None,
                    env={**os.environ, settings.LAVA_TOKEN_ENV: lab.token} if lab else None,
                )
            attempts = matrix.run_matrix(
                cells, runner, nightly.folder / "runs", jobs=jobs, retries=retries,
                progress=progress,
            )  # fmt: skip
    except HarnessError as e:
        why = f"cannot check out {nightly.ref}: {e}"
        nightly.harness_failures.append(why)
        return {c: [Attempt(Kind.INFRA_ERROR, EXIT_INFRA, why)] for c in cells}, None
    for runs in attempts.values():
        for a in runs:  # someone moved the worktree under the matrix: not tonight's kernel
            if a.commit and a.commit != nightly.commit:
                a.summary = f"built {a.commit[:12]}, not {nightly.commit[:12]}: the worktree moved"
                a.verdict, a.exit_code, a.reports = "infra-error", EXIT_INFRA, []
    return attempts, src


def _lab_plan(
    opts: NightlyOptions, cfg: settings.Settings, targets: list[str]
) -> labmod.LabPlan | None:
    """--lava or the settings' lava:, placed and checked before anything is built."""
    lab = cfg.lava
    if opts.lava:
        lab = replace(lab, server=opts.lava) if lab else settings.LavaLab(opts.lava)
    if lab is None:
        return None
    plan = labmod.plan(lab, targets, str(opts.config or "--lava"))
    if plan.targets:
        labmod.check(plan)
    return plan


def lab_note(lab: labmod.LabPlan) -> str:
    here = "; ".join(f"{t} here ({why})" for t, why in lab.here.items())
    online = ", ".join(lab.workers) or "none online"
    return (
        f"LAVA lab {lab.lab.server}: {', '.join(lab.targets) or 'no target'} "
        f"(workers: {online})" + (f"; {here}" if here else "")
    )


@contextlib.contextmanager
def _artifact_store(opts: NightlyOptions, nightly: Nightly) -> Iterator[ArtifactStore | None]:
    if opts.lab is None or not opts.lab.targets:
        yield None
        return
    with labmod.artifact_store(opts.lab.lab, nightly.folder) as store:
        yield store


def bisect_new(
    nightly: Nightly,
    c: Classified,
    db: hist.History,
    bisector: Bisector,
    opts: NightlyOptions,
) -> Bisection:
    """Bisect a new regression between the last nightly where the cell passed and tonight.

    On linux-next that nightly's tag is not an ancestor of tonight's (the tree is rebuilt
    every day): bisect takes their merge base, tests it, and searches from there.
    """
    assert nightly.nightly_id is not None
    passes = [
        (r, h)
        for r, h in db.passes(nightly.tree, c.cell.target, c.cell.scenario, nightly.nightly_id)
        if h != nightly.commit and gitmod.exists(nightly.tree, h)
    ]
    good = passes[0] if passes else None  # the latest pass, ancestor or not
    if good is None:
        return Bisection("", "", nightly.commit, None, None,
                         "not bisected: no earlier nightly where it passed")  # fmt: skip
    _say(opts, f"bisecting {c.cell.key} between {good[0]} and {nightly.ref}")
    try:
        res = bisector(
            BisectOptions(
                target=c.cell.target,
                good=good[1],
                bad=nightly.commit,
                kernel=str(nightly.tree),
                scenario=c.cell.scenario,
                jobs=opts.make_jobs or matrix.make_jobs_for(1),
                results_root=nightly.folder / "bisect",
                remote=opts.hosts.get(c.cell.target),
            )
        )
    except HarnessError as e:
        return Bisection(good[0], good[1], nightly.commit, e.exit_code, None, f"bisect: {e}")
    return Bisection(
        good[0], good[1], nightly.commit, res.exit_code, res.culprit, res.summary, res.folder
    )


def write_reports(
    nightly: Nightly,
    cells: list[Classified],
    cfg: settings.Settings,
    db: hist.History,
    opts: NightlyOptions | None = None,
) -> str:
    """KCIDB first (its validation or submission can still make the night a harness
    failure), then the exit code and the mail (sent with --mail: a failed send is a harness
    failure too), then JUnit, HTML and summary.json, which say all of it."""
    folder = nightly.folder
    try:
        kcidb.write(
            folder / "kcidb.json", kcidb.build(nightly, cells, cfg.origin, cfg.artifacts_url)
        )
    except InfraError as e:
        nightly.harness_failures.append(str(e))
    if opts and opts.submit_kcidb:
        send.submit_kcidb(nightly, cfg)
    nightly.exit_code = cls.exit_code(cells, nightly.harness_failures)
    nightly.finished = dt.datetime.now(dt.UTC)
    text = mail.text(nightly, cells)
    atomic_write_text(folder / "mail.txt", text)
    if opts and opts.send_mail:
        send.send_mail(nightly, cells, cfg, db, text)
        nightly.exit_code = cls.exit_code(cells, nightly.harness_failures)
    junit.write(folder / "junit.xml", nightly, cells)
    trend = db.trend(nightly.tree, cfg.trend_length, include=nightly.nightly_id or 0)
    html.write_site(nightly, cells, trend)
    atomic_write_text(
        (folder / "summary.json"), json.dumps(summary(nightly, cells), indent=1) + "\n"
    )
    return text


def summary(nightly: Nightly, cells: list[Classified]) -> dict[str, Any]:
    """summary.json: the nightly for scripts (the mail and HTML say the same to people)."""

    def attempt(a: Attempt) -> dict[str, Any]:
        return {
            "verdict": a.verdict,
            "summary": a.summary,
            "titles": a.titles,
            "results_dir": str(a.results_dir or ""),
            "seconds": a.seconds,
            "where": a.where,
        }

    return {
        "tree": str(nightly.tree),
        "ref": nightly.ref,
        "commit": nightly.commit,
        "version": nightly.version,
        "started": nightly.started.isoformat(),
        "finished": nightly.finished.isoformat() if nightly.finished else None,
        "exit_code": nightly.exit_code,
        "counts": dict(cls.counts(cells)),
        "notes": nightly.notes,
        "harness_failures": nightly.harness_failures,
        "delivery": nightly.delivery,
        "cells": [
            {
                "target": c.cell.target,
                "scenario": c.cell.scenario,
                "canary": c.cell.canary,
                "status": c.status,
                "title": c.title,
                "titles": c.titles,
                "reason": c.reason,
                "since": c.since,
                "previous": (
                    {"ref": c.previous.ref, "status": c.previous.status, "title": c.previous.title}
                    if c.previous
                    else None
                ),
                "attempts": [attempt(a) for a in c.attempts],
                "tests": [t.__dict__ for t in c.tests],
                "bisection": (
                    {
                        "good": c.bisection.good,
                        "good_ref": c.bisection.good_ref,
                        "bad": c.bisection.bad,
                        "culprit": c.bisection.culprit,
                        "exit_code": c.bisection.exit_code,
                        "summary": c.bisection.summary,
                    }
                    if c.bisection
                    else None
                ),
            }
            for c in cells
        ],
    }
