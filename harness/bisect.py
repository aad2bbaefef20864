"""`harness bisect` and `harness bisect-step`: the first bad commit, found carefully.

git does the search (`git bisect run`, in the harness's own worktree); each step is a
normal `harness run` on the tree as checked out, judged against the regression seen on
the bad commit. Build errors and unrelated failures are skipped, infrastructure errors
retried and then the bisection aborted: a wrong answer is worse than none.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness import git as gitmod
from harness import patches, source
from harness.config import load_scenario, load_target
from harness.errors import EXIT_INFRA, ConfigError, HarnessError, InfraError
from harness.fsutil import atomic_write_text
from harness.machine import RemoteOptions
from harness.proc import DIE_WITH_PARENT_ENV, die_with_parent
from harness.results import results_root
from harness.run import HOST_KEY_CAUSE, RunOptions, RunOutcome, execute, remote_argv
from harness.verdict import Kind

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 255
# stack hex dumps and per-register notes: true, but not what a reader of the mail needs
_MAIL_NOISE = re.compile(r"^\s*(?:[0-9a-f]{4}:\s+(?:[0-9a-f]{8} ?)+|Register r\d+ information:)")


@dataclass
class StepRecord:
    """One tested commit, as it goes into the steps table."""

    commit: str
    subject: str
    code: int  # what git bisect was told
    verdict: str
    title: str
    note: str
    build_seconds: float
    build_steps: int
    boot_seconds: float
    runs: int
    results: list[str] = field(default_factory=list)

    @property
    def word(self) -> str:
        return {GOOD: "good", BAD: "bad", SKIP: "skip", ABORT: "abort"}.get(self.code, "?")


@dataclass
class StepOptions:
    target: str
    scenario: str
    tree: Path
    match: str | None = None
    runs: int = 1
    retries: int = 2
    log: Path | None = None
    results_root: Path | None = None
    patches: tuple[Path, ...] = ()
    jobs: int | None = None
    remote: RemoteOptions | None = None


def classify(outcome: RunOutcome, match: re.Pattern[str] | None) -> tuple[int, str]:
    """Map one run to git's vocabulary: good, bad, skip, or None-like ABORT for infra."""
    v = outcome.verdict
    titles = [r.title for r in outcome.reports]
    if v.cause == HOST_KEY_CAUSE:  # not the commit's fault, and every step would hit it
        return ABORT, f"{v.verdict}: {v.summary}"
    if v.verdict == Kind.PASS:
        return GOOD, ""
    if v.verdict in (
        Kind.BUILD_ERROR,
        Kind.NOT_APPLICABLE,
        Kind.CONFIG_ERROR,
        Kind.PATCH_ERROR,
        Kind.STALE,
    ):
        first = next((d.strip() for d in v.details if d.strip()), "")
        return SKIP, f"{v.verdict}: {v.summary}" + (f" {first}" if first else "")
    if v.verdict == Kind.FAIL:
        if match is None or any(match.search(t) for t in titles):
            return BAD, ""
        if not titles:  # a workload failed without a crash report
            what = v.summary
        else:
            what = "; ".join(titles)
        return SKIP, f"a different failure: {what}"
    return ABORT, f"{v.verdict}: {v.summary}"


