"""`harness lava run|submit|job` end to end on fakes: a fake build, a fake lava-run that
replays a real recorded log, and a local HTTP server that replays a real lava-server
exchange (recorded from Debian's lava-server 2023.01 on loopback).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from lava_fixtures import CANARY_LOG, CLEAN_LOG, DATA, TITLE_612, lava_common_available

from harness import cli, qemu
from harness import run as run_mod
from harness.build import BuildResult
from harness.lava import flow, publish
from harness.run import RunOptions

REST = DATA / "rest"
HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """run.prepare without a kernel build: fake images, the real scenario variant."""
    kdir = tmp_path / "build"
    kdir.mkdir()
    (kdir / "zImage").write_bytes(b"kernel")

    def prepare(prep):
        prep.build = BuildResult(kdir, kdir / "zImage", kdir / "vmlinux", kdir / "log", 1.0)
        prep.initrd = prep.rdir / "initramfs.cpio.gz"
        prep.initrd.write_bytes(b"initramfs")
        prep.variant = prep.scenario.variant_for((6, 12, 117))
        prep.cmdline = qemu.kernel_cmdline(prep.target, prep.scenario.cmdline)
        prep.argv = qemu.command_line(prep.target, prep.build.image, prep.initrd, "", "tcg")
        prep.meta.update(
            boot={"argv": prep.argv, "accel": "tcg", "accel_reason": "test"},
            boot_timeout=prep.target.boot_timeout,
            reproducer={"boot": "qemu ..."},
        )
        return prep

    monkeypatch.setattr(run_mod, "prepare", prepare)
    if not lava_common_available():
        monkeypatch.setattr(publish, "validate_job", lambda *a: None)
        monkeypatch.setattr(publish, "validate_device", lambda *a: None)
    return tmp_path


@pytest.fixture
def fake_lava_run(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "lava-run"
    exe.write_text(f"#!{sys.executable}\n" + (HERE / "fake_lava_run.py").read_text())
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    def use(log: Path, nonce: str) -> None:
        monkeypatch.setenv("FAKE_LAVA_LOG", str(log))
        monkeypatch.setenv("FAKE_LAVA_NONCE", nonce)

    return use


def _opts(tmp: Path, scenario: str = "boot") -> RunOptions:
    return RunOptions("arm32-highmem-ci", scenario, quiet=True, results_root=tmp / "results")


def test_lava_run_clean_boot_has_the_shape_of_harness_run(fake_build, fake_lava_run):
    fake_lava_run(CLEAN_LOG, "185739")
    out = flow.run_local(_opts(fake_build), ["harness", "lava", "run", "arm32-highmem-ci"])
    assert out.verdict.verdict == "pass" and out.verdict.exit_code == 0
    rdir = out.results_dir
    for name in ("console.log", "reports.json", "junit.xml", "metadata.json", "summary.txt"):
        assert (rdir / name).exists(), name
    for name in ("job.yaml", "device.yaml", "lava.log", "result.yaml", "artifacts/zImage"):
        assert (rdir / "lava" / name).exists(), name
    meta = json.loads((rdir / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["verdict"] == "pass"
    assert meta["command"] == "harness lava run arm32-highmem-ci"
    assert meta["boot"]["via"] == "lava" and meta["boot"]["ending"] == "poweroff"
    assert meta["lava"]["result"]["result"] == "pass"
    assert meta["lava"]["test_cases"] == [{"case": "mm_churn", "result": "pass"}]
    assert meta["reproducer"]["lava"].startswith("lava-run --job-id harness-")
    args = json.loads((rdir / "lava" / "fake-args.json").read_text())
    assert args[-1] == str(rdir / "lava" / "job.yaml")
    job = yaml.safe_load((rdir / "lava" / "job.yaml").read_text())
    kernel = job["actions"][0]["deploy"]["images"]["kernel"]
    assert kernel["url"] == (rdir / "lava" / "artifacts" / "zImage").as_uri()
    assert "HARNESS: DONE" in (rdir / "console.log").read_text()


def test_lava_run_canary_is_caught_not_infra(fake_build, fake_lava_run):
    fake_lava_run(CANARY_LOG, "f9b0f0")
    out = flow.run_local(_opts(fake_build, "pte-lockptr-highpte"), ["run"])
    assert out.verdict.exit_code == 1, out.summary
    assert out.verdict.summary == f"canary caught as expected: {TITLE_612}"
    assert [r.title for r in out.reports] == [TITLE_612]
    meta = json.loads((out.results_dir / "metadata.json").read_text())
    assert meta["lava"]["result"]["error_msg"] == "Connection closed"
    assert meta["canary_result"]["caught"] is True
    assert "<failure" in (out.results_dir / "junit.xml").read_text()


def test_lava_run_without_lava_run_is_an_infra_error(fake_build, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_build / "nowhere"))
    out = flow.run_local(_opts(fake_build), ["run"])
    assert out.verdict.verdict == "infra-error" and out.verdict.exit_code == 3
    assert "lava-run not found" in out.verdict.summary


class _Lab(BaseHTTPRequestHandler):
    """Replays the recorded exchange of job 2 (the 6.12 canary) on a real lava-server."""

    calls: list[str] = []
    posted: dict = {}
    states = ["Submitted", "Running"]

    def log_message(self, *a):  # quiet
        pass

    def _send(self, code: int, body: str, ctype: str = "application/json") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server API
        self.calls.append(f"POST {self.path} {self.headers.get('Authorization')}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posted = body
        if "actions" not in yaml.safe_load(body["definition"]):
            msg = "Problem with submitted job data: required key not provided @ data['actions']"
            return self._send(400, json.dumps({"message": msg}))
        self._send(201, json.dumps({"message": "job(s) successfully submitted", "job_ids": [2]}))

    def do_GET(self):  # noqa: N802
        self.calls.append(f"GET {self.path}")
        nonce = yaml.safe_load(self.posted["definition"])["metadata"]["harness.nonce"]
        if self.path == "/api/v0.2/jobs/2/":
            if len([c for c in self.calls if c == "GET /api/v0.2/jobs/2/"]) == 1:
                return self._send(503, "busy")  # retried by the client
            final = json.loads((REST / "job-2.json").read_text())
            if self.states:
                final.update(state=self.states.pop(0), health="Unknown")
            return self._send(200, json.dumps(final))
        if self.path == "/api/v0.2/jobs/2/logs/":
            text = (REST / "job-2-logs.yaml").read_text().replace("2cc1f5", nonce)
            return self._send(200, text, "application/yaml")
        if self.path == "/api/v0.2/jobs/2/yaml/":
            return self._send(200, (REST / "job-2-results.yaml").read_text(), "application/yaml")
        if self.path == "/api/v0.2/devices/harness-qemu-01/":  # the device the job ran on
            return self._send(200, json.dumps({"hostname": "harness-qemu-01",
                                               "worker_host": "harness-worker-01"}))  # fmt: skip
        self._send(404, "{}")


@pytest.fixture
def lab():
    _Lab.calls, _Lab.posted, _Lab.states = [], {}, ["Submitted", "Running"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_submit_round_trip_on_a_recorded_exchange(fake_build, lab):
    out = flow.run_submit(
        _opts(fake_build, "pte-lockptr-highpte"), ["submit"], lab, "s3cret", poll=0.01
    )
    assert out.verdict.exit_code == 1, out.summary
    assert [r.title for r in out.reports] == [TITLE_612]
    assert _Lab.calls[0].endswith("/api/v0.2/jobs/ Token s3cret")
    assert _Lab.calls[-3:] == ["GET /api/v0.2/jobs/2/logs/", "GET /api/v0.2/jobs/2/yaml/",
                               "GET /api/v0.2/devices/harness-qemu-01/"]  # fmt: skip
    meta = json.loads((out.results_dir / "metadata.json").read_text())
    assert meta["lava"]["job_id"] == 2 and meta["lava"]["health"] == "Incomplete"
    assert meta["lava"]["actual_device"] == "harness-qemu-01"
    assert meta["lava"]["worker"] == "harness-worker-01"
    assert meta["lava"]["job_url"] == lab.rstrip("/") + "/scheduler/job/2"
    assert {"suite": "lava", "name": "job", "result": "fail"} in meta["lava"]["results"]
    assert (out.results_dir / "lava" / "lava.log").read_text().startswith("- {")
    assert "s3cret" not in (out.results_dir / "metadata.json").read_text()


def test_submit_refused_by_the_server_is_a_config_error(fake_build, lab, monkeypatch):
    real = publish.write

    def broken(prep, out=None, artifact_url=None):
        files = real(prep, out, artifact_url)
        files.job.write_text("job_name: x\n")
        return files

    monkeypatch.setattr(publish, "write", broken)
    out = flow.run_submit(_opts(fake_build), ["submit"], lab, None, poll=0.01)
    assert out.verdict.exit_code == 4
    assert "refused the job: Problem with submitted job data" in out.verdict.summary


def test_cli_lava_job_writes_job_device_and_artifacts(fake_build, capsys):
    code = cli.main(
        [
            "lava",
            "job",
            "arm32-highmem-ci",
            "--results",
            str(fake_build / "results"),
            "--artifact-url",
            "https://lab.example/a/",
            "--out",
            str(fake_build / "out"),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"job:       {fake_build / 'out' / 'job.yaml'}" in text
    job = yaml.safe_load((fake_build / "out" / "job.yaml").read_text())
    ramdisk = job["actions"][0]["deploy"]["images"]["ramdisk"]
    assert ramdisk["url"] == "https://lab.example/a/initramfs.cpio.gz"
    assert (fake_build / "out" / "artifacts" / "initramfs.cpio.gz").read_bytes() == b"initramfs"
    assert (fake_build / "out" / "device.yaml").exists()


def test_cli_token_never_reaches_metadata(tmp_path):
    from harness.lava.cmd import argv_of, read_token

    tf = tmp_path / "token"
    tf.write_text("T0K\n")
    args = cli.build_parser().parse_args(
        ["lava", "submit", "x", "--server", "http://l/", "--token-file", str(tf), "-s", "boot"]
    )
    assert read_token(args) == "T0K"
    assert "T0K" not in " ".join(argv_of(args)) and "http://l/" in argv_of(args)


def test_cli_token_in_argv_is_refused(capsys):
    code = cli.main(["lava", "submit", "x", "--server", "https://l/", "--token", "T0K"])
    err = capsys.readouterr().err
    assert code == 4 and "--token is not accepted" in err and "T0K" not in err


def test_plain_http_with_a_token_warns(caplog):
    from harness.lava.rest import LavaServer

    LavaServer("http://lab.example/", "T0K")
    assert "plain http" in caplog.text
    caplog.clear()
    LavaServer("https://lab.example/", "T0K")
    LavaServer("http://127.0.0.1:8000/", "T0K")
    assert "plain http" not in caplog.text


def test_a_server_answering_html_is_an_infra_error(monkeypatch):
    import requests

    from harness.errors import InfraError
    from harness.lava.rest import LavaServer

    class Answer:
        status_code = 200
        headers = {"Content-Type": "text/html"}
        text = "<html><body>Please log in</body></html>"

        def json(self):
            raise ValueError("not json")

    lab = LavaServer("https://lab.example/")
    monkeypatch.setattr(lab.http, "request", lambda *a, **k: Answer())
    with pytest.raises(InfraError, match="expected JSON, got text/html"):
        lab.state(7)
    with pytest.raises(InfraError, match="expected JSON"):
        lab.submit("job: x")
    assert isinstance(lab.http, requests.Session)


def test_a_hung_lava_run_is_stopped_and_judged_a_timeout(tmp_path, monkeypatch):
    from harness.lava import local, logparse

    exe = tmp_path / "lava-run"
    exe.write_text(
        f"#!{sys.executable}\nimport sys, time\n"
        'print(\'{"dt": "2026-01-01T00:00:00", "lvl": "target", "msg": "Booting Linux"}\', '
        "file=sys.stderr, flush=True)\ntime.sleep(600)\n"
    )
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(local, "TERM_GRACE", 2.0)
    lr = local.run(
        tmp_path / "j", tmp_path / "d", tmp_path, "harness-test-hung", timeout=1.0, quiet=True
    )
    assert lr.timed_out and lr.returncode != 0 and lr.seconds < 10
    boot = logparse.boot_result(logparse.parse_log(lr.log.read_text()), "n", timed_out=True)
    assert boot.ending == "timeout-total" and boot.console == "Booting Linux\n"


def test_a_job_whose_worker_went_offline_is_lost_not_waited_out():
    from harness.lava import rest

    class Lab(rest.LavaServer):
        canceled: list[int] = []
        polls = 0

        def state(self, job_id):
            Lab.polls += 1
            return rest.JobState(job_id, "Running", "Unknown", "", "qemu-2")

        def worker_of(self, device):
            return "worker-2"

        def worker_state(self, worker):
            return "Online" if Lab.polls < 3 else "Offline"

        def cancel(self, job_id):
            Lab.canceled.append(job_id)

    st = Lab("https://lab.example/").wait(9, timeout=60, poll=0.01, lost_after=0.05)
    assert st.health == rest.LOST and st.device == "qemu-2"
    assert st.failure_comment == "worker worker-2 went offline while it ran the job"
    assert Lab.canceled == [9] and Lab.polls >= 4


def test_a_job_the_lab_canceled_before_it_ran_says_so(fake_build, monkeypatch):
    from harness.errors import InfraError
    from harness.lava import rest

    def no_log(self, job_id):
        raise InfraError(f"LAVA server {self.url}: GET jobs/{job_id}/logs/: HTTP 404")

    monkeypatch.setattr(rest.LavaServer, "submit", lambda self, definition: 5)
    monkeypatch.setattr(rest.LavaServer, "wait",
                        lambda self, *a, **k: rest.JobState(5, "Finished", "Canceled"))  # fmt: skip
    monkeypatch.setattr(rest.LavaServer, "logs", no_log)
    out = flow.run_submit(_opts(fake_build), ["submit"], "https://lab.example/", "t", poll=0.01)
    assert out.verdict.verdict == "infra-error"
    assert out.verdict.summary == "the lab canceled LAVA job 5 before it ran"


def test_an_interrupted_submit_cancels_its_job(fake_build, monkeypatch):
    from harness.lava import rest

    canceled = []

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rest.LavaServer, "submit", lambda self, definition: 7)
    monkeypatch.setattr(rest.LavaServer, "wait", interrupted)
    monkeypatch.setattr(rest.LavaServer, "cancel", lambda self, job_id: canceled.append(job_id))
    with pytest.raises(KeyboardInterrupt):
        flow.run_submit(_opts(fake_build), ["submit"], "https://lab.example/", "t", poll=0.01)
    assert canceled == [7]
