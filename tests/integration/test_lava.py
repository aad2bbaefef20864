"""LAVA for real: lava-run on this machine, and a real lava-server (Debian's, with
PostgreSQL) started by the test on loopback for the REST submission path.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from run_files import RUN_FILES

from harness import config, qemu
from harness.lava import job as jobmod
from harness.lava.validate import validate_device, validate_job

pytestmark = pytest.mark.integration

TITLE_612 = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
DEVICE_DICTS = Path("/etc/lava-server/dispatcher-config/devices")
WORKER, DEVICE, USER = "harness-ci-worker", "harness-ci-qemu", "harness-ci"

needs_lava_run = pytest.mark.skipif(
    not shutil.which("lava-run") or os.geteuid() != 0,
    reason="lava-run (apt-get install lava-dispatcher) runs as root",
)


def _frames(report: dict) -> list[str]:
    return [f["function"] for f in report["frames"]]


@needs_lava_run
def test_lava_run_clean_boot_passes(harness):
    r = harness("lava", "run", "arm32-highmem-ci")
    assert r.code == 0, r.stdout + r.stderr
    for name in (
        *RUN_FILES,
        "lava/job.yaml",
        "lava/device.yaml",
        "lava/lava.log",
        "lava/result.yaml",
    ):
        assert (r.results / name).exists(), name
    meta = r.meta
    assert meta["status"] == "complete" and meta["verdict"] == "pass"
    assert meta["lava"]["result"]["result"] == "pass"
    assert meta["lava"]["test_cases"] == [
        {"case": "mm_churn", "result": "pass"},
        {"case": "lazy_mmu_stress", "result": "pass"},
    ]
    assert meta["lava"]["boot_command"].startswith("/usr/bin/qemu-system-arm -M virt,highmem=off")
    console = (r.results / "console.log").read_text()
    assert "HighTotal:" in console and "mm-churn: 50 rounds of 2 MB, 0 failed" in console
    assert r.reports == [] and "PASS" in r.stdout
    assert not list(Path("/var/lib/lava/dispatcher/tmp").glob(f"harness-{meta['run_id']}"))


@needs_lava_run
def test_canary_same_verdict_and_title_through_lava_as_harness_run(harness):
    local = harness("run", "arm32-highmem-ci", "--scenario", "pte-lockptr-highpte")
    lava = harness("lava", "run", "arm32-highmem-ci", "--scenario", "pte-lockptr-highpte")
    assert local.code == lava.code == 1, lava.stdout + lava.stderr
    assert [r["title"] for r in lava.reports] == [r["title"] for r in local.reports] == [TITLE_612]
    assert _frames(lava.reports[0]) == _frames(local.reports[0])
    assert lava.meta["summary"] == local.meta["summary"]
    assert lava.meta["verdict"] == local.meta["verdict"] == "fail"
    # LAVA itself calls this an infrastructure error; the harness knows it is the kernel
    assert lava.meta["lava"]["result"]["error_msg"] == "Connection closed"


@needs_lava_run
@pytest.mark.parametrize(
    "name", [n for n in config.list_targets() if config.load_target(n).hypervisor is None]
)
def test_every_target_job_validates_and_lava_run_accepts_it(name, tmp_path):
    """Strict schema for every target, then the dispatcher's own validation of the
    pipeline (lava-run --validate) with this target's device file; no build needed."""
    target = config.load_target(name)
    files = {}
    for label in ("zImage", "initramfs.cpio.gz"):
        files[label] = tmp_path / label
        files[label].write_bytes(b"x")
    spec = jobmod.JobSpec(
        target,
        "boot",
        "0a1b2c",
        qemu.kernel_cmdline(target),
        target.boot_timeout,
        jobmod.Image(files["zImage"].as_uri(), "0" * 64),
        jobmod.Image(files["initramfs.cpio.gz"].as_uri(), "1" * 64),
    )
    job, device = jobmod.job(spec), jobmod.device(target, "tcg")
    validate_job(job)
    validate_device(device)
    (tmp_path / "job.yaml").write_text(jobmod.dump(job))
    (tmp_path / "device.yaml").write_text(jobmod.dump(device))
    job_id = f"harness-validate-{secrets.token_hex(4)}"
    try:
        proc = subprocess.run(
            [
                "lava-run",
                "--validate",
                "--job-id",
                job_id,
                "--device",
                str(tmp_path / "device.yaml"),
                "--output-dir",
                str(tmp_path / "out"),
                str(tmp_path / "job.yaml"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(f"/var/lib/lava/dispatcher/tmp/{job_id}", ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- a real lava-server on loopback -------------------------------------------------


def _run(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr[-2000:]}")
    return proc.stdout


def _manage(*args: str, check: bool = False) -> str:
    return _run("lava-server", "manage", *args, check=check)


def _start_postgres() -> list[str] | None:
    """Start the local cluster if it is down; the command to stop it again, or None."""
    if subprocess.run(["pg_isready", "-q"]).returncode == 0:
        return None
    for line in _run("pg_lsclusters", "--no-header").splitlines():
        version, cluster = line.split()[:2]
        _run("pg_ctlcluster", version, cluster, "start")
        return ["pg_ctlcluster", version, cluster, "stop"]
    raise RuntimeError("no PostgreSQL cluster (pg_lsclusters is empty)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.fixture(scope="session")
def lava_server(tmp_path_factory):
    """lava-server (gunicorn + scheduler) and a lava-worker on 127.0.0.1, one QEMU device."""
    needed = ("lava-server", "lava-worker", "gunicorn3", "pg_ctlcluster", "lava-run")
    missing = [c for c in needed if not shutil.which(c)]
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and lava-server + postgresql (missing: {missing})")
    work = tmp_path_factory.mktemp("lava-server")
    t0 = time.monotonic()
    stop_pg = _start_postgres()
    # the package's own set-up: database, role and migrations (idempotent)
    _run("/usr/bin/python3", "/usr/share/lava-server/postinst.py", "--config", "--db")
    _manage("users", "add", USER, "--superuser", "--staff", "--passwd", secrets.token_hex(8))
    token = _manage("tokens", "add", "--user", USER, check=True).strip().splitlines()[-1]
    _manage("device-types", "add", "qemu")
    _manage("workers", "add", WORKER)
    wtoken = _manage(
        "shell",
        "-c",
        f"from lava_scheduler_app.models import Worker; "
        f"print(Worker.objects.get(hostname='{WORKER}').token)",
        check=True,
    ).strip()
    _manage("devices", "add", "--device-type", "qemu", "--worker", WORKER, DEVICE)
    _manage("devices", "update", "--health", "GOOD", "--worker", WORKER, DEVICE, check=True)
    # jobs a killed earlier session left queued or running would hold the device
    _manage(
        "shell",
        "-c",
        "from lava_scheduler_app.models import Device, TestJob as J; "
        f"J.objects.filter(submitter__username='{USER}').exclude(state=J.STATE_FINISHED)"
        ".update(state=J.STATE_FINISHED, health=J.HEALTH_CANCELED); "
        f"Device.objects.filter(hostname='{DEVICE}').update(state=Device.STATE_IDLE)",
        check=True,
    )
    dict_file = DEVICE_DICTS / f"{DEVICE}.jinja2"
    dict_file.write_text("{% extends 'qemu.jinja2' %}\n{% set mac_addr = '52:54:00:12:34:59' %}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    procs = [
        _spawn(
            [
                "gunicorn3",
                "lava_server.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--worker-class",
                "eventlet",
                "-u",
                "lavaserver",
                "-g",
                "lavaserver",
            ],
            work / "gunicorn.log",
        ),
        # it drops to the lavaserver user: its log stays in /var/log/lava-server
        _spawn(["lava-server", "manage", "lava-scheduler"], work / "scheduler.out"),
        _spawn(
            [
                "lava-worker",
                "--name",
                WORKER,
                "--url",
                url,
                "--token",
                wtoken,
                "--worker-dir",
                str(work / "worker"),
                "--log-file",
                str(work / "worker.log"),
            ],
            work / "worker.out",
        ),
    ]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                w = requests.get(
                    f"{url}api/v0.2/workers/{WORKER}/",
                    timeout=5,
                    headers={"Authorization": f"Token {token}"},
                )
                if w.ok and w.json()["state"] == "Online":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"lava-server not up after 120 s; see {work}")
            time.sleep(1)
        print(f"\nlava-server up on {url} in {time.monotonic() - t0:.0f}s")
        yield url, token
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 15)
                p.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, 9)
        dict_file.unlink(missing_ok=True)
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)


def test_submit_round_trip_on_a_real_lava_server(lava_server, harness, monkeypatch):
    url, token = lava_server
    monkeypatch.setenv("HARNESS_LAVA_TOKEN", token)
    clean = harness("lava", "submit", "arm32-highmem-ci", "--server", url, "--poll", "2")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert clean.meta["lava"]["health"] == "Complete"
    assert {"suite": "harness-boot", "name": "mm_churn", "result": "pass"} in clean.meta["lava"][
        "results"
    ]
    canary = harness(
        "lava",
        "submit",
        "arm32-highmem-ci",
        "-s",
        "pte-lockptr-highpte",
        "--server",
        url,
        "--poll",
        "2",
    )
    assert canary.code == 1, canary.stdout + canary.stderr
    assert [r["title"] for r in canary.reports] == [TITLE_612]
    assert canary.meta["lava"]["health"] == "Incomplete"  # the lab's word for the panic
    assert canary.meta["canary_result"]["caught"] is True
    assert token not in json.dumps(canary.meta)