def step(opts: StepOptions) -> int:
    """Test the tree's HEAD; return the git bisect exit code and log the step."""
    match = re.compile(opts.match) if opts.match else None
    src = source.in_place(opts.tree, source.cache_root())
    record = StepRecord(src.commit or "", src.subject or "", ABORT, "", "", "", 0.0, 0, 0.0, 0)
    run_opts = RunOptions(
        target=opts.target,
        scenario=opts.scenario,
        kernel=f"{source.IN_PLACE}{opts.tree}",
        patches=opts.patches,
        quiet=True,
        results_root=opts.results_root,
        jobs=opts.jobs,
        remote=opts.remote,
    )
    infra_tries = 0
    while record.runs < max(1, opts.runs):
        outcome = execute(run_opts)
        record.results.append(str(outcome.results_dir))
        if record.runs == 0 or outcome.build_steps:
            record.build_seconds += round(outcome.build_seconds, 1)
            record.build_steps += outcome.build_steps
        record.boot_seconds += round(outcome.boot_seconds, 2)
        code, note = classify(outcome, match)
        record.verdict = outcome.verdict.verdict
        record.title = outcome.reports[0].title if outcome.reports else ""
        record.note = note
        if code == ABORT:
            infra_tries += 1
            if infra_tries <= opts.retries:
                continue  # infrastructure hiccup: the same commit again
            record.code = ABORT
            break
        record.runs += 1
        record.code = code
        if code != GOOD:
            break  # one reproduction is enough for bad; skips are final
    if opts.log:
        with open(opts.log, "a") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
    what = record.title or record.verdict
    print(f"[bisect-step] {record.commit[:12]} {record.word}: {what} {record.note}".rstrip())
    return record.code


def read_steps(log: Path) -> list[StepRecord]:
    if not log.exists():
        return []
    return [StepRecord(**json.loads(line)) for line in log.read_text().splitlines() if line]


@dataclass
class BisectOptions:
    target: str
    good: str
    bad: str
    kernel: str
    scenario: str = "boot"
    match: str | None = None
    runs: int = 1  # at least this many passing boots before a commit is good
    retries: int = 2
    jobs: int | None = None
    results_root: Path | None = None
    confidence: float = 0.95  # wanted for the whole bisection, against a flaky bug
    calibrate: int = 3  # boots of the bad commit that measure how often the bug shows
    max_runs: int = 20  # a cap on boots per good step
    remote: RemoteOptions | None = None  # --host: every boot runs there


def runs_for(rate: float, confidence: float, steps: int, floor: int = 1, cap: int = 20) -> int:
    """Boots a commit must pass before it is called good, for a bug seen at `rate`.

    A step that misses a flaky bug sends the bisection the wrong way; with `steps` good
    verdicts to come, each may be wrong with at most (1 - confidence) / steps (a union
    bound), and a bug showing at rate p is missed by n boots with probability (1 - p)^n.
    A bug seen every time while calibrating is taken as deterministic: one boot.
    """
    if rate >= 1.0:
        return max(1, floor)
    if rate <= 0.0:
        return max(cap, floor)
    per_step = (1.0 - confidence) / max(1, steps)
    n = math.ceil(math.log(per_step) / math.log(1.0 - rate))
    return max(floor, min(cap, n))


def bisection_confidence(rate: float, good_runs: list[int]) -> float:
    """How sure the culprit is right: every bad step saw the bug (certain); each good step
    of n boots could have missed it with (1 - rate)^n."""
    if rate >= 1.0:
        return 1.0
    return max(0.0, 1.0 - sum((1.0 - rate) ** n for n in good_runs))


@dataclass
class BisectResult:
    exit_code: int
    summary: str
    folder: Path
    culprit: str | None = None
    revert: str = ""  # what reverting the culprit on top of the bad commit did


def bisect(opts: BisectOptions) -> BisectResult:
    """Drive git bisect in the harness worktree and verify the answer by reverting it."""
    load_target(opts.target)  # a bad name fails here, before it names a folder
    load_scenario(opts.scenario)
    repo = Path(opts.kernel).expanduser().resolve()
    if not gitmod.is_repo(repo):
        raise ConfigError(f"--kernel {opts.kernel}: bisect needs a local git tree")
    good = _commit(repo, opts.good, "--good")
    bad = _commit(repo, opts.bad, "--bad")
    base = gitmod.merge_base(repo, good, bad)
    if not base:
        raise ConfigError(f"--good {opts.good} and --bad {opts.bad} share no history")
    if base == bad:
        raise ConfigError(f"--bad {opts.bad} is an ancestor of --good {opts.good}: swap them?")
    count = int(gitmod.run(repo, "rev-list", "--count", f"{base}..{bad}"))
    wt = source.harness_worktree(repo)
    # the worktree is ours for the whole bisection; steps (child processes) inherit the lock
    with patches.holding(wt):
        return _bisect(opts, repo, wt, good, bad, base, count)


