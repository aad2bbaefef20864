"""`harness bisect` on a real kernel history: 10 mm commits on Debian's 6.12, one of them
the pte_lockptr HIGHPTE bug, two of them with a broken build."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git_env
from kseries import append, comment, commit, commit_bug

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bisect_repo(kernel_git_repo):
    repo = kernel_git_repo
    git_env(repo, "checkout", "-q", "-B", "mm-series", "v6.12-debian")
    c = {}
    comment(repo, "mm/mmap.c", "mmap_region() callers hold mmap_lock for write.")
    c[1] = commit(repo, "mm/mmap: document the locking of mmap_region() callers")
    comment(repo, "mm/mremap.c", "move_page_tables() may move whole PMDs when aligned.")
    c[2] = commit(repo, "mm/mremap: note when whole PMDs are moved")
    append(
        repo,
        "mm/util.c",
        "\nunsigned long mm_pages_for_bytes(size_t len);\n"
        "unsigned long mm_pages_for_bytes(size_t len)\n"
        "{\n\treturn DIV_ROUND_UP(len, PAGE_SIZE);\n}\n",
    )
    c[3] = commit(repo, "mm/util: add mm_pages_for_bytes() helper")
    append(
        repo, "mm/memory.c", "\nvoid mm_check_pte_locks(void)\n{\n\tpte_lock_sanity_check();\n}\n"
    )
    c[4] = commit(repo, "mm/memory: sanity-check PTE locks on fault")  # does not build
    comment(repo, "mm/swap.c", "folio_batch_move_lru() drops the lruvec lock between batches.")
    c[5] = commit(repo, "mm/swap: comment on lruvec lock batching")  # still broken
    p = repo / "mm/memory.c"
    p.write_text(p.read_text().split("\nvoid mm_check_pte_locks(void)")[0])
    c[6] = commit(repo, "mm/memory: fix build, drop mm_check_pte_locks()")
    c[7] = commit_bug(repo)  # the culprit
    comment(repo, "mm/page_alloc.c", "__rmqueue_pcplist() runs with the pcp lock held.")
    c[8] = commit(repo, "mm/page_alloc: document pcp locking in __rmqueue_pcplist()")
    comment(repo, "mm/vmscan.c", "shrink_folio_list() may sleep in pageout().")
    c[9] = commit(repo, "mm/vmscan: note that shrink_folio_list() may sleep")
    comment(repo, "mm/mprotect.c", "change_pte_range() batches TLB flushes per PMD.")
    c[10] = commit(repo, "mm/mprotect: describe TLB flush batching")
    git_env(repo, "tag", "-f", "series-good", "v6.12-debian")
    git_env(repo, "tag", "-f", "series-bad", c[10])
    return repo, c


def test_bisect_finds_pte_lockptr_culprit(bisect_repo, tmp_path):
    repo, c = bisect_repo
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bisect", "arm32-highmem-ci",
         "--good", "series-good", "--bad", "series-bad", "--kernel", str(repo)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    sys.stderr.write(proc.stdout + proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"first bad commit: {c[7]}" in proc.stdout
    assert "fixes/hides this issue" in proc.stdout
    folder = next(tmp_path.glob("bisect-*"))
    steps = [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines()]
    # steps[0] is the bad commit (to learn the title), then git's bisect steps
    assert steps[0]["commit"] == c[10] and steps[0]["code"] == 1
    assert steps[0]["title"].endswith("in __pte_offset_map_lock")
    built = steps
    skips = [s for s in steps if s["code"] == 125]
    assert any(s["commit"] in (c[4], c[5]) for s in skips), "the broken build was not skipped"
    assert all("build-error" in s["note"] for s in skips)
    n = 10
    assert len(built) <= math.ceil(math.log2(n)) + 1 + len(skips)
    for s in steps[1:]:  # every step after the first rebuilds incrementally
        assert s["build_steps"] < 300, s
    mail = (folder / "mail.txt").read_text()
    assert c[7][:12] in mail and "mm: let pte_lockptr() consume a pte_t pointer" in mail
    assert "fixes/hides this issue" in mail
    assert "__pte_offset_map_lock" in mail and "Bisect log:" in mail
    # the user's checkout is untouched: still on mm-series at c10, clean
    assert git_env(repo, "rev-parse", "HEAD") == c[10]
    assert git_env(repo, "status", "--porcelain") == ""
