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


def _number(text: str, kind: type[int] | type[float], *, strict: bool) -> int | float:
    """text as kind, > 0 (strict) or >= 0; a usage error names what is wrong."""
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if value < 0 or (strict and value == 0):
        rule = "must be greater than 0" if strict else "must not be negative"
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def positive_int(text: str) -> int:
    """An argparse type for seconds, counts and jobs: a positive whole number."""
    return int(_number(text, int, strict=True))


def non_negative_int(text: str) -> int:
    """An argparse type for retries: zero or more."""
    return int(_number(text, int, strict=False))


def positive_float(text: str) -> float:
    """An argparse type for poll intervals."""
    return float(_number(text, float, strict=True))


def probability(text: str) -> float:
    """An argparse type for a confidence: strictly between 0 and 1."""
    value = float(_number(text, float, strict=True))
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be below 1 (a probability)")
    return value


def add_run_arguments(p: argparse.ArgumentParser, *, lava: bool = False) -> None:
    """The flags of one run, shared by `harness run` and `harness lava job|run|submit`."""
    p.add_argument("target", help="a target (see `harness list`), e.g. arm32-highmem-ci")
    p.add_argument("--scenario", "-s", default="boot", help="a scenario (default: boot)")
    p.add_argument(
        "--kernel",
        "-k",
        help="a kernel spec (debian-6.12, the default; `harness list` shows them) or "
        "PATH[@REF] of a local git tree",
    )
    p.add_argument("--patch", action="append", metavar="FILE", help="inject a patch (repeatable)")
    p.add_argument(
        "--accel",
        choices=["auto", "kvm", "tcg"],
        help="QEMU accelerator (default auto: KVM only with hardware virtualisation)"
        + (", written to device.yaml" if lava else ""),
    )
    p.add_argument("--jobs", "-j", type=positive_int, help="make -j (default: all CPUs)")
    p.add_argument(
        "--timeout",
        type=positive_int,
        help="total boot timeout in seconds (default: the target's boot_timeout)"
        + (", the LAVA job's test timeout" if lava else ""),
    )
    p.add_argument("--results", help="results root (default: $HARNESS_RESULTS or results/)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument(
        "--clean",
        action="store_true",
        help="a canary's clean twin: the same steps without its bug patches (must pass)",
    )
    p.add_argument(
        "--cmdline",
        metavar="TEXT",
        help="append TEXT to the kernel command line (after the target's and the scenario's)"
        + (", also in the LAVA job" if lava else ""),
    )
    if not lava:
        add_remote_arguments(p)


def add_remote_arguments(p: argparse.ArgumentParser) -> None:
    """--host and its companions: boot on a machine one SSH hop away (run, bisect, nightly)."""
    g = p.add_argument_group("remote host (QEMU over SSH; the build stays here)")
    g.add_argument(
        "--host",
        metavar="[USER@]HOST[:PORT]",
        help="run QEMU on this host over SSH (KVM if the host has it); its key must be in "
        "known_hosts",
    )
    g.add_argument(
        "--known-hosts",
        metavar="FILE",
        help="check the host key against FILE (default: ~/.ssh/known_hosts); unknown or "
        "changed keys are refused",
    )
    g.add_argument(
        "--identity",
        metavar="FILE",
        help="private key to log in with (default: ssh-agent, then ~/.ssh/id_*); no passwords",
    )
    g.add_argument(
        "--remote-dir",
        metavar="DIR",
        help="per-run directories go under DIR on the host (default /tmp); removed after",
    )


def add_matrix_arguments(p: argparse.ArgumentParser) -> None:
    """--targets and --scenarios: the matrix of `nightly` and `series`, spelled the same."""
    p.add_argument("--targets", "-t", nargs="+", metavar="T", help="default: all targets")
    p.add_argument("--scenarios", "-s", nargs="+", metavar="S", help="default: all scenarios")


def names(values: list[str] | None) -> list[str]:
    """Accept both `--targets a b` and `--targets a,b`."""
    return [n for v in values or () for n in v.split(",") if n]
