"""`harness series`: argument parsing only; the work is in harness.series.core."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cliargs import add_matrix_arguments, names, non_negative_int, positive_int

EPILOG = """Exit codes: 0 no regression (the reply carries Tested-by), 1 the series regresses
(a patch breaks the build, or a cell passes on the base and fails on the tip: the reply names
the first bad patch), 3 harness failure (a cell could not be judged), 4 usage error or the
series does not apply on its base (the patch and hunk are named), 130 interrupted."""


def cmd_series(args: argparse.Namespace) -> int:
    from harness.series.core import SeriesOptions, run

    result = run(
        SeriesOptions(
            series=Path(args.series),
            kernel=args.kernel,
            base=args.base,
            targets=names(args.targets),
            scenarios=names(args.scenarios),
            jobs=args.jobs,
            retries=args.retries,
            calibrate=args.calibrate,
            results_root=Path(args.results) if args.results else None,
            sender=args.sender,
            quiet=args.quiet,
        )
    )
    print(result.summary, end="")
    return result.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "series",
        help="test a posted patch series (mbox) A/B against its base; name the first bad "
        "patch; write a reply mail",
        description="Apply the series with git am on its base (the cover letter's "
        "base-commit trailer, or --base), build every patch in order, run the matrix on the "
        "base and on the tip, bisect a regression within the series and confirm it by a "
        "revert, and write a reply threaded under the cover letter (reply.eml).",
        epilog=EPILOG,
    )
    p.add_argument("series", help="an mbox (git format-patch --stdout, b4) or a folder of patches")
    p.add_argument("--kernel", "-k", required=True, help="the local git tree holding the base")
    p.add_argument("--base", help="the base commit (default: the base-commit trailer)")
    add_matrix_arguments(p)
    p.add_argument("--jobs", "-j", type=positive_int, help="make -j (default: all CPUs)")
    p.add_argument(
        "--retries", type=non_negative_int, default=1, help="retries of a failing cell (default 1)"
    )
    p.add_argument(
        "--calibrate",
        type=positive_int,
        default=3,
        help="boots of the tip that measure a flaky regression before bisecting (default 3)",
    )
    p.add_argument(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="the reply's From (default: $HARNESS_MAIL_FROM, else the tree's git identity)",
    )
    p.add_argument("--results", help="results root (default: $HARNESS_RESULTS or results/)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_series)
