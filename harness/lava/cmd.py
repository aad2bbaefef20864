"""`harness lava job|run|submit`: argument parsing only; the work is in harness.lava.flow."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.cliargs import add_run_arguments, positive_float
from harness.delivery import read_secret
from harness.errors import ConfigError
from harness.run import RunOptions

_EXIT_HELP = (
    "Exit codes as `harness run`: 0 pass, 1 regression found, 2 build error, "
    "3 infra error or timeout (or a canary not caught), 4 usage or config error."
)


def _common(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, lava=True)
    p.add_argument(
        "--out", type=Path, help="where job.yaml and artifacts/ go (default: <run>/lava)"
    )


def register(subparsers: Any) -> None:
    """Add `lava` with its job, run and submit subcommands."""
    lava = subparsers.add_parser(
        "lava",
        help="build as `harness run` does, then boot through LAVA (lava-run or a lab)",
        description="Every target and scenario as a LAVA job. " + _EXIT_HELP,
    )
    sub = lava.add_subparsers(dest="lava_command", required=True)
    job = sub.add_parser("job", help="build and write the LAVA job (and QEMU device file)")
    _common(job)
    job.add_argument("--artifact-url", help="where a lab fetches artifacts/ (default: file://)")
    job.set_defaults(func=cmd_job)
    run = sub.add_parser(
        "run", help="run the job here with lava-run and judge it", description=_EXIT_HELP
    )
    _common(run)
    run.set_defaults(func=cmd_run)
    submit = sub.add_parser(
        "submit", help="submit the job to a lava-server, wait, judge", description=_EXIT_HELP
    )
    _common(submit)
    submit.add_argument("--server", required=True, help="lava-server URL, e.g. https://lab/")
    submit.add_argument(
        "--token-file",
        type=Path,
        help="file holding the API token (default: $HARNESS_LAVA_TOKEN; never on the command "
        "line, where ps shows it)",
    )
    submit.add_argument("--token", help=argparse.SUPPRESS)
    submit.add_argument("--artifact-url", help="URL under which artifacts/ is published")
    submit.add_argument("--poll", type=positive_float, default=5.0, help="seconds between polls")
    submit.set_defaults(func=cmd_submit)


def options(args: argparse.Namespace) -> RunOptions:
    return RunOptions.from_args(args)


def argv_of(args: argparse.Namespace) -> list[str]:
    """The command line for metadata.json: never the token."""
    out = options(args).argv("lava", args.lava_command)
    for flag in ("server", "artifact_url"):
        if getattr(args, flag, None):
            out += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return out


def cmd_job(args: argparse.Namespace) -> int:
    from harness.lava import flow

    prep = flow.start(options(args), argv_of(args))
    files = flow.write_job(prep, args.out, args.artifact_url)
    print(f"job:       {files.job}")
    if files.device:
        print(f"device:    {files.device}")
    print(f"artifacts: {files.dir / 'artifacts'}")
    if args.artifact_url:
        print(f"publish {files.dir / 'artifacts'}/* under {args.artifact_url}")
    print(f"results:   {prep.rdir}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.lava import flow

    outcome = flow.run_local(options(args), argv_of(args), args.out)
    print(outcome.summary, end="")
    return outcome.verdict.exit_code


def read_token(args: argparse.Namespace) -> str | None:
    """The API token from --token-file or $HARNESS_LAVA_TOKEN; a token in argv is refused."""
    if args.token:
        raise ConfigError(
            "--token is not accepted: any user can read a command line (ps). Put the token "
            "in a file (--token-file FILE, mode 600) or in $HARNESS_LAVA_TOKEN"
        )
    if args.token_file:
        return read_secret(args.token_file, "--token-file")
    return os.environ.get("HARNESS_LAVA_TOKEN") or None


def cmd_submit(args: argparse.Namespace) -> int:
    from harness.lava import flow

    token = read_token(args)
    outcome = flow.run_submit(
        options(args), argv_of(args), args.server, token, args.artifact_url, args.out, args.poll
    )
    sys.stdout.write(outcome.summary)
    return outcome.verdict.exit_code
