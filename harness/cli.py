"""`harness` command line: parse arguments, call the stages, map errors to exit codes."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import io
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from harness.cliargs import (
    BISECT_ABORT,
    EXIT_INTERRUPTED,
    Parser,
    add_remote_arguments,
    add_run_arguments,
    non_negative_int,
    positive_int,
    probability,
)
from harness.errors import EXIT_INFRA, HarnessError
from harness.proc import DIE_WITH_PARENT_ENV, die_with_parent_now


class _PipeSafe(io.TextIOBase):
    """stdout that survives its reader going away (`harness list | head -1`).

    Later writes are dropped, and the command's own exit code stands: a closed pipe is
    neither a usage error nor a failure of the run.
    """

    def __init__(self, inner: io.TextIOBase) -> None:
        self.inner = inner
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.inner.write(text)
                self.inner.flush()
            except BrokenPipeError:
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self._break()

    def _break(self) -> None:
        self.broken = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.inner.fileno())  # the interpreter's final flush goes nowhere
        os.close(devnull)

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harness")
    except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


def _save_crash(tb: str) -> Path | None:
    """Keep the traceback of a crash outside any run in the results root."""
    from harness.fsutil import atomic_write_text
    from harness.results import results_root

    try:
        root = results_root()
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"harness-crash-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.txt"
        atomic_write_text(path, tb)
        return path
    except OSError:
        return None


# Stages that own a subcommand register it themselves (each has register(subparsers)).
_SUBCOMMAND_MODULES = (
    "harness.oops.cmd",
    "harness.lava.cmd",
    "harness.nightly.cmd",
    "harness.series.cmd",
)


def _sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    # Turn SIGTERM into the same unwinding as Ctrl-C: patches reverted, QEMU killed,
    # the results folder left marked incomplete.
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run import RunOptions, execute

    outcome = execute(RunOptions.from_args(args))
    print(outcome.summary, end="")
    return outcome.verdict.exit_code


def cmd_bisect(args: argparse.Namespace) -> int:
    from harness.bisect import BisectOptions, bisect
    from harness.run import remote_from_args

    result = bisect(
        BisectOptions(
            target=args.target,
            good=args.good,
            bad=args.bad,
            kernel=args.kernel,
            scenario=args.scenario,
            match=args.match,
            runs=args.runs,
            retries=args.retries,
            jobs=args.jobs,
            results_root=Path(args.results) if args.results else None,
            confidence=args.confidence,
            calibrate=args.calibrate,
            max_runs=args.max_runs,
            remote=remote_from_args(args),
        )
    )
    print(result.summary, end="")
    return result.exit_code


def cmd_bisect_step(args: argparse.Namespace) -> int:
    import subprocess

    from harness.bisect import ABORT, StepOptions, step
    from harness.run import remote_from_args
    from harness.source import IN_PLACE

    kernel = args.kernel
    if not kernel:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True
        )
        if top.returncode:
            print("harness bisect-step: run it inside a git tree or give --kernel", file=sys.stderr)
            return ABORT
        kernel = IN_PLACE + top.stdout.strip()
    if not kernel.startswith(IN_PLACE):
        kernel = IN_PLACE + kernel
    try:
        return step(
            StepOptions(
                target=args.target,
                scenario=args.scenario,
                tree=Path(kernel[len(IN_PLACE) :]),
                match=args.match,
                runs=args.runs,
                retries=args.retries,
                log=Path(args.log) if args.log else None,
                results_root=Path(args.results) if args.results else None,
                jobs=args.jobs,
                remote=remote_from_args(args),
            )
        )
    except HarnessError as e:  # never let git take a usage error for "bad"
        print(f"harness bisect-step: {e}", file=sys.stderr)
        return ABORT
    except Exception:  # a crash of ours is no vote either way
        tb = traceback.format_exc()
        saved = _save_crash(tb)
        print(f"harness bisect-step: internal error (abort):\n{tb}", file=sys.stderr)
        if saved:
            print(f"traceback saved in {saved}", file=sys.stderr)
        return ABORT


def cmd_list(args: argparse.Namespace) -> int:
    from harness.listing import show

    return show(sys.stdout)


EXAMPLES = {
    "run": """examples:
  harness run arm32-highmem-ci                       # clean boot, Debian's 6.12
  harness run arm32-highmem-ci -s pte-lockptr-highpte  # a canary: exits 1 when caught
  harness run x86-64-ci --kernel ~/linux@next-20261130 --patch fix.patch
  harness run arm64-bbml2-ci -s cow-without-bbm --clean  # the canary's clean twin
  harness run x86-64-ci --cmdline "loglevel=8 nokaslr"  # after the target's and scenario's""",
    "bisect": """examples:
  harness bisect arm32-highmem-ci --kernel ~/linux --good v7.4 --bad next-20261130
  harness bisect x86-64-ci --kernel ~/linux --good next-20261127 --bad next-20261130 \\
      -s lazy-mmu-stress --confidence 0.99      # a flaky bug, on a rebased tree""",
    "list": """The fit table says which scenario can run on which target.""",
}


def _examples(name: str) -> str:
    return EXAMPLES.get(name, "")


