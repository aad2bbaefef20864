"""`harness nightly` on a real kernel tree: three synthetic linux-next tags on Debian's 6.12.

next-20260301 is clean, next-20260302 adds the pte_lockptr HIGHPTE bug as an upstream
commit, next-20260303 reverts it. Three nightlies on arm32-highmem-ci x [boot, the
pte_lockptr canary] must read: all green (canary caught); exactly one new regression
(boot), bisected to the bug; fixed. The reports validate (KCIDB) and render (Chromium), and
leave the machine: mail through an SMTP relay and KCIDB through kci-dev, on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from gitutil import git_env
from kseries import BUG_SUBJECT, comment, commit, commit_bug
from loopback_outbox import KcidbEndpoint, SmtpSink

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LAB = Path(__file__).parent / "lab"
CHROMIUM = "/usr/bin/chromium"
BOOT, CANARY = "arm32-highmem-ci/boot", "arm32-highmem-ci/pte-lockptr-highpte"
TITLE = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
KCIDB_TOKEN = "lab-kcidb-token-0123"


@pytest.fixture(scope="module")
def next_repo(kernel_git_repo):
    """The fixture's repository with a nightly-next branch and the three next- tags.

    The same repository as every git test, so the nightly builds in the one harness
    worktree (and build dir) that CI already warmed: a clone of its own would cost a
    cold kernel build. The commits are reproducible (fixed dates), so tags are re-set.
    """
    repo = kernel_git_repo
    git_env(repo, "checkout", "-q", "-f", "-B", "nightly-next", "v6.12-debian")
    comment(repo, "mm/mmap.c", "next-20260301: do_mmap() callers hold mmap_lock for write.")
    tags = {"next-20260301": commit(repo, "mm/mmap: note the locking of do_mmap() callers")}
    tags["next-20260302"] = commit_bug(repo)
    git_env(repo, "revert", "--no-edit", "HEAD")
    tags["next-20260303"] = git_env(repo, "rev-parse", "HEAD")
    for tag, sha in tags.items():
        git_env(repo, "tag", "-f", tag, sha)
    return repo, tags


@pytest.fixture(scope="module")
def outbox(tmp_path_factory):
    """The lab's SMTP relay and KCIDB endpoint on loopback, and settings that name them."""
    with SmtpSink() as sink, KcidbEndpoint(KCIDB_TOKEN) as ep:
        cfg = tmp_path_factory.mktemp("lab") / "nightly.yaml"
        cfg.write_text(yaml.safe_dump({
            "mail": {"from": "Lab nightly <nightly@lab.example.org>", "to": ["linux-mm@kvack.org"],
                     "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"}},
            "kcidb": {"url": ep.url},
        }))  # fmt: skip
        yield cfg, sink, ep


@pytest.fixture(scope="module")
def nightlies(next_repo, outbox, tmp_path_factory):
    """The three nightlies, run as a lab would: `harness nightly`, one after the other,
    mailing the summary and submitting to KCIDB (the token in the environment)."""
    repo, tags = next_repo
    results = tmp_path_factory.mktemp("nightly-results")
    env = {**os.environ, "HARNESS_RESULTS": str(results), "HARNESS_KCIDB_TOKEN": KCIDB_TOKEN}
    out = {}
    for ref, extra in (("next-20260301", []), ("next-20260302", ["--bisect-new"]),
                       ("next-20260303", [])):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", "nightly", "--kernel", str(repo), "--ref", ref,
             "--targets", "arm32-highmem-ci", "--scenarios", "boot", "pte-lockptr-highpte",
             "--config", str(outbox[0]), "--mail", "--kcidb", *extra],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=5400,
        )  # fmt: skip
        sys.stderr.write(proc.stderr[-4000:])
        assert KCIDB_TOKEN not in proc.stdout + proc.stderr
        (folder,) = results.glob(f"nightly-{ref}-*")
        summary = json.loads((folder / "summary.json").read_text())
        out[ref] = (proc, folder, summary)
    return repo, tags, out


def statuses(summary: dict) -> dict[str, str]:
    return {f"{c['target']}/{c['scenario']}": c["status"] for c in summary["cells"]}


