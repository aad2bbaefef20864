"""Bad input of every kind: each gets a clear message and its documented exit code.

The harness runs for real (subprocess, the small tree from conftest); the contract is the
README's: 0 pass, 1 regression, 2 build error, 3 infra error or a crash of ours, 4 usage
or config error, 130 interrupted; bisect-step answers 255 (abort) for anything of ours.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from reltools import REPO, TARGET, Small

pytestmark = pytest.mark.reliability

BASE_TARGET = """description: a target for bad-input tests
inherits: arm32-highmem-ci
"""


def harness(small: Small, *args: str, hpath: Path | None = None, timeout=300, **env):
    results = small.new_results()
    e = small.env(HARNESS_RESULTS=str(results), **env)
    if hpath is not None:
        e["HARNESS_PATH"] = f"{hpath}:{e['HARNESS_PATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, results


def run_small(small: Small, *extra: str, **env):
    """`harness run TARGET --kernel small-linux -q EXTRA...` on the small tree."""
    return harness(small, "run", TARGET, "--kernel", "small-linux", "-q", *extra, **env)


@pytest.fixture
def lab(tmp_path) -> Path:
    """A HARNESS_PATH folder a test fills with its own (bad) targets and scenarios."""
    (tmp_path / "configs" / "targets").mkdir(parents=True)
    (tmp_path / "scenarios").mkdir()
    return tmp_path


TARGET_CASES = {
    "syntax": (b"description: [unclosed\narch: arm\n", r"bad\.yaml:\d+: invalid YAML"),
    "not-utf8": (b"description: caf\xe9\n", r"bad\.yaml:1: not UTF-8 \(byte 0xe9"),
    "a-list": (b"- arm\n- arm64\n", r"bad\.yaml: top level: expected a mapping"),
    "unknown-key": (BASE_TARGET.encode() + b"colour: blue\n", r"bad\.yaml: colour: unknown key"),
    "wrong-type": (BASE_TARGET.encode() + b"qemu:\n  smp: two\n", r"qemu\.smp: expected int"),
    "missing-key": (b"description: x\narch: arm\n", r"bad\.yaml: qemu\.binary: required key"),
    "zero-silence": (BASE_TARGET.encode() + b"silence_timeout: 0\n", r"silence_timeout: must be"),
    "negative-boot": (BASE_TARGET.encode() + b"boot_timeout: -5\n", r"boot_timeout: must be"),
    "hostile-arch": (
        BASE_TARGET.encode() + b"debian_arch: ../../../tmp\n",
        r"debian_arch name '\.\./\.\./\.\./tmp' is not valid",
    ),
    "inherits-cycle": (b"inherits: bad\n", r"inherits: cycle"),
    "fragment-path": (BASE_TARGET.encode() + b"fragments: [../../x.config]\n", r"not a path"),
}


@pytest.mark.parametrize("case", sorted(TARGET_CASES))
def test_malformed_target(small, lab, case):
    data, message = TARGET_CASES[case]
    (lab / "configs" / "targets" / "bad.yaml").write_bytes(data)
    proc, results = harness(small, "run", "bad", "--kernel", "small-linux", hpath=lab)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not results.exists() or not any(results.iterdir())  # nothing half made


SCENARIO_CASES = {
    "bad-regex": (
        "canary: true\nvariants:\n  - kernel: '>=6.1'\n    expect: {title_regex: '('}\n",
        r"expect\.title_regex: missing \)",
    ),
    "bad-range": ("variants:\n  - kernel: '>=six'\n", r"bad kernel version range"),
    "missing-workload": ("steps:\n  - workload: nosuch\n", r"workload 'nosuch': no nosuch\.c"),
    "hostile-workload": ("steps:\n  - workload: ../../x\n", r"not a valid workload name"),
    "negative-step-timeout": ("steps:\n  - sh: 'true'\n    timeout: -1\n", r"timeout: must be 0"),
    "patch-path": (
        "variants:\n  - kernel: '>=6.1'\n    patches: [../../../etc/passwd]\n",
        r"a file name in patches/, not a path",
    ),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
def test_malformed_scenario(small, lab, case):
    text, message = SCENARIO_CASES[case]
    (lab / "scenarios" / "bad").mkdir()
    (lab / "scenarios" / "bad" / "scenario.yaml").write_text(text)
    proc, _ = harness(small, "run", TARGET, "-s", "bad", "--kernel", "small-linux", hpath=lab)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert re.search(message, proc.stderr), proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "../../etc/passwd"], r"target name '\.\./\.\./etc/passwd' is not valid"),
        (["run", TARGET, "-s", "../boot"], r"scenario name '\.\./boot' is not valid"),
        (["run", ".hidden"], r"target name '\.hidden' is not valid"),
        (["run", TARGET, "--kernel", "no-such-spec"], r"neither a known source"),
        (["run", TARGET, "--kernel", "/"], r"not a git tree"),
        (["run", TARGET, "--bogus-flag"], r"unrecognized arguments: --bogus-flag"),
        (["run", TARGET, "--timeout", "0"], r"--timeout: 0 must be greater than 0"),
        (["run", TARGET, "--jobs", "-3"], r"--jobs/-j: -3 must be greater than 0"),
        (["nosuchcommand"], r"invalid choice"),
        (["run"], r"the following arguments are required: target"),
    ],
)
def test_usage_errors_exit_4(small, args, message):
    proc, _ = harness(small, *args)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert re.search(message, proc.stdout + proc.stderr), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_bisect_step_never_votes_on_a_usage_error(small):
    proc, _ = harness(small, "bisect-step", TARGET, "--bogus")
    assert proc.returncode == 255, proc.stderr  # git bisect run: abort, never "bad"
    proc, _ = harness(small, "bisect-step", TARGET, "--kernel", "/nonexistent")
    assert proc.returncode == 255, proc.stderr


def test_a_crash_of_ours_exits_3_with_the_traceback_kept(small):
    proc, results = run_small(
        small,
        "--patch",
        str(small.patches[0]),
        HARNESS_FAULT="apply:after:raise",
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    (run,) = list(results.iterdir())
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["verdict"] == "internal-error" and meta["exit_code"] == 3
    assert "RuntimeError: fault injected at apply:after" in (run / "traceback.txt").read_text()
    assert "the harness crashed" in proc.stdout
    assert small.differences("tarball") == []  # the patch came out on the way


def test_a_crash_in_a_bisect_step_aborts_the_bisection(small):
    from harness.source import worktree_name

    proc, _ = harness(
        small,
        "bisect-step",
        TARGET,
        "--kernel",
        str(small.repo),
        "--retries",
        "0",  # a retry would pass: the fault is injected once per process
        HARNESS_FAULT="lock:acquired:raise",
    )
    assert proc.returncode == 255, proc.stdout + proc.stderr
    assert "internal-error" in proc.stdout
    assert worktree_name(small.repo)  # the user's tree itself was built in place
    status = subprocess.run(
        ["git", "-C", str(small.repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""  # no lock file, journal or patch left in the user's tree


def test_stale_patch_names_file_and_hunk_and_leaves_the_tree(small, tmp_path):
    stale = tmp_path / "stale.patch"
    stale.write_text(
        "--- a/mm/f03.c\n+++ b/mm/f03.c\n@@ -1,3 +1,3 @@\n /* mm/f03.c: part 3 of a small tree */\n"
        '-const char *part3_name = "not what the file says";\n+const char *part3_name = "x";\n'
        " int part3(int x)\n"
    )
    proc, _ = run_small(small, "--patch", str(stale))
    assert proc.returncode == 4, proc.stdout
    assert "does not apply" in proc.stdout and "no fuzz" in proc.stdout
    assert "mm/f03.c, hunk #1" in proc.stdout
    assert small.differences("tarball") == []


def test_fuzzy_patch_is_refused(small, tmp_path):
    """Context lines that exist nowhere in the file: patch(1) would apply it with fuzz 2."""
    src = (small.pristine / "mm" / "f04.c").read_text().splitlines()
    fuzzy = tmp_path / "fuzzy.patch"
    fuzzy.write_text(
        "--- a/mm/f04.c\n+++ b/mm/f04.c\n@@ -1,6 +1,6 @@\n"
        " /* a first line that is not there */\n /* nor this one */\n"
        f" {src[2]}\n-{src[3]}\n+{{ /* changed */\n {src[4]}\n {src[5]}\n"
    )
    plain = subprocess.run(
        ["patch", "-p1", "--dry-run", "-d", str(small.pristine), "-i", str(fuzzy)],
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 0 and "fuzz" in plain.stdout  # what patch(1) would accept
    proc, _ = run_small(small, "--patch", str(fuzzy))
    assert proc.returncode == 4 and "does not apply" in proc.stdout, proc.stdout
    assert small.differences("tarball") == []


def test_already_applied_patch_says_so(small, tmp_path):
    rev = tmp_path / "rev.patch"
    text = small.patches[1].read_text()
    rev.write_text(text.replace("a/mm", "X/mm").replace("b/mm", "a/mm").replace("X/mm", "b/mm"))
    # the reverse of a patch that is not in the tree is a patch that is "already applied"
    swapped = []
    for line in rev.read_text().splitlines():
        if line.startswith("-") and not line.startswith("---"):
            swapped.append("+" + line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            swapped.append("-" + line[1:])
        else:
            swapped.append(line)
    rev.write_text("\n".join(swapped) + "\n")
    proc, _ = run_small(small, "--patch", str(rev))
    assert proc.returncode == 4 and "already applied" in proc.stdout, proc.stdout


def test_patches_with_one_name_both_apply_and_both_go(small):
    proc, results = run_small(
        small,
        "--patch",
        str(small.patches[1]),
        "--patch",
        str(small.patches[0]),
    )
    assert proc.returncode == 1, proc.stdout  # the bug patch is in: caught
    (run,) = list(results.iterdir())
    assert sorted(p.name for p in (run / "patches").iterdir()) == ["01-fix.patch", "02-fix.patch"]
    assert small.differences("tarball") == []
    again, _ = run_small(small)
    assert again.returncode == 0, again.stdout


def test_list_into_a_closed_pipe_keeps_its_exit_code(small):
    proc = subprocess.run(
        f"{sys.executable} -m harness.cli list | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        cwd=REPO,
        env=small.env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "targets:\n"
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def _peak_rss_kib(pid: int, proc: subprocess.Popen) -> int:
    peak = 0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.1)
    return peak


def test_console_flood_is_stopped_at_flat_memory(small):
    results = small.new_results()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", TARGET, "--kernel", "small-linux", "-q"],
        cwd=REPO,
        env=small.env(HARNESS_RESULTS=str(results), FAKE_QEMU_MODE="flood"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = _peak_rss_kib(proc.pid, proc)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 3, out + err
    assert "flooded the console (256 MiB)" in out
    (run,) = list(results.iterdir())
    assert (run / "console.log").stat().st_size > 256 << 20  # all of it went to disk
    # the console is 256 MiB; the harness keeps a few MiB of it
    assert peak < 160 * 1024, f"peak RSS {peak} KiB"
    assert small.wait_no_leftovers() == []


def test_console_with_nul_bytes_and_cr_only_line_ends(small):
    proc, results = run_small(small, FAKE_QEMU_MODE="crlf")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = list(results.iterdir())
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["boot"]["done"] and len(meta["boot"]["steps"]) == 2
    assert b"\0" not in (run / "console.log").read_bytes()
    bug, results = run_small(
        small,
        "--patch",
        str(small.patches[0]),
        FAKE_QEMU_MODE="crlf",
    )
    assert bug.returncode == 1, bug.stdout
    (run,) = list(results.iterdir())
    (report,) = json.loads((run / "reports.json").read_text())
    assert report["title"].startswith("BUG: unable to handle kernel NULL pointer dereference")


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self._html()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._html()

    def _html(self):
        body = b"<html><body><h1>Single sign-on</h1>Please log in.</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_lava_server_answering_garbage_is_an_infra_error(small):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        proc, results = harness(
            small,
            "lava",
            "submit",
            TARGET,
            "--kernel",
            "small-linux",
            "--server",
            url,
            "-q",
            HARNESS_LAVA_TOKEN="secret-token-123",
        )
    finally:
        server.shutdown()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "expected JSON, got text/html" in proc.stdout
    (run,) = list(results.iterdir())
    for f in run.rglob("*"):
        if f.is_file():
            assert b"secret-token-123" not in f.read_bytes(), f


def test_lava_token_on_the_command_line_is_refused(small):
    proc, _ = harness(small, "lava", "submit", TARGET, "--server", "https://x/", "--token", "s3")
    assert proc.returncode == 4 and "--token is not accepted" in proc.stderr
