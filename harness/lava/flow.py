"""`harness lava job|run|submit`: the `harness run` pipeline with LAVA doing the boot.

start/prepare/judge/finish come from harness.run, so the results folder, reports,
verdict and exit code have the same shape as a local run's; LAVA's own log and result
stay in results/<run-id>/lava/.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import yaml

from harness import run
from harness.errors import ConfigError, InfraError
from harness.fsutil import atomic_write_text
from harness.lava import job as jobmod
from harness.lava import local, logparse, publish
from harness.lava.store import ArtifactStore
from harness.proc import Progress
from harness.verdict import Verdict

WALL_MARGIN = 60  # seconds past the job's own timeout before lava-run is stopped


def start(opts: run.RunOptions, argv: list[str]) -> run.Prepared:
    prep = run.start(opts)
    prep.meta.update(command=shlex.join(argv))
    return prep


def write_job(
    prep: run.Prepared, out: Path | None = None, artifact_url: str | None = None
) -> publish.JobFiles:
    """Build as `harness run` does, then write and validate the LAVA job."""
    jobmod.check_supported(prep.target)
    run.prepare(prep)
    return publish.write(prep, out, artifact_url)


def _job_seconds(files: publish.JobFiles) -> int:
    return int(files.data["timeouts"]["job"]["minutes"]) * 60


def judge_log(
    prep: run.Prepared, text: str, t_boot: float, *, timed_out: bool = False
) -> tuple[Verdict, list]:
    """Console out of the LAVA log, then the same judge as a local boot."""
    log = logparse.parse_log(text)
    atomic_write_text(prep.rdir / "console.log", log.console)
    prep.meta.merge(
        "lava",
        result={k: v for k, v in log.job_result.items() if k != "extra"},
        test_cases=[{"case": c.get("case"), "result": c.get("result")} for c in log.test_cases],
        boot_command=log.boot_command,
    )
    prep.meta.merge("boot", via="lava")
    boot = logparse.boot_result(log, prep.nonce, timed_out=timed_out)
    return run.judge(prep, boot, t_boot)


def run_local(opts: run.RunOptions, argv: list[str], out: Path | None = None) -> run.RunOutcome:
    """`harness lava run`: the job executed here by lava-run."""
    prep = start(opts, argv)

    def body(prep: run.Prepared) -> tuple[Verdict, list]:
        files = write_job(prep, out)
        if files.device is None:
            raise ConfigError(
                f"{prep.target.name} runs on a LAVA board ({files.data['device_type']}), "
                "not under QEMU here: use `harness lava submit`"
            )
        t_boot = time.monotonic()
        job_id = f"harness-{prep.rdir.name}"
        lr = local.run(
            files.job,
            files.device,
            files.dir,
            job_id,
            timeout=_job_seconds(files) + WALL_MARGIN,
            quiet=prep.opts.quiet,
        )
        prep.meta.merge("reproducer", lava=local.shell_line(lr.argv))
        prep.meta.merge("lava", lava_run_exit=lr.returncode)
        return judge_log(prep, lr.log.read_text(), t_boot, timed_out=lr.timed_out)

    return run.finish(prep, body)


def _loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


def run_submit(
    opts: run.RunOptions,
    argv: list[str],
    server: str,
    token: str | None,
    artifact_url: str | None = None,
    out: Path | None = None,
    poll: float = 5.0,
    store: ArtifactStore | None = None,
    on_submitted: Callable[[int], None] | None = None,
) -> run.RunOutcome:
    """`harness lava submit`: the job run by a lab, judged here from its log.

    With a store (the nightly's), the artifacts go where the store says and the job
    points there; else at --artifact-url, else file://. `on_submitted(job_id)`: the build
    is done and the job is in the lab (the nightly hands the tree on).
    """
    from harness.lava.rest import LOST, LavaServer  # requests only for this path

    prep = start(opts, argv)
    lab = LavaServer(server, token)

    def body(prep: run.Prepared) -> tuple[Verdict, list]:
        url = artifact_url
        if store is not None:
            url = store.url_for((out or prep.rdir / "lava") / "artifacts", prep.rdir.name)
        if not url and not _loopback(server):
            print(
                "[lava] no --artifact-url: the job uses file:// URLs, which only a worker "
                "on this machine can fetch",
                file=sys.stderr,
            )
        files = write_job(prep, out, url)
        if store is not None:
            store.publish(files.dir / "artifacts", prep.rdir.name)
        t_boot = time.monotonic()
        job_id = lab.submit(files.job.read_text())
        prep.meta.merge(
            "lava", server=lab.url, job_id=job_id, job_url=f"{lab.url}/scheduler/job/{job_id}"
        )
        if on_submitted is not None:
            on_submitted(job_id)
        progress = Progress("lava", prep.opts.quiet)
        if not prep.opts.quiet:
            print(
                f"[lava] submitted job {job_id}: {lab.url}/scheduler/job/{job_id}", file=sys.stderr
            )
        try:
            final = lab.wait(
                job_id,
                _job_seconds(files) + WALL_MARGIN,
                poll=poll,
                on_state=lambda st, _t: progress.update(f"job {st.id}: {st.state} {st.health}"),
            )
        except BaseException:  # Ctrl-C, a nightly stopping: the lab's job goes with us
            lab.cancel(job_id)
            raise
        progress.done(f"job {job_id}: " + (f"{final.health}" if final else "timed out, canceled"))
        if final is not None and final.health == LOST:
            prep.meta.merge("lava", health=LOST, failure_comment=final.failure_comment,
                            actual_device=final.device,
                            worker=lab.worker_of(final.device))  # fmt: skip
            raise InfraError(f"LAVA lost job {job_id}: {final.failure_comment}")
        try:
            text = lab.logs(job_id)
        except InfraError:
            if final is None or final.health != "Canceled":
                raise
            why = f": {final.failure_comment}" if final.failure_comment else ""
            raise InfraError(f"the lab canceled LAVA job {job_id} before it ran{why}") from None
        atomic_write_text(files.dir / "lava.log", text)
        results = lab.results(job_id)
        atomic_write_text(files.dir / "result.yaml", results)
        device = final.device if final else ""
        prep.meta.merge(
            "lava",
            health=final.health if final else "Canceled",
            failure_comment=final.failure_comment if final else "",
            results=_summary(results),
            actual_device=device,
            worker=lab.worker_of(device) if device else "",
        )
        return judge_log(prep, text, t_boot, timed_out=final is None)

    return run.finish(prep, body)


def _summary(results_yaml: str) -> list[dict]:
    try:
        cases = yaml.safe_load(results_yaml) or []
    except yaml.YAMLError:
        return []
    return [
        {"suite": c.get("suite"), "name": c.get("name"), "result": c.get("result")}
        for c in cases
        if isinstance(c, dict)
    ]
