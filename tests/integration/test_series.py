"""`harness series` on real posted-style series: git format-patch --cover-letter --base
from mm commits on Debian's 6.12, applied with git am, built patch by patch and booted on
arm32-highmem-ci, A/B against the base.

The series reuse the commits of test_bisect's history (the same comments and the
pte_lockptr bug), in the same harness worktree and build directory: every build here is
incremental or a ccache hit, and no test needs a kernel build of its own.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git_env
from kseries import BUG_SUBJECT, append, comment, commit, commit_bug

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BASE = "v6.12-debian"


def _post(repo: Path, branch: str, out: Path, subject: str, blurb: str) -> Path:
    """The series on branch as its author posts it: numbered, threaded, with a base."""
    text = git_env(
        repo, "format-patch", "--stdout", "--thread", "--cover-letter", f"--base={BASE}",
        "--to=linux-mm@kvack.org", "--cc=Rev Iewer <rev@example.org>", f"{BASE}..{branch}",
    )  # fmt: skip
    text = text.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", blurb)
    out.write_text(text + "\n")
    return out


@pytest.fixture(scope="module")
def posted(kernel_git_repo, tmp_path_factory):
    repo = kernel_git_repo
    where = tmp_path_factory.mktemp("posted")
    git_env(repo, "checkout", "-q", "-B", "series-pte", BASE)
    comment(repo, "mm/mmap.c", "mmap_region() callers hold mmap_lock for write.")
    commit(repo, "mm/mmap: document the locking of mmap_region() callers")
    commit_bug(repo)
    comment(repo, "mm/mremap.c", "move_page_tables() may move whole PMDs when aligned.")
    commit(repo, "mm/mremap: note when whole PMDs are moved")
    bad = _post(repo, "series-pte", where / "pte.mbox", "mm: PTE lock cleanups",
                "Document two locking rules and let pte_lockptr() take the PTE.")  # fmt: skip
    git_env(repo, "checkout", "-q", "-B", "series-docs", BASE)
    comment(repo, "mm/page_alloc.c", "__rmqueue_pcplist() runs with the pcp lock held.")
    commit(repo, "mm/page_alloc: document pcp locking in __rmqueue_pcplist()")
    comment(repo, "mm/vmscan.c", "shrink_folio_list() may sleep in pageout().")
    commit(repo, "mm/vmscan: note that shrink_folio_list() may sleep")
    clean = _post(repo, "series-docs", where / "docs.mbox", "mm: locking comments",
                  "Comments only.")  # fmt: skip
    git_env(repo, "checkout", "-q", "-B", "series-unbuildable", BASE)
    append(
        repo, "mm/memory.c", "\nvoid mm_check_pte_locks(void)\n{\n\tpte_lock_sanity_check();\n}\n"
    )
    commit(repo, "mm/memory: sanity-check PTE locks on fault")
    p = repo / "mm/memory.c"
    p.write_text(p.read_text().split("\nvoid mm_check_pte_locks(void)")[0])
    commit(repo, "mm/memory: fix build, drop mm_check_pte_locks()")
    unbuildable = _post(repo, "series-unbuildable", where / "unbuildable.mbox",
                        "mm: PTE lock checks", "A check, and its fix.")  # fmt: skip
    git_env(repo, "checkout", "-q", "--detach", BASE)
    return repo, bad, clean, unbuildable


def _series(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path | None]:
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path), "HARNESS_MAIL_FROM":
           "Tess Ter <tess@example.org>"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "series", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    sys.stderr.write(proc.stdout + proc.stderr[-4000:])
    folders = sorted(tmp_path.glob("series-*"))
    return proc, folders[-1] if folders else None


def _mail(folder: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes((folder / "reply.eml").read_bytes(), policy=email.policy.SMTP)
    assert isinstance(msg, email.message.EmailMessage) and not msg.defects
    return msg


def _cover_id(mbox_path: Path) -> str:
    m = re.search(r"^Message-Id: (<[^>]+>)\nSubject: \[PATCH 0/3\]", mbox_path.read_text(), re.M)
    if not m:  # header order differs: take the first message's id
        m = re.search(r"^Message-Id: (<[^>]+>)", mbox_path.read_text(), re.M | re.I)
    assert m
    return m.group(1)


def test_series_names_the_bad_patch_and_replies(posted, tmp_path):
    repo, bad, *_ = posted
    head = git_env(repo, "rev-parse", "HEAD")
    proc, folder = _series(
        tmp_path, str(bad), "--kernel", str(repo), "--targets", "arm32-highmem-ci",
        "--scenarios", "boot",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert folder and "first bad patch 2/3" in proc.stdout
    data = json.loads((folder / "series.json").read_text())
    assert [p["label"] for p in data["patches"]] == ["1/3", "2/3", "3/3"]
    assert data["patches"][1]["title"] == BUG_SUBJECT
    assert all(b["ok"] for b in data["builds"]) and len(data["builds"]) == 3
    assert data["builds"][2]["steps"] < 300, "patch 3/3 rebuilt more than its one file"
    (cell,) = data["cells"]
    assert cell["base"]["verdict"] == "pass" and cell["tip"]["verdict"] == "fail"
    assert cell["status"] == "regression" and cell["culprit"] == "2/3"
    assert cell["tip"]["title"].endswith("in __pte_offset_map_lock")
    assert cell["revert"].startswith("fixes/hides this issue"), cell
    steps = next(Path(cell["bisect"]).glob("steps.jsonl")).read_text().splitlines()
    assert 2 <= len(steps) <= 3  # the tip, then at most two patches
    msg = _mail(folder)
    cover = _cover_id(bad)
    assert msg["Subject"] == "Re: [PATCH 0/3] mm: PTE lock cleanups"
    assert msg["In-Reply-To"] == cover and msg["References"].split()[-1] == cover
    to = [a.addr_spec for a in msg["To"].addresses]
    cc = [a.addr_spec for a in msg["Cc"].addresses]
    assert to == ["harness@example.invalid"] and msg["From"] == "Tess Ter <tess@example.org>"
    # get_maintainer.pl on include/linux/mm.h (the bad patch), and who the series went to
    assert "akpm@linux-foundation.org" in cc and "linux-mm@kvack.org" in cc
    assert "rev@example.org" in cc
    body = msg.get_content()
    assert f'Patch 2/3 ("{BUG_SUBJECT}")' in body
    assert "__pte_offset_map_lock" in body and re.search(r"\bmm/\S+\.c:\d+", body), body
    assert "reverting it on top of the series: fixes/hides this issue" in " ".join(body.split())
    assert "mm/pgtable-generic.c:" in body  # where the trace's functions are, in the tree
    assert "Tested-by" not in body
    # the user's checkout is untouched
    assert git_env(repo, "rev-parse", "HEAD") == head
    assert git_env(repo, "status", "--porcelain") == ""


def test_clean_series_gets_tested_by(posted, tmp_path):
    repo, _, clean, _ = posted
    proc, folder = _series(
        tmp_path, str(clean), "--kernel", str(repo), "--targets", "arm32-highmem-ci",
        "--scenarios", "boot",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert folder and "no regression: Tested-by" in proc.stdout
    data = json.loads((folder / "series.json").read_text())
    assert [c["status"] for c in data["cells"]] == ["pass"]
    assert all(b["ok"] and b["steps"] < 300 for b in data["builds"])
    msg = _mail(folder)
    assert msg["Subject"] == "Re: [PATCH 0/2] mm: locking comments"
    assert "Tested-by: Tess Ter <tess@example.org>" in msg.get_content()
    cc = [a.addr_spec for a in msg["Cc"].addresses]
    assert "linux-mm@kvack.org" in cc  # get_maintainer.pl on the whole series


def test_series_that_does_not_apply_names_patch_and_hunk(posted, tmp_path):
    repo, bad, *_ = posted
    # on its own tip, patch 1/3 finds its comment already there: it must not apply
    proc, folder = _series(tmp_path, str(bad), "--kernel", str(repo), "--base", "series-pte",
                           "--targets", "arm32-highmem-ci", "--scenarios", "boot")  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "patch 1/3 (mm/mmap: document the locking of mmap_region() callers) does not apply" in (
        proc.stdout
    )
    assert "mm/mmap.c, hunk #1" in proc.stdout
    from harness import source

    wt = source.harness_worktree(repo)
    assert git_env(wt, "rev-parse", "HEAD") == git_env(repo, "rev-parse", "series-pte")
    assert git_env(wt, "status", "--porcelain", "--untracked-files=no") == ""
    assert folder and json.loads((folder / "metadata.json").read_text())["result"] == (
        "does-not-apply"
    )


def test_a_patch_that_breaks_the_build_is_named(posted, tmp_path):
    """Patch 1/2 does not build and 2/2 fixes it: the tip passes, but the series is not
    bisectable, and the reply quotes the compiler."""
    repo, *_, unbuildable = posted
    proc, folder = _series(tmp_path, str(unbuildable), "--kernel", str(repo),
                           "--targets", "arm32-highmem-ci", "--scenarios", "boot")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert folder and "first bad patch 1/2" in proc.stdout
    data = json.loads((folder / "series.json").read_text())
    b1, b2 = data["builds"]
    assert not b1["ok"] and b2["ok"]
    # gcc's ‘quotes’ (the kernel's Makefile unexports LC_ALL) come out as ASCII
    assert re.match(r"mm/memory\.c:\d+:\d+: error: implicit declaration of function "
                    r"'pte_lock_sanity_check'", b1["error"]), b1  # fmt: skip
    assert (folder / "builds/arm32-highmem-ci/0001-build.log").exists()
    assert [c["status"] for c in data["cells"]] == ["pass"]
    body = " ".join(_mail(folder).get_content().split())
    assert 'Patch 1/2 ("mm/memory: sanity-check PTE locks on fault") breaks the build' in body
    assert "pte_lock_sanity_check" in body and "Tested-by" not in body
