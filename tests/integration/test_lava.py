"""LAVA for real: lava-run on this machine, and a real lava-server (Debian's, with
PostgreSQL) started by the test on loopback for the REST submission path.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from run_files import RUN_FILES

from harness import config, qemu
from harness.lava import job as jobmod
from harness.lava.validate import validate_device, validate_job

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TITLE_612 = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
DEVICE_DICTS = Path("/etc/lava-server/dispatcher-config/devices")
WORKERS = ("harness-ci-worker", "harness-ci-worker-2")
DEVICES = ("harness-ci-qemu", "harness-ci-qemu-2")
USER = "harness-ci"

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


@dataclass
class Lab:
    url: str
    token: str
    workers: dict[str, subprocess.Popen]  # name -> its lava-worker process (own session)
    work: Path


def _worker_token(name: str) -> str:
    code = f"from lava_scheduler_app.models import Worker as W; print(W.objects.get(hostname='{name}').token)"  # noqa: E501
    return _manage("shell", "-c", code, check=True).strip()


def _spawn_worker(name: str, url: str, work: Path) -> subprocess.Popen:
    return _spawn(
        ["lava-worker", "--name", name, "--url", url, "--token", _worker_token(name),
         "--worker-dir", str(work / name), "--log-file", str(work / f"{name}.log")],
        work / f"{name}.out",
    )  # fmt: skip


def _online(url: str, token: str, name: str) -> bool:
    try:
        w = requests.get(f"{url}api/v0.2/workers/{name}/", timeout=5,
                         headers={"Authorization": f"Token {token}"})  # fmt: skip
        return w.ok and w.json()["state"] == "Online"
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def lava_server(tmp_path_factory):
    """lava-server (gunicorn + scheduler) and two lava-workers (separate processes and
    state dirs) on 127.0.0.1, one QEMU device each."""
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
    dict_files = []
    for i, (worker, device) in enumerate(zip(WORKERS, DEVICES, strict=True)):
        _manage("workers", "add", worker)
        _manage("devices", "add", "--device-type", "qemu", "--worker", worker, device)
        _manage("devices", "update", "--health", "GOOD", "--worker", worker, device, check=True)
        dict_file = DEVICE_DICTS / f"{device}.jinja2"
        mac = f"52:54:00:12:34:{0x59 + i:02x}"
        dict_file.write_text(f"{{% extends 'qemu.jinja2' %}}\n{{% set mac_addr = '{mac}' %}}\n")
        dict_files.append(dict_file)
    # jobs a killed earlier session left queued or running would hold the devices
    _manage(
        "shell",
        "-c",
        "from lava_scheduler_app.models import Device, TestJob as J; "
        f"J.objects.filter(submitter__username='{USER}').exclude(state=J.STATE_FINISHED)"
        ".update(state=J.STATE_FINISHED, health=J.HEALTH_CANCELED); "
        f"Device.objects.filter(hostname__in={list(DEVICES)!r}).update(state=Device.STATE_IDLE)",
        check=True,
    )
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
        ),  # fmt: skip
        # it drops to the lavaserver user: its log stays in /var/log/lava-server
        _spawn(["lava-server", "manage", "lava-scheduler"], work / "scheduler.out"),
    ]
    workers = {}
    try:
        deadline = time.monotonic() + 120
        while not requests_ok(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"lava-server not up after 120 s; see {work}")
            time.sleep(1)
        workers = {w: _spawn_worker(w, url, work) for w in WORKERS}
        while not all(_online(url, token, w) for w in WORKERS):
            if time.monotonic() > deadline:
                raise RuntimeError(f"lava workers not online after 120 s; see {work}")
            time.sleep(1)
        print(f"\nlava-server and {len(WORKERS)} workers up on {url} in "
              f"{time.monotonic() - t0:.0f}s")  # fmt: skip
        yield Lab(url, token, workers, work)
    finally:
        for p in [*procs, *workers.values()]:
            _kill_session(p)
        for f in dict_files:
            f.unlink(missing_ok=True)
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)


def requests_ok(url: str) -> bool:
    try:
        return requests.get(f"{url}api/v0.2/", timeout=5).status_code < 500
    except requests.RequestException:
        return False


def _session(sid: int) -> list[int]:
    """Every process of a session and all their descendants: lava-worker puts lava-run in
    a process group of its own, and lava-run starts QEMU on a pty, in a session of its own,
    so killing the worker's group would leave lava-run and QEMU behind."""
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state ppid pgrp session
            procs[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
    found = {pid for pid, (_, session) in procs.items() if session == sid}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def _kill_session(p: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """The process and everything it started in its session (lava-run, QEMU)."""
    for pid in _session(p.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 20
    while _session(p.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _session(p.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(20)


def test_submit_round_trip_on_a_real_lava_server(lava_server, harness, monkeypatch):
    url, token = lava_server.url, lava_server.token
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


# --- the nightly fanned out to the two-worker lab --------------------------------------

LAB_TARGETS = ["arm32-highmem-ci", "arm64-bbml2-ci"]
LAB_SCENARIOS = ["boot", "smoke", "pte-lockptr-highpte"]  # the canary: arm only


def _nightly(repo: Path, results: Path, *extra: str, env: dict | None = None,
             scenarios: list[str] = LAB_SCENARIOS):  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "nightly", "--kernel", str(repo),
         "--ref", "v6.12-debian", "--targets", *LAB_TARGETS, "--scenarios", *scenarios,
         "--parallel", "2", *extra],
        cwd=REPO, env={**os.environ, "HARNESS_RESULTS": str(results), **(env or {})},
        capture_output=True, text=True, timeout=5400,
    )  # fmt: skip
    sys.stderr.write(proc.stderr[-4000:])
    (folder,) = results.glob("nightly-*")
    return proc, json.loads((folder / "summary.json").read_text())


def _cells(summary: dict) -> dict[str, tuple[str, str]]:
    return {f"{c['target']}/{c['scenario']}": (c["status"], c["title"]) for c in summary["cells"]}


def _job_times(lab: Lab, ids: list[int]) -> dict[int, dict[str, float | None]]:
    """When the lab got, started and ended each job (epoch seconds; None: never)."""
    from datetime import datetime

    def when(v: str | None) -> float | None:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() if v else None

    headers = {"Authorization": f"Token {lab.token}"}
    times = {}
    for i in ids:
        j = requests.get(f"{lab.url}api/v0.2/jobs/{i}/", headers=headers, timeout=10).json()
        times[i] = {k: when(j.get(k)) for k in ("submit_time", "start_time", "end_time")}
    return times


def _kill_a_worker_mid_job(lab: Lab, name: str, device: str, stop: threading.Event) -> list:
    """Watch the lab; the first time a job runs on `device`, SIGKILL its worker (and the
    lava-run and QEMU it started)."""
    killed: list[int] = []
    headers = {"Authorization": f"Token {lab.token}"}
    while not stop.is_set() and not killed:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            jobs = requests.get(f"{lab.url}api/v0.2/jobs/?ordering=-id&limit=20",
                                headers=headers, timeout=5).json()["results"]  # fmt: skip
            for j in jobs:
                if j.get("actual_device") == device and j.get("state") == "Running":
                    time.sleep(3)  # the boot is under way
                    _kill_session(lab.workers[name], signal.SIGKILL)
                    killed.append(j["id"])
                    break
        stop.wait(1)
    return killed


def test_nightly_on_a_two_worker_lab_agrees_with_the_local_nightly(
    lava_server, kernel_git_repo, tmp_path
):
    """2 targets x 3 scenarios on the lab (artifacts served by the nightly over HTTP) and
    here: the same verdicts and titles cell for cell; jobs ran on both workers; a worker
    killed mid-job costs that job (lost, resubmitted to the other worker), not the night."""
    lab = lava_server
    cfg = tmp_path / "nightly.yaml"
    cfg.write_text(yaml.safe_dump({"lava": {"server": lab.url, "poll": 2,
                                            "artifacts": {"serve": "127.0.0.1:0"}}}))  # fmt: skip
    t0 = time.monotonic()
    local, local_summary = _nightly(kernel_git_repo, tmp_path / "local")
    t_local = time.monotonic() - t0
    assert local.returncode == 0, local.stdout + local.stderr[-3000:]

    stop = threading.Event()
    killer: list = []
    watcher = threading.Thread(
        target=lambda: killer.extend(_kill_a_worker_mid_job(lab, WORKERS[1], DEVICES[1], stop))
    )
    watcher.start()
    t0 = time.monotonic()
    try:
        remote, lab_summary = _nightly(kernel_git_repo, tmp_path / "lab", "--config", str(cfg),
                                       env={"HARNESS_LAVA_TOKEN": lab.token})  # fmt: skip
    finally:
        stop.set()
        watcher.join()
    t_lab = time.monotonic() - t0
    print(f"\nlocal nightly {t_local:.0f} s, lab nightly {t_lab:.0f} s")
    assert remote.returncode == 0, remote.stdout + remote.stderr[-3000:]
    assert _cells(lab_summary) == _cells(local_summary)
    assert _cells(lab_summary)["arm32-highmem-ci/pte-lockptr-highpte"][0] == "caught"
    booted = [c for c in lab_summary["cells"] if c["status"] != "skipped"]  # arm64: no canary
    wheres = [a["where"] for c in booted for a in c["attempts"]]
    assert all(w.startswith("lava job ") for w in wheres), wheres
    assert any(w.endswith(f"on {WORKERS[0]}") for w in wheres), wheres
    assert any(w.endswith(f"on {WORKERS[1]}") for w in wheres), wheres
    assert all(a["where"] == "here" for c in local_summary["cells"] for a in c["attempts"])
    assert len(killer) == 1, "no job ran on the second worker"
    lost = [a for c in lab_summary["cells"] for a in c["attempts"]
            if f"lava job {killer[0]} " in a["where"] + " "]  # fmt: skip
    assert [a["verdict"] for a in lost] == ["infra-error"], lost
    assert "went offline" in lost[0]["summary"]
    assert lab.token not in json.dumps(lab_summary)
    assert "LAVA lab " + lab.url in "\n".join(lab_summary["notes"])
    # every job in flight at once, not one target's cells after another: all four clean
    # cells' jobs were in the lab before the first job ended
    times = _job_times(lab, sorted({int(w.split()[2]) for w in wheres}))
    first_end = min(t["end_time"] for t in times.values() if t["end_time"])
    queued = [i for i, t in times.items() if t["submit_time"] and t["submit_time"] < first_end]
    print(f"lab jobs: {times}; in the lab before the first ended: {queued}")
    assert len(queued) >= 4, times

    # the same night with arm64 kept here (lava.targets): one night, two places
    cfg.write_text(yaml.safe_dump({"lava": {"server": lab.url, "poll": 2,
                                            "targets": ["arm32-highmem-ci"],
                                            "artifacts": {"serve": "127.0.0.1:0"}}}))  # fmt: skip
    mixed, mixed_summary = _nightly(kernel_git_repo, tmp_path / "mixed", "--config", str(cfg),
                                    env={"HARNESS_LAVA_TOKEN": lab.token},
                                    scenarios=["boot", "pte-lockptr-highpte"])  # fmt: skip
    assert mixed.returncode == 0, mixed.stdout + mixed.stderr[-3000:]
    cells = _cells(mixed_summary)
    for key in cells:
        assert cells[key] == _cells(local_summary)[key], key
    where = {f"{c['target']}/{c['scenario']}": [a["where"] for a in c["attempts"]]
             for c in mixed_summary["cells"] if c["status"] != "skipped"}  # fmt: skip
    assert all(w.startswith("lava job ") for w in where["arm32-highmem-ci/boot"]), where
    assert all(w.startswith("lava job ") for w in where["arm32-highmem-ci/pte-lockptr-highpte"])
    assert where["arm64-bbml2-ci/boot"] == ["here"], where
    assert "arm64-bbml2-ci here (not in lava.targets)" in "\n".join(mixed_summary["notes"])
