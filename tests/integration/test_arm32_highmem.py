"""`harness run` on the CI-sized arm32-highmem targets: real builds, real QEMU, real busybox."""

from __future__ import annotations

import subprocess

import pytest
from run_files import RUN_FILES
from small_linux import unified

from harness import patches
from harness.state import tree_state_dir

pytestmark = pytest.mark.integration

TITLE_612 = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"
TITLE_73 = "BUG: unable to handle kernel NULL pointer dereference in pte_offset_map_lock"


def _frames(report: dict) -> list[str]:
    return [f["function"] for f in report["frames"]]


def test_clean_boot_passes(harness):
    r = harness("run", "arm32-highmem-ci")
    assert r.code == 0, r.stdout + r.stderr
    for name in RUN_FILES:
        assert (r.results / name).exists(), name
    meta = r.meta
    assert meta["status"] == "complete" and meta["verdict"] == "pass"
    assert meta["reproducer"]["boot"].startswith("qemu-system-arm -M virt,highmem=off")
    assert "-append" in meta["boot"]["argv"]
    assert meta["boot"]["accel"] == "tcg" and meta["boot"]["accel_reason"]
    assert any(c.endswith(" zImage") for c in meta["build"]["commands"])
    console = (r.results / "console.log").read_text()
    assert "HighTotal:" in console and "mm-churn: 50 rounds of 2 MB, 0 failed" in console
    assert r.reports == []
    assert "PASS" in r.stdout
    # the folder is a reproducer of its own: its copies of the kernel and initramfs
    kept = r.results / "kernel" / "zImage"
    assert meta["build"]["image"] == str(kept) and (r.results / "kernel" / "vmlinux").exists()
    assert str(kept) in meta["boot"]["argv"]
    again = subprocess.run(
        ["timeout", "300", "sh", str(r.results / "reproduce.sh")],
        cwd="/",
        capture_output=True,
        text=True,
    )
    assert "HARNESS: DONE" in again.stdout and "mm-churn: 50 rounds" in again.stdout


def test_canary_caught_on_612_and_tree_restored(harness, source_612):
    before = (source_612 / "mm/pgtable-generic.c").read_bytes()
    r = harness("run", "arm32-highmem-ci", "--scenario", "pte-lockptr-highpte")
    assert r.code == 1, r.stdout + r.stderr
    assert len(r.reports) == 1
    rep = r.reports[0]
    assert rep["title"] == TITLE_612
    assert "handle_mm_fault" in _frames(rep)
    assert "canary caught as expected" in r.stdout
    assert r.meta["canary_result"]["caught"] is True
    assert r.meta["variant"] == ">=6.12,<6.13"
    assert (source_612 / "mm/pgtable-generic.c").read_bytes() == before
    assert not (tree_state_dir(source_612) / patches.JOURNAL).exists()
    junit = (r.results / "junit.xml").read_text()
    assert "<failure" in junit and "__pte_offset_map_lock" in junit
    report_txt = (r.results / "report.txt").read_text()
    assert report_txt.startswith(f"TITLE: {TITLE_612}") and "handle_mm_fault" in report_txt


@pytest.mark.ports  # on demand: a cold 7.3 arm32 build and its header canary rebuild cost
# CI about 6 minutes; CI keeps 7.3 on arm64 (BBML3) and the arm32 canary on 6.12
def test_canary_caught_on_73(harness):
    r = harness("run", "arm32-highmem-ci", "-s", "pte-lockptr-highpte", "--kernel", "debian-7.3")
    assert r.code == 1, r.stdout + r.stderr
    assert [rep["title"] for rep in r.reports] == [TITLE_73]
    assert "handle_mm_fault" in _frames(r.reports[0])
    assert r.meta["kernel"]["version"].startswith("7.3.")


def test_user_patch_is_injected_then_reverted(harness, source_612, tmp_path):
    rel = "init/main.c"
    before = (source_612 / rel).read_bytes()
    text = before.decode()
    anchor = "static int __ref kernel_init(void *unused)\n{\n"
    assert anchor in text
    edited = text.replace(anchor, anchor + '\tpr_info("HARNESS-USER-PATCH applied\\n");\n', 1)
    diff = unified(rel, text, edited, tmp_path)
    patch = tmp_path / "marker.patch"
    patch.write_text(diff)
    r = harness("run", "arm32-highmem-ci", "--patch", str(patch))
    assert r.code == 0, r.stdout + r.stderr
    assert "HARNESS-USER-PATCH applied" in (r.results / "console.log").read_text()
    assert (source_612 / rel).read_bytes() == before


USER_OOPS_SCENARIO = """description: >-
  Test only: a user process (not init) oopses in its own exec, in move_ptes() with the
  PTE lock and the new mm's mmap_lock held; it then blocks for ever in exit_mm() and the
  shell waiting for it with it: the guest is wedged, the console silent.
steps:
  - sh: "ln -s /bin/busybox /harness-oops && /harness-oops true; echo NOT-REACHED"
    timeout: 900
"""