def _calibrate(
    step_opts: StepOptions, match: str, runs: int, folder: Path, done: int = 1
) -> tuple[int, int]:
    """Boot the bad commit `runs` times in all (`done` are done, the last of them a
    reproduction): (hits, boots)."""
    rx = re.compile(match)
    hits, boots = 1, done
    run_opts = RunOptions(
        target=step_opts.target,
        scenario=step_opts.scenario,
        kernel=f"{source.IN_PLACE}{step_opts.tree}",
        quiet=True,
        results_root=folder / "calibrate",
        jobs=step_opts.jobs,
        remote=step_opts.remote,
    )
    tries = 0
    while boots < runs and tries < runs + step_opts.retries:
        tries += 1
        outcome = execute(run_opts)
        code, _ = classify(outcome, rx)
        if code == ABORT:
            continue  # an infra hiccup says nothing about the bug
        boots += 1
        hits += code == BAD
    return hits, boots


def bisect_reset(wt: Path) -> None:
    """End any bisection in the worktree, and make sure it ended.

    A bisection left behind is not harmless: the next `git bisect start` there first goes
    back to the old one's starting commit, and `git bisect run` then searches the old
    range (git 2.39 has no `bisect reset --quiet`; that spelling failed silently here).
    """
    gitmod.run(wt, "bisect", "reset", check=False)
    start = Path(gitmod.run(wt, "rev-parse", "--git-path", "BISECT_START", check=False))
    if not start.is_absolute():
        start = wt / start
    if start.exists():
        raise InfraError(
            f"git bisect reset did not end the bisection in {wt}: "
            f"run 'git -C {wt} bisect reset' and look at what it says"
        )


