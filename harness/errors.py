"""Error classes, each carrying the `harness run` exit code it maps to.

One place for the mapping keeps the CLI thin and bisect-step's translation honest.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_BUILD_ERROR = 2
EXIT_INFRA = 3
EXIT_USAGE = 4
EXIT_STALE = 5  # a canary (or a scenario's patches) needs a port to this kernel


class HarnessError(Exception):
    """Base class; `exit_code` is what `harness run` exits with."""

    exit_code = EXIT_INFRA


class ConfigError(HarnessError):
    """Bad YAML, unknown target/scenario, bad option: the user's input is wrong."""

    exit_code = EXIT_USAGE


class PatchError(HarnessError):
    """A patch did not apply; the tree has been left clean.

    `reason` tells callers why without reading the message: "does not apply" (stale
    context) or "already applied" (its reverse applies: the change is in the tree).
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, reason: str = "does not apply") -> None:
        super().__init__(message)
        self.reason = reason


class BuildError(HarnessError):
    """The kernel or a workload did not build, or the final .config lacks an option."""

    exit_code = EXIT_BUILD_ERROR


class InfraError(HarnessError):
    """Something outside the kernel failed: a download, QEMU, a missing tool."""

    exit_code = EXIT_INFRA


class NotApplicable(HarnessError):
    """The scenario cannot run on this target/kernel (e.g. THP workload on a non-LPAE arm32)."""

    exit_code = EXIT_USAGE


class StaleError(HarnessError):
    """None of a scenario's variants applies exactly to this kernel: it needs a port.

    Not a config error (nothing the user typed is wrong) and not a harness failure (the
    harness works; the tree moved under the canary's patch).
    """

    exit_code = EXIT_STALE
