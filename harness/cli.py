"""`harness` command line: parse arguments, call the stages, map errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from pathlib import Path

from harness.config import list_scenarios, list_targets
from harness.errors import EXIT_USAGE, HarnessError

# Stages that own a subcommand register it themselves (each has register(subparsers)).
_SUBCOMMAND_MODULES = ("harness.oops.cmd", "harness.lava.cmd", "harness.nightly.cmd")


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
        )
    )
    print(result.summary, end="")
    return result.exit_code


def cmd_bisect_step(args: argparse.Namespace) -> int:
    import subprocess

    from harness.bisect import ABORT, StepOptions, step
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
            )
        )
    except HarnessError as e:  # never let git take a usage error for "bad"
        print(f"harness bisect-step: {e}", file=sys.stderr)
        return ABORT


def cmd_list(args: argparse.Namespace) -> int:
    from harness.config import load_scenario, load_target

    print("targets:")
    for name in list_targets():
        print(f"  {name:24} {load_target(name).description[:90]}")
    print("scenarios:")
    for name in list_scenarios():
        s = load_scenario(name)
        kind = "canary" if s.canary else "test"
        print(f"  {name:24} [{kind}] {s.description[:80]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Build, boot and judge Linux kernels for memory-management regressions.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="build a target's kernel, boot it under QEMU with a scenario, judge the console",
        description="Exit codes: 0 pass, 1 regression found, 2 build error, "
        "3 infra error or timeout (or a canary not caught), 4 usage or config error.",
    )
    r.add_argument("target", help="a target from configs/targets (see `harness list`)")
    r.add_argument("--scenario", "-s", default="boot", help="scenario folder name (default: boot)")
    r.add_argument(
        "--kernel",
        "-k",
        help="debian-6.12 (default), debian-7.3, or PATH[@REF] of a local git tree",
    )
    r.add_argument("--patch", action="append", metavar="FILE", help="inject a patch (repeatable)")
    r.add_argument("--accel", choices=["auto", "kvm", "tcg"], help="force the QEMU accelerator")
    r.add_argument("--jobs", "-j", type=int, help="make -j (default: all CPUs)")
    r.add_argument("--timeout", type=int, help="total boot timeout in seconds")
    r.add_argument("--results", help="results root (default: results/)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    r.add_argument(
        "--clean",
        action="store_true",
        help="a canary's clean twin: the same steps without its bug patches (must pass)",
    )
    r.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "bisect",
        help="find the first bad commit between two refs of a git tree",
        description="Exit codes: 0 culprit found, 3 aborted (infra errors, only skips left, "
        "or the bad ref does not fail), 4 usage error.",
    )
    b.add_argument("target")
    b.add_argument("--good", required=True, help="a ref that passes")
    b.add_argument("--bad", required=True, help="a ref that shows the regression")
    b.add_argument("--kernel", "-k", required=True, help="the local git tree")
    b.add_argument("--scenario", "-s", default="boot")
    b.add_argument("--match", help="regex on report titles (default: the title seen on --bad)")
    b.add_argument("--runs", type=int, default=1, help="boots before calling a commit good")
    b.add_argument("--retries", type=int, default=2, help="retries of an infra error per step")
    b.add_argument("--jobs", "-j", type=int)
    b.add_argument("--results")
    b.set_defaults(func=cmd_bisect)

    bs = sub.add_parser(
        "bisect-step",
        help="test the checked-out commit for `git bisect run`",
        description="Exit codes for git bisect run: 0 good, 1 bad (the matching regression), "
        "125 skip (build error, a different failure, scenario not applicable), "
        "255 abort (infrastructure error after retries).",
    )
    bs.add_argument("target")
    bs.add_argument("--kernel", "-k", help="git tree to build as is (default: the current one)")
    bs.add_argument("--scenario", "-s", default="boot")
    bs.add_argument("--match", help="regex a report title must match to call the commit bad")
    bs.add_argument("--runs", type=int, default=1, help="boots before calling a commit good")
    bs.add_argument("--retries", type=int, default=2)
    bs.add_argument("--log", help="append a JSON line per step to this file")
    bs.add_argument("--jobs", "-j", type=int)
    bs.add_argument("--results")
    bs.set_defaults(func=cmd_bisect_step)

    ls = sub.add_parser("list", help="list targets and scenarios")
    ls.set_defaults(func=cmd_list)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(name)s] %(message)s",
    )
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; results left marked incomplete", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