def test_an_oops_in_a_user_process_ends_the_boot_within_the_quiet_time(
    harness, source_612, tmp_path
):
    """A wedged guest after a fatal report costs the target's crash_quiet (10 s), not its
    silence limit (120 s); the one kernel rebuild is mm/mremap.o and the relink."""
    rel = "mm/mremap.c"
    text = (source_612 / rel).read_text()
    anchor = "\tflush_tlb_batched_pending(vma->vm_mm);\n"
    assert text.count(anchor) == 1
    inject = (
        '\tif (unlikely(!strcmp(current->comm, "harness-oops")))\n'
        "\t\t(void)*(volatile unsigned long *)0;\n"
    )
    patch = tmp_path / "user-oops.patch"
    patch.write_text(unified(rel, text, text.replace(anchor, inject + anchor), tmp_path))
    scen = tmp_path / "config" / "scenarios" / "user-oops-wedged"
    scen.mkdir(parents=True)
    (scen / "scenario.yaml").write_text(USER_OOPS_SCENARIO)
    r = harness("--config-dir", str(tmp_path / "config"), "run", "arm32-highmem-ci",
                "-s", "user-oops-wedged", "--patch", str(patch))  # fmt: skip
    assert r.code == 1, r.stdout + r.stderr
    boot = r.meta["boot"]
    assert boot["ending"] == "crash-quiet" and boot["started"] and not boot["done"]
    # the report comes a few seconds into the boot: quiet 10 s, well short of 120 s
    assert boot["seconds"] < 60, boot
    titles = [rep["title"] for rep in r.reports]
    assert titles[0] == "BUG: unable to handle kernel NULL pointer dereference in move_page_tables"
    assert "NOT-REACHED" not in (r.results / "console.log").read_text()
    assert (source_612 / rel).read_text() == text


def test_patch_that_does_not_apply(harness, source_612, tmp_path):
    before = (source_612 / "mm/memory.c").read_bytes()
    bad = tmp_path / "bad.patch"
    bad.write_text(
        "--- a/mm/memory.c\n+++ b/mm/memory.c\n@@ -1,3 +1,3 @@\n"
        " no such line one\n-no such line two\n+replacement\n no such line three\n"
    )
    r = harness("run", "arm32-highmem-ci", "--patch", str(bad))
    assert r.code == 4
    assert "does not apply" in r.stdout and "mm/memory.c, hunk #1" in r.stdout
    assert (source_612 / "mm/memory.c").read_bytes() == before
    assert r.meta["verdict"] == "patch-error" and r.meta["cause"] == "does not apply"


def test_collapse_does_not_apply_without_thp(harness):
    r = harness("run", "arm32-highmem-ci", "-s", "khugepaged-collapse")
    assert r.code == 4, r.stdout + r.stderr
    assert "does not apply" in r.stdout and "CONFIG_TRANSPARENT_HUGEPAGE" in r.stdout
    assert "arm32-highmem-lpae" in r.stdout


def test_khugepaged_collapse_on_lpae(harness):
    r = harness("run", "arm32-highmem-lpae-ci", "-s", "khugepaged-collapse")
    assert r.code == 0, r.stdout + r.stderr
    console = (r.results / "console.log").read_text()
    assert "MADV_COLLAPSE(anon) ok; AnonHugePages 2048 kB" in console
    assert "MADV_COLLAPSE(shmem) ok" in console
    assert "khugepaged: AnonHugePages" in console
    steps = {s["name"]: s["rc"] for s in r.meta["boot"]["steps"]}
    assert steps == {"enable-mthp": 0, "collapse-anon": 0, "collapse-shmem": 0, "khugepaged": 0}


def test_unknown_target_is_usage_error(harness):
    r = harness("run", "no-such-target")
    assert r.code == 4 and "known targets" in r.stderr


def test_local_git_tree_in_worktree(harness, kernel_git_repo):
    head = subprocess.run(
        ["git", "-C", str(kernel_git_repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    index = (kernel_git_repo / ".git" / "index").stat().st_mtime_ns
    r = harness("run", "arm32-highmem-ci", "--kernel", f"{kernel_git_repo}@v6.12-debian")
    assert r.code == 0, r.stdout + r.stderr
    meta = r.meta
    assert meta["kernel"]["kind"] == "git" and meta["kernel"]["commit"] == head
    assert str(kernel_git_repo) not in meta["kernel"]["tree"]  # built in the harness worktree
    status = subprocess.run(
        ["git", "-C", str(kernel_git_repo), "status", "--porcelain"], capture_output=True, text=True
    ).stdout
    assert status == ""
    assert (kernel_git_repo / ".git" / "index").stat().st_mtime_ns == index