def build_parser() -> Parser:
    p = Parser(
        prog="harness",
        description="Build, boot and judge Linux kernels for memory-management regressions.",
        epilog="Start with `harness list`; exit codes are in README.md (0 pass, 1 regression, "
        "2 build error, 3 infra error or harness failure, 4 usage error, 5 stale canary, "
        "130 interrupted).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"harness {_version()}")
    p.add_argument(
        "--config-dir",
        action="append",
        metavar="DIR",
        help="a folder of your own targets/scenarios/kernel specs, laid out like the "
        "repository (configs/targets, scenarios, kernels); searched first; repeatable "
        "(the same as $HARNESS_PATH)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="build a target's kernel, boot it under QEMU with a scenario, judge the console",
        description="Exit codes: 0 pass, 1 regression found, 2 build error, "
        "3 infra error or timeout (or a canary not caught), 4 usage or config error, "
        "5 stale (a canary needs a port to this kernel), 130 interrupted.",
        epilog=_examples("run"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(r)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "bisect",
        help="find the first bad commit between two refs of a git tree",
        description="Exit codes: 0 culprit found, 3 aborted (infra errors, only skips left, "
        "or the bad ref does not fail), 4 usage error.",
        epilog=_examples("bisect"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("target", help="a target (see `harness list`)")
    b.add_argument("--good", required=True, help="a ref that passes")
    b.add_argument("--bad", required=True, help="a ref that shows the regression")
    b.add_argument("--kernel", "-k", required=True, help="the local git tree")
    b.add_argument("--scenario", "-s", default="boot", help="a scenario (default: boot)")
    b.add_argument("--match", help="regex on report titles (default: the title seen on --bad)")
    b.add_argument(
        "--runs", type=positive_int, default=1, help="at least this many passing boots for good"
    )
    b.add_argument(
        "--confidence",
        type=probability,
        default=0.95,
        help="how sure the culprit must be against a flaky bug (default 0.95): good steps "
        "boot as often as the bug's rate on the bad commit requires",
    )
    b.add_argument(
        "--calibrate",
        type=positive_int,
        default=3,
        help="boots of the bad commit that measure how often the bug shows (default 3)",
    )
    b.add_argument(
        "--max-runs", type=positive_int, default=20, help="cap on boots per good step (20)"
    )
    b.add_argument(
        "--retries", type=non_negative_int, default=2, help="retries of an infra error per step"
    )
    b.add_argument("--jobs", "-j", type=positive_int, help="make -j (default: all CPUs)")
    b.add_argument("--results", help="results root (default: $HARNESS_RESULTS or results/)")
    add_remote_arguments(b)
    b.set_defaults(func=cmd_bisect)

    bs = sub.add_parser(
        "bisect-step",
        help="test the checked-out commit for `git bisect run`",
        description="Exit codes for git bisect run: 0 good, 1 bad (the matching regression), "
        "125 skip (build error, a different failure, scenario not applicable), "
        "255 abort (infrastructure error after retries).",
    )
    bs.usage_exit = BISECT_ABORT  # git bisect run: 4 would mean "bad"
    bs.add_argument("target")
    bs.add_argument("--kernel", "-k", help="git tree to build as is (default: the current one)")
    bs.add_argument("--scenario", "-s", default="boot")
    bs.add_argument("--match", help="regex a report title must match to call the commit bad")
    bs.add_argument(
        "--runs", type=positive_int, default=1, help="boots before calling a commit good"
    )
    bs.add_argument("--retries", type=non_negative_int, default=2)
    bs.add_argument("--log", help="append a JSON line per step to this file")
    bs.add_argument("--jobs", "-j", type=positive_int)
    bs.add_argument("--results")
    add_remote_arguments(bs)
    bs.set_defaults(func=cmd_bisect_step)

    ls = sub.add_parser(
        "list",
        help="targets, scenarios, kernel specs, and which scenario fits which target",
        description=_examples("list"),
    )
    ls.set_defaults(func=cmd_list)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The exit-code contract (README): 0 pass, 1 regression, 2 build error, 3 infra error
    or a crash of ours, 4 usage or config error, 130 interrupted; bisect-step answers git
    (0 good, 1 bad, 125 skip, 255 abort) and never good or bad for a fault of ours."""
    if not isinstance(sys.stdout, _PipeSafe):
        sys.stdout = _PipeSafe(sys.stdout)  # type: ignore[arg-type]
    signal.signal(signal.SIGTERM, _sigterm)
    if os.environ.get(DIE_WITH_PARENT_ENV):  # a step of `harness bisect`: go when it goes
        die_with_parent_now(signal.SIGTERM)
    abort_code = EXIT_INFRA
    try:
        parser = build_parser()
        raw = sys.argv[1:] if argv is None else argv
        if next((a for a in raw if not a.startswith("-")), "") == "bisect-step":
            abort_code = parser.usage_exit = BISECT_ABORT  # git must never read "bad"
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help (0) or a usage error (Parser.usage_exit)
            return e.code if isinstance(e.code, int) else abort_code
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="[%(name)s] %(message)s",
        )
        if args.config_dir:  # children (nightly workers, bisect steps) inherit it
            extra = [str(Path(d).expanduser().resolve()) for d in args.config_dir]
            old = os.environ.get("HARNESS_PATH", "")
            os.environ["HARNESS_PATH"] = os.pathsep.join([*extra, *([old] if old else [])])
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code if abort_code == EXIT_INFRA else abort_code
    except KeyboardInterrupt:
        print("harness: interrupted; results left marked incomplete", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        tb = traceback.format_exc()
        saved = _save_crash(tb)
        print(
            f"harness: internal error (a bug in the harness, exit {abort_code}):", file=sys.stderr
        )
        print(tb, file=sys.stderr, end="")
        if saved:
            print(f"harness: traceback saved in {saved}", file=sys.stderr)
        return abort_code


if __name__ == "__main__":
    sys.exit(main())