def test_three_nightlies_classify(nightlies):
    repo, tags, out = nightlies
    proc, _, s1 = out["next-20260301"]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert statuses(s1) == {BOOT: "pass", CANARY: "caught"}
    assert s1["commit"] == tags["next-20260301"]

    proc, folder, s2 = out["next-20260302"]
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert statuses(s2) == {BOOT: "new", CANARY: "in-tree"}
    assert [c for c in s2["cells"] if c["status"] == "new"] == [s2["cells"][0]]
    boot = s2["cells"][0]
    assert boot["title"] == TITLE and len(boot["attempts"]) == 2  # reproduced on the retry
    assert "passed on next-20260301" in boot["reason"]
    # --bisect-new: from the last nightly where boot passed to tonight's ref
    b = boot["bisection"]
    assert b["good"] == tags["next-20260301"] and b["bad"] == tags["next-20260302"]
    assert b["culprit"] == tags["next-20260302"] and b["exit_code"] == 0, b["summary"]
    assert "fixes/hides this issue" in b["summary"]
    mail = (folder / "mail.txt").read_text()
    assert mail.startswith("Subject: [harness nightly] next-20260302: 1 new regression")
    assert BUG_SUBJECT in mail or tags["next-20260302"] in mail

    proc, _, s3 = out["next-20260303"]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert statuses(s3) == {BOOT: "fixed", CANARY: "caught"}
    # the user's checkout is untouched by the nightlies and the bisection
    assert git_env(repo, "rev-parse", "HEAD") == tags["next-20260303"]
    assert git_env(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_reports_validate(nightlies):
    from harness.nightly.reports import kcidb

    _, _, out = nightlies
    for ref, (_, folder, _) in out.items():
        data = json.loads((folder / "kcidb.json").read_text())
        kcidb.validate(data)
        assert data["checkouts"][0]["git_commit_name"] == ref
        suites = ET.parse(folder / "junit.xml").getroot().findall("testsuite")
        assert [s.get("name") for s in suites] == ["nightly.arm32-highmem-ci"]
    data = json.loads((out["next-20260302"][1] / "kcidb.json").read_text())
    assert [i["report_subject"] for i in data["issues"]] == [TITLE]
    boot_tests = [t for t in data["tests"] if t["path"] == "harness.boot"]
    assert [t["status"] for t in boot_tests] == ["FAIL", "FAIL"]
    assert all(Path(t["log_url"][len("file://") :]).exists() for t in boot_tests)


def test_mail_and_kcidb_leave_the_machine(nightlies, outbox):
    """Each night's mail reached the relay, threaded (the fix answers the regression's mail),
    and each night's KCIDB document reached the endpoint, which validated it."""
    _, _, out = nightlies
    _, sink, ep = outbox
    refs = ["next-20260301", "next-20260302", "next-20260303"]
    mails = [r.message for r in sink.received]
    assert [m["Subject"].split(":")[0] for m in mails] == [f"[harness nightly] {r}" for r in refs]
    assert all(r.recipients == ["linux-mm@kvack.org"] for r in sink.received)
    assert mails[0]["In-Reply-To"] is None and mails[1]["In-Reply-To"] is None
    assert mails[2]["In-Reply-To"] == mails[1]["Message-ID"]
    assert TITLE in mails[1].get_content()
    assert [d["checkouts"][0]["git_commit_name"] for d in ep.accepted] == refs
    assert ep.refused == []
    for ref, m in zip(refs, mails, strict=True):
        folder, summary = out[ref][1], out[ref][2]
        assert m["Message-ID"] in summary["delivery"]["mail"]
        assert summary["delivery"]["kcidb"].startswith(f"submitted to {ep.url}")
        for f in folder.rglob("*"):
            assert not f.is_file() or KCIDB_TOKEN.encode() not in f.read_bytes(), f


def _chromium(*args: str) -> subprocess.CompletedProcess:
    assert Path(CHROMIUM).exists(), "chromium is missing: run ./bootstrap.sh --test"
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip


def test_html_renders_in_chromium(nightlies, tmp_path):
    _, _, out = nightlies
    folder = out["next-20260302"][1]
    index = (folder / "index.html").resolve().as_uri()
    shot = tmp_path / "nightly.png"
    proc = _chromium("--window-size=1280,900", f"--screenshot={shot}", index)
    assert shot.exists() and shot.stat().st_size > 1000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = _chromium("--dump-dom", index).stdout
    assert '<table id="matrix">' in dom
    assert 'data-status="new" data-cell="arm32-highmem-ci/boot"' in dom
    assert 'data-status="in-tree" data-cell="arm32-highmem-ci/pte-lockptr-highpte"' in dom
    cell = (folder / "cells" / "arm32-highmem-ci--boot.html").resolve().as_uri()
    dom = _chromium("--dump-dom", cell).stdout
    assert TITLE in dom and "handle_mm_fault" in dom and "console.log" in dom
    trend = (out["next-20260303"][1] / "trend.html").resolve().as_uri()
    dom = _chromium("--dump-dom", trend).stdout
    assert dom.count('data-status="new"') == 1 and dom.count('data-status="fixed"') == 1
    shutil.copy(shot, folder / "screenshot.png")  # for whoever looks at the results later


def test_kernel_tests_per_test(next_repo, tmp_path):
    """A kselftest cell: its tests one by one in summary.json, JUnit, KCIDB and the HTML.

    Last in the file: the last night's ref again (its kernel is built), with its own
    history.
    """
    from harness.nightly.reports import kcidb

    repo, _ = next_repo
    env = {
        **os.environ,
        "HARNESS_RESULTS": str(tmp_path),
        "HARNESS_PATH": os.pathsep.join([str(LAB), os.environ.get("HARNESS_PATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "nightly", "--kernel", str(repo),
         "--ref", "next-20260303", "--targets", "arm32-highmem-ci",
         "--scenarios", "kselftest-mm-smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    (folder,) = tmp_path.glob("nightly-next-20260303-*")
    (cell,) = json.loads((folder / "summary.json").read_text())["cells"]
    assert cell["status"] == "pass", cell
    tests = {t["path"]: t for t in cell["tests"]}
    # what each binary printed, case by case (mdwe_test has dozens of its own)
    for binary, at_least in (("map_fixed_noreplace", 5), ("mdwe_test", 20),
                             ("mremap_dontunmap", 3)):  # fmt: skip
        cases = [p for p in tests if p.startswith(f"kselftest.mm.{binary}.")]
        assert len(cases) >= at_least, sorted(tests)
    assert {t["status"] for t in tests.values()} <= {"pass", "skipped"}, tests
    assert all(t["result"] == "pass" for t in tests.values() if t["status"] == "pass")
    data = json.loads((folder / "kcidb.json").read_text())
    kcidb.validate(data)
    paths = {t["path"] for t in data["tests"]}
    assert set(tests) <= paths
    root = ET.parse(folder / "junit.xml").getroot()
    prefix = "nightly.arm32-highmem-ci."
    cases = {f"{c.get('classname')}.{c.get('name')}"[len(prefix) :] for c in root.iter("testcase")}
    assert set(tests) <= cases, cases
    page = (folder / "cells" / "arm32-highmem-ci--kselftest-mm-smoke.html").read_text()
    assert "Kernel tests (" in page and "kselftest.mm.mdwe_test." in page