def _bisect(
    opts: BisectOptions, repo: Path, wt: Path, good: str, bad: str, base: str, count: int
) -> BisectResult:
    if wt.exists():  # a bisection left over by a killed run
        bisect_reset(wt)
    source.checkout_worktree(repo, wt, bad)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = (opts.results_root or results_root()) / f"bisect-{stamp}-{opts.target}"
    folder.mkdir(parents=True)
    steps_log = folder / "steps.jsonl"
    step_opts = StepOptions(
        target=opts.target,
        scenario=opts.scenario,
        tree=wt,
        match=opts.match,
        runs=1,
        retries=opts.retries,
        log=steps_log,
        results_root=folder / "runs",
        jobs=opts.jobs,
        remote=opts.remote,
    )
    print(
        f"[bisect] {count} commits between {opts.good} and {opts.bad}; "
        f"expect about {math.ceil(math.log2(max(count, 1))) + 1} builds",
        file=sys.stderr,
    )
    # a flaky bug may need a few boots to show at all: up to --calibrate on the bad commit
    first = step(replace(step_opts, runs=max(1, opts.calibrate)))
    records = read_steps(steps_log)
    if first != BAD:
        why = records[-1].note or records[-1].verdict if records else "no result"
        text = f"bisect aborted: the bad commit {opts.bad} does not show a regression ({why})"
        return _finish(folder, text, EXIT_INFRA)
    first_boots = records[-1].runs
    match = opts.match or "^" + re.escape(records[-1].title) + "$"
    atomic_write_text(folder / "match.txt", match + "\n")
    hits, boots = _calibrate(step_opts, match, max(1, opts.calibrate), folder, first_boots)
    rate = hits / boots
    expected_steps = math.ceil(math.log2(max(count, 1))) + 1
    n_good = runs_for(rate, opts.confidence, expected_steps, opts.runs, opts.max_runs)
    plan = Plan(good, base, hits, boots, n_good, opts.confidence)
    atomic_write_text(folder / "plan.json", json.dumps(asdict(plan), indent=1) + "\n")
    print(f"[bisect] {plan.describe()}", file=sys.stderr)
    if base != good:  # a rebased tree: the merge base stands in for --good, once tested
        source.checkout_worktree(repo, wt, base)
        base_code = step(replace(step_opts, runs=n_good))
        records = read_steps(steps_log)
        if base_code == BAD:
            text = (
                f"bisect stopped: {opts.good} is not an ancestor of {opts.bad}, and their merge "
                f"base {gitmod.oneline(repo, base)} already shows the regression: it did not come "
                f"with the commits after the base; bisect the history of {opts.good} instead"
            )
            return _finish(folder, text + "\n" + _table(records), EXIT_INFRA)
        if base_code == ABORT:
            why = records[-1].note if records else "no result"
            text = f"bisect aborted: the merge base {base[:12]} could not be tested ({why})"
            return _finish(folder, text + "\n" + _table(records), EXIT_INFRA)
        source.checkout_worktree(repo, wt, bad)
    gitmod.run(wt, "bisect", "start", bad, base)
    cmd = [
        sys.executable, "-m", "harness.cli", "bisect-step", opts.target,
        "--kernel", f"{source.IN_PLACE}{wt}", "--scenario", opts.scenario,
        "--match", match, "--runs", str(n_good), "--retries", str(opts.retries),
        "--log", str(steps_log), "--results", str(folder / "runs"),
    ]  # fmt: skip
    if opts.jobs:
        cmd += ["--jobs", str(opts.jobs)]
    cmd += remote_argv(opts.remote)
    with open(folder / "bisect-run.log", "w") as fh:
        proc = subprocess.run(
            ["git", "-C", str(wt), "bisect", "run", *cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, DIE_WITH_PARENT_ENV: "1"},  # the steps go when we go
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
    run_out = (folder / "bisect-run.log").read_text(errors="replace")
    atomic_write_text(folder / "bisect.log", gitmod.run(wt, "bisect", "log", check=False) + "\n")
    bisect_reset(wt)
    records = read_steps(steps_log)
    m = re.search(r"^([0-9a-f]{40}) is the first bad commit", run_out, re.M)
    if not m:
        if "only 'skip'ped commits left" in run_out:
            cands = re.findall(r"^([0-9a-f]{40})$", run_out, re.M)
            text = "bisect could not decide: only skipped commits left; the first bad commit "
            text += "is one of:\n" + "\n".join(f"  {gitmod.oneline(repo, c)}" for c in cands)
            return _finish(folder, text + "\n" + _table(records), EXIT_INFRA)
        last = records[-1] if records else None
        tail = run_out.strip().splitlines()[-1:] or ["no output"]
        why = f"{last.commit[:12]}: {last.note}" if last else tail[0]
        text = f"bisect aborted (git bisect run exit {proc.returncode}): {why}"
        return _finish(folder, text + "\n" + _table(records), EXIT_INFRA)
    culprit = m.group(1)
    revert = _revert_check(repo, wt, bad, culprit, opts, folder, re.compile(match), n_good)
    text = _report(repo, opts, count, culprit, records, revert, folder, plan)
    result = _finish(folder, text, 0, culprit)
    result.revert = revert
    return result


@dataclass
class Plan:
    """How the bisection guards against a flaky bug, and over which range it searched."""

    good: str
    base: str  # the merge base of good and bad: the start of the range searched
    hits: int  # reproductions on the bad commit while calibrating
    boots: int
    good_runs: int  # passing boots a commit needs to be called good
    confidence: float  # asked for

    @property
    def rate(self) -> float:
        return self.hits / self.boots if self.boots else 1.0

    def describe(self) -> str:
        how = (
            "deterministic"
            if self.hits == self.boots
            else f"flaky: a good verdict needs {self.good_runs} passing boots"
        )
        return f"the bug showed {self.hits}/{self.boots} times on the bad commit ({how})"

    def achieved(self, records: list[StepRecord]) -> float:
        return bisection_confidence(self.rate, [r.runs for r in records if r.code == GOOD])


def _commit(repo: Path, ref: str, flag: str) -> str:
    c = gitmod.commit(repo, ref)
    if not c:
        raise ConfigError(f"{flag} {ref}: not a commit in {repo}")
    return c


def _revert_check(
    repo: Path,
    wt: Path,
    bad: str,
    culprit: str,
    opts: BisectOptions,
    folder: Path,
    match: re.Pattern[str],
    runs: int = 1,
) -> str:
    """Revert the culprit on top of the bad commit (as an injected patch) and run again
    (`runs` passing boots to say it fixes a flaky bug)."""
    patch = folder / f"revert-{culprit[:12]}.patch"
    diff = gitmod.run(repo, "diff", "--no-renames", "--binary", culprit, f"{culprit}^")
    atomic_write_text(patch, diff + "\n")
    source.checkout_worktree(repo, wt, bad)
    run_opts = RunOptions(
        target=opts.target,
        scenario=opts.scenario,
        kernel=f"{source.IN_PLACE}{wt}",
        patches=(patch,),
        quiet=True,
        results_root=folder / "revert",
        jobs=opts.jobs,
        remote=opts.remote,
    )
    passes = 0
    while passes < runs:
        try:
            outcome = execute(run_opts)
        except HarnessError as e:
            return f"the revert check could not run: {e}"
        v = outcome.verdict
        if v.verdict == Kind.PATCH_ERROR:
            return "does not revert cleanly on top of the bad commit"
        titles = [r.title for r in outcome.reports]
        if any(match.search(t) for t in titles):
            return "does NOT fix it: the same report comes back"
        if v.verdict != Kind.PASS:
            return f"gives another result: {v.verdict}: {v.summary}"
        passes += 1
    return "fixes/hides this issue" + (f" ({runs} passing boots)" if runs > 1 else "")


def _table(records: list[StepRecord]) -> str:
    rows = [
        f"{'commit':12}  {'verdict':7}  {'boots':>5}  {'build':>7}  {'steps':>5}  {'boot':>6}  "
        "title / note"
    ]
    for r in records:
        rows.append(
            f"{r.commit[:12]:12}  {r.word:7}  {r.runs:5d}  {r.build_seconds:6.0f}s  "
            f"{r.build_steps:5d}  {r.boot_seconds:5.1f}s  {r.title or r.note or r.verdict}"
        )
    return "\n".join(rows)


def trace_check(repo: Path, culprit: str, report: dict) -> str:
    """ "" when the culprit's diff touches a file or function of the report's call trace;
    else a warning: a culprit far from the crash is worth a second look before a mail."""
    frames = [*report.get("frames", [])]
    for f in list(frames):
        frames += f.get("inlined") or []
    funcs = {re.sub(r"\.(isra|constprop|part|cold)\..*$", "", f.get("function") or "")
             for f in frames} - {""}  # fmt: skip
    files = {re.sub(r"^(\.\./)+(src/[^/]+/)?", "", f.get("file") or "") for f in frames} - {""}
    changed = gitmod.run(repo, "diff", "--name-only", f"{culprit}^", culprit, check=False).split()
    diff = gitmod.run(repo, "diff", f"{culprit}^", culprit, check=False)
    if not funcs and not files:
        return ""
    if any(any(f.endswith(c) or c.endswith(f) for c in changed) for f in files):
        return ""
    if any(re.search(rf"\b{re.escape(fn)}\b", diff) for fn in funcs):
        return ""
    shown = ", ".join(sorted(funcs)[:8])
    return (
        f"culprit touches nothing in the trace: verify (it changes {', '.join(changed[:6])}; "
        f"the trace runs through {shown})"
    )


def _report(
    repo: Path,
    opts: BisectOptions,
    count: int,
    culprit: str,
    records: list[StepRecord],
    revert: str,
    folder: Path,
    plan: Plan | None = None,
) -> str:
    info = gitmod.run(repo, "show", "-s", "--format=%H%n%s%n%an <%ae>%n%ad", culprit).splitlines()
    subject, author, date = info[1], info[2], info[3]
    bad_rec = next((r for r in records if r.commit == culprit and r.code == BAD), None)
    bad_rec = bad_rec or next((r for r in records if r.code == BAD), None)
    report_txt, warning = "", ""
    if bad_rec and bad_rec.results:
        rt = Path(bad_rec.results[-1]) / "report.txt"
        if rt.exists():
            report_txt = rt.read_text()
            atomic_write_text(folder / "culprit-report.txt", report_txt)
        rj = Path(bad_rec.results[-1]) / "reports.json"
        reps = json.loads(rj.read_text()) if rj.exists() else []
        hunted = [r for r in reps if r.get("title") == bad_rec.title] or reps
        if hunted:
            warning = trace_check(repo, culprit, hunted[0])
    builds = sum(1 for r in records)
    skips = sum(1 for r in records if r.code == SKIP)
    bound = math.ceil(math.log2(max(count, 1))) + 1
    title = bad_rec.title if bad_rec else "(unknown)"
    searched = (
        f"{plan.base[:12]}..{opts.bad} (the merge base of {opts.good} and {opts.bad}: "
        f"{opts.good} is not an ancestor)"
        if plan and plan.base != plan.good
        else f"{opts.good}..{opts.bad}"
    )
    confidence = ""
    if plan:
        confidence = (
            f"confidence: {plan.achieved(records):.3f} (asked {plan.confidence}); {plan.describe()}"
        )
    lines = [
        f"first bad commit: {culprit}",
        f"  subject: {subject}",
        f"  author:  {author}",
        f"  date:    {date}",
        f"regression: {title}",
        f"revert of {culprit[:12]} on top of {opts.bad}: {revert}",
        *([f"WARNING: {warning}"] if warning else []),
        f"range searched: {searched}",
        *([confidence] if confidence else []),
        f"builds: {builds} ({skips} skipped) for {count} commits; bound ceil(log2 N)+1 = {bound}"
        " plus skips",
        "",
        _table(records),
        "",
        f"bisect folder: {folder}",
    ]
    summary = "\n".join(lines)
    notes = [n for n in (warning and f"Note: {warning}.", confidence and f"Bisection {confidence}.",
                         f"Range searched: {searched}.") if n]  # fmt: skip
    atomic_write_text(
        folder / "mail.txt",
        _mail(repo, opts, culprit, subject, author, title, revert, report_txt, folder, notes),
    )
    return summary


def mail_excerpt(report_txt: str, lines: int = 50) -> str:
    """A report.txt cut for a mail: its header line dropped, hex dumps left out."""
    raw = report_txt.split("\n\n", 1)[1] if "\n\n" in report_txt else report_txt
    kept = [ln for ln in raw.strip().splitlines() if not _MAIL_NOISE.match(ln)]
    return "\n".join(kept[:lines])


def _mail(
    repo: Path,
    opts: BisectOptions,
    culprit: str,
    subject: str,
    author: str,
    title: str,
    revert: str,
    report_txt: str,
    folder: Path,
    notes: list[str] | None = None,
) -> str:
    """A plain-text report in the style kernel reporters use on the lists."""
    excerpt = mail_excerpt(report_txt)
    reproduce = RunOptions(opts.target, opts.scenario, kernel=f"{opts.kernel}@{opts.bad}").command()
    verdict = {
        "fixes/hides this issue": f'Reverting "{subject}" on top of {opts.bad} fixes/hides '
        "this issue.",
    }.get(revert.split(" (")[0], f'Reverting "{subject}" on top of {opts.bad}: {revert}.')
    bisect_log = (folder / "bisect.log").read_text().strip()
    return f"""Subject: Re: {subject}

Hi,

{culprit[:12]} ("{subject}") causes the following regression on
the {opts.target} target (harness scenario {opts.scenario}):

  {title}

{excerpt}

Bisected between {opts.good} (good) and {opts.bad} (bad) to:

  commit {culprit}
  Author: {author}

      {subject}

{verdict}
{"".join(chr(10) + n for n in notes or [])}

Reproduce with harness (QEMU, no hardware needed):

  {reproduce}

Bisect log:

{bisect_log}
"""


def _finish(folder: Path, text: str, code: int, culprit: str | None = None) -> BisectResult:
    atomic_write_text(folder / "summary.txt", text + "\n")
    return BisectResult(code, text + "\n", folder, culprit)
