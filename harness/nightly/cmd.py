"""`harness nightly`: argument parsing only; the work is in harness.nightly.core."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cliargs import (
    add_matrix_arguments,
    add_remote_arguments,
    names,
    non_negative_int,
    positive_int,
)

EPILOG = """Exit codes: 0 no new regression and every canary caught (known issues
listed), 1 new regression(s) (whatever else happened: the reports list it all), 3 harness
failure (a canary not caught, an infrastructure error, a failed fetch), 4 usage or config
error, 5 a canary needs a port to this kernel (stale), 130 interrupted."""


def cmd_nightly(args: argparse.Namespace) -> int:
    from harness.nightly.core import NightlyOptions, run
    from harness.run import remote_from_args

    result = run(
        NightlyOptions(
            kernel=args.kernel,
            ref=args.ref,
            targets=names(args.targets),
            scenarios=names(args.scenarios),
            bisect_new=args.bisect_new,
            jobs=args.parallel,
            make_jobs=args.jobs,
            retries=args.retries,
            fetch=not args.no_fetch,
            remote=args.remote,
            config=Path(args.config) if args.config else None,
            results_root=Path(args.results) if args.results else None,
            boot_timeout=args.timeout,
            quiet=args.quiet,
            host=remote_from_args(args),
            send_mail=args.mail,
            submit_kcidb=args.kcidb,
            lava=args.lava,
        )
    )
    print(result.mail, end="")
    return result.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nightly",
        help="run the targets x scenarios matrix on a (linux-next) tree, compare with the "
        "previous nightly, write JUnit/KCIDB/HTML/mail reports",
        description="Fetch the tree (when it has a remote), test the newest next-YYYYMMDD "
        "tag (or --ref, else HEAD) on every target x scenario, canaries included, and "
        "classify each cell against the previous nightly: new, known, fixed, flaky.",
        epilog=EPILOG,
    )
    p.add_argument("--kernel", "-k", required=True, help="the local git tree (linux-next)")
    p.add_argument("--ref", help="ref to test (default: newest next-YYYYMMDD tag, else HEAD)")
    add_matrix_arguments(p)
    p.add_argument(
        "--bisect-new",
        action="store_true",
        help="bisect each new regression from the last nightly where it passed",
    )
    p.add_argument(
        "--parallel",
        type=positive_int,
        help="runs at a time (default: one per 4 CPUs, at least 1)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        help="make -j of each run, as in `harness run` (default: the CPUs shared out)",
    )
    p.add_argument(
        "--retries", type=non_negative_int, help="retries of a failure (default 1: flaky check)"
    )
    p.add_argument(
        "--remote",
        help="fetch tonight's tags from this remote (a name of the tree's remotes, or a URL "
        "or path; default: the settings' remote, else origin)",
    )
    p.add_argument("--no-fetch", action="store_true", help="do not fetch; test local refs")
    p.add_argument("--config", help="nightly settings YAML (remote URL, matrix, KCIDB, mail relay)")
    p.add_argument(
        "--lava",
        metavar="URL",
        help="run the cells of the targets a LAVA job can describe as jobs in this lab "
        "(lava: in --config for the token file, targets and artifact store; token default "
        "$HARNESS_LAVA_TOKEN); the rest run here",
    )
    p.add_argument(
        "--mail",
        action="store_true",
        help="send the summary mail through the settings' SMTP relay (mail: in --config; "
        "password from mail.smtp.password_file or $HARNESS_SMTP_PASSWORD)",
    )
    p.add_argument(
        "--kcidb",
        action="store_true",
        help="submit kcidb.json with KernelCI's kci-dev to the settings' endpoint (kcidb: in "
        "--config; token from kcidb.token_file or $HARNESS_KCIDB_TOKEN)",
    )
    p.add_argument("--timeout", type=positive_int, help="boot timeout of each run, in seconds")
    p.add_argument("--results", help="results root (default: results/)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    add_remote_arguments(p)
    p.set_defaults(func=cmd_nightly)
