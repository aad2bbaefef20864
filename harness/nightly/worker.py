"""One matrix run in a process of its own: `python -m harness.nightly.worker SPEC OUT`.

The run is exactly run.execute(), as for `harness run`; a process per run keeps a wedged
QEMU or a leak in one run from taking the nightly down, and lets the nightly stop every
run cleanly (SIGTERM unwinds like Ctrl-C: patches reverted, QEMU killed). The verdict,
with its details, goes to OUT as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from harness.errors import EXIT_INFRA, HarnessError
from harness.fsutil import atomic_write_text
from harness.run import RunOptions, RunOutcome, execute, remote_from_argv
from harness.verdict import Kind


def _sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    signal.signal(signal.SIGTERM, _sigterm)
    opts = RunOptions(
        target=spec["target"],
        scenario=spec["scenario"],
        kernel=spec["kernel"],
        jobs=spec.get("jobs"),
        quiet=True,
        results_root=Path(spec["results_root"]),
        boot_timeout=spec.get("boot_timeout"),
    )
    try:
        opts.remote = remote_from_argv(spec.get("remote") or [])
        if spec.get("lava"):
            outcome = _in_the_lab(opts, spec["lava"], spec.get("submitted"))
        else:
            outcome = execute(opts)
    except HarnessError as e:  # before a results folder existed (unknown target, ...)
        atomic_write_text(out, json.dumps({"error": str(e), "exit_code": e.exit_code}))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a crash before the results folder: the nightly must see it
        atomic_write_text(
            out,
            json.dumps(
                {
                    "error": f"the harness crashed: {type(e).__name__}: {e}",
                    "exit_code": EXIT_INFRA,
                    "kind": Kind.INTERNAL_ERROR,
                }
            ),
        )
        raise
    result = {
        "verdict": asdict(outcome.verdict) if outcome.verdict else None,
        "results_dir": str(outcome.results_dir),
        "run_id": outcome.run_id,
    }
    atomic_write_text(out, json.dumps(result, default=str))
    return 0


def _in_the_lab(opts: RunOptions, lava: dict, submitted: str | None = None) -> RunOutcome:
    """The same run as a LAVA job (`harness lava submit`), judged here from its log.

    `submitted`: a file that gets the job's id once the build is done and the job is in
    the lab; the nightly then lets the next cell use the tree while this job runs."""
    from harness.lava import flow
    from harness.lava.store import ArtifactStore

    argv = ["harness", "lava", "submit", opts.target, "--scenario", opts.scenario,
            "--kernel", opts.kernel, "--server", lava["server"]]  # fmt: skip
    return flow.run_submit(
        opts,
        argv,
        lava["server"],
        os.environ.get("HARNESS_LAVA_TOKEN"),
        poll=float(lava.get("poll") or 10.0),
        store=ArtifactStore.from_spec(lava.get("store")),
        on_submitted=(lambda job: atomic_write_text(Path(submitted), f"{job}\n"))
        if submitted
        else None,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
