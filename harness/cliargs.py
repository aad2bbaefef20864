"""Argument parsing shared by every subcommand: the exit code of a usage error, and
argument types that refuse nonsense (a zero or negative timeout) at the door."""

from __future__ import annotations

import argparse
import sys

from harness.errors import EXIT_USAGE

EXIT_INTERRUPTED = 130
BISECT_ABORT = 255  # git bisect run stops on any code above 127


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which the contract calls a build error (and
    `git bisect run` calls "bad"): usage errors exit 4, or `usage_exit` where set."""

    usage_exit = EXIT_USAGE

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """An argparse type for seconds, counts and jobs: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type for retries: zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value
