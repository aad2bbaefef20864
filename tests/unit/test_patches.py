import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import patches
from harness.errors import InfraError, PatchError
from harness.state import cache_root, tree_state_dir


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "tree"
    (t / "mm").mkdir(parents=True)
    (t / "mm" / "a.c").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    (t / "mm" / "b.c").write_text("alpha\nbeta\ngamma\n")
    return t


def _make_patch(tree: Path, tmp: Path, name: str, edits: dict[str, tuple[str, str]]) -> Path:
    out = []
    for rel, (old, new) in edits.items():
        a = tmp / "a" / rel
        b = tmp / "b" / rel
        a.parent.mkdir(parents=True, exist_ok=True)
        b.parent.mkdir(parents=True, exist_ok=True)
        text = (tree / rel).read_text()
        a.write_text(text)
        b.write_text(text.replace(old, new))
        d = subprocess.run(
            ["diff", "-u", "--label", f"a/{rel}", "--label", f"b/{rel}", str(a), str(b)],
            capture_output=True,
            text=True,
        ).stdout
        out.append(d)
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(out))
    return p


def _snapshot(tree: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for root, dirs, files in os.walk(tree):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), tree) + "/"] = (b"", 0)
        for f in files:
            p = Path(root, f)
            out[str(p.relative_to(tree))] = (p.read_bytes(), p.stat().st_mode)
    return out


def _journal(tree: Path) -> Path:
    return tree_state_dir(tree) / patches.JOURNAL


def test_apply_and_revert_restore_bytes_and_leave_nothing_in_or_beside_the_tree(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/a.c": ("line 10\n", "line TEN\n")})
    before = _snapshot(tree)
    beside = sorted(tree.parent.iterdir())
    with patches.applied(tree, [p], tmp_path / "run" / "record"):
        assert "line TEN" in (tree / "mm/a.c").read_text()
        entries = json.loads(_journal(tree).read_text())["entries"]
        assert list(entries[0]["files"]) == ["mm/a.c"]
    assert _snapshot(tree) == before
    assert not _journal(tree).exists()
    assert sorted(tree.parent.iterdir()) == sorted([*beside, tmp_path / "run"])  # no lock
    assert (tmp_path / "run" / "record" / "01-x.patch").read_bytes() == p.read_bytes()
    assert cache_root() in _journal(tree).parents


def test_failing_patch_leaves_tree_clean_and_quotes_hunk(tree, tmp_path):
    good = _make_patch(tree, tmp_path, "good.patch", {"mm/b.c": ("beta\n", "BETA\n")})
    bad = _make_patch(
        tree,
        tmp_path,
        "bad.patch",
        {"mm/a.c": ("line 5\n", "line FIVE\n"), "mm/b.c": ("gamma\n", "GAMMA\n")},
    )
    # make bad.patch's mm/a.c hunk not fit
    (tree / "mm/a.c").write_text((tree / "mm/a.c").read_text().replace("line 5\n", "line five\n"))
    before = _snapshot(tree)
    with pytest.raises(PatchError) as exc:
        with patches.applied(tree, [good, bad], tmp_path / "record"):
            pytest.fail("must not get here")
    msg = str(exc.value)
    assert exc.value.reason == patches.DOES_NOT_APPLY
    assert "bad.patch does not apply" in msg and "no fuzz" in msg
    assert "mm/a.c, hunk #1" in msg and "+line FIVE" in msg
    assert _snapshot(tree) == before  # good.patch was reverted too, nothing half-applied
    assert not _journal(tree).exists()


def test_no_fuzz_a_hunk_whose_context_is_not_in_the_file_is_refused(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/a.c": ("line 10\n", "line TEN\n")})
    # two context lines above the change no longer exist: patch(1) takes it with fuzz 2
    text = (tree / "mm/a.c").read_text().replace("line 7\n", "seven\n").replace("line 8\n", "8\n")
    (tree / "mm/a.c").write_text(text)
    fuzzy = subprocess.run(
        ["patch", "-p1", "--dry-run", "-d", str(tree), "-i", str(p)], capture_output=True, text=True
    )
    assert fuzzy.returncode == 0 and "fuzz" in fuzzy.stdout  # what the harness used to accept
    with pytest.raises(PatchError, match="does not apply"):
        with patches.applied(tree, [p]):
            pass
    assert (tree / "mm/a.c").read_text() == text


def test_a_shifted_hunk_still_applies(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/a.c": ("line 10\n", "line TEN\n")})
    (tree / "mm/a.c").write_text("new first line\n" + (tree / "mm/a.c").read_text())
    with patches.applied(tree, [p]):
        assert "line TEN" in (tree / "mm/a.c").read_text()


def test_already_applied_patch_has_its_own_reason(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("beta\n", "BETA\n")})
    (tree / "mm/b.c").write_text("alpha\nBETA\ngamma\n")
    with pytest.raises(PatchError) as exc:
        with patches.applied(tree, [p]):
            pass
    assert exc.value.reason == patches.ALREADY_APPLIED
    assert patches.ALREADY_APPLIED in str(exc.value)


def test_two_patches_with_one_name_do_not_overwrite_each_other(tree, tmp_path):
    p1 = _make_patch(tree, tmp_path / "one", "fix.patch", {"mm/a.c": ("line 3\n", "THREE\n")})
    p2 = _make_patch(tree, tmp_path / "two", "fix.patch", {"mm/b.c": ("gamma\n", "GAMMA\n")})
    before = _snapshot(tree)
    with patches.applied(tree, [p1, p2], tmp_path / "record"):
        assert "THREE" in (tree / "mm/a.c").read_text()
        assert "GAMMA" in (tree / "mm/b.c").read_text()
    assert _snapshot(tree) == before
    assert sorted(x.name for x in (tmp_path / "record").iterdir()) == [
        "01-fix.patch",
        "02-fix.patch",
    ]


def test_created_deleted_and_mode_changes_come_back(tree, tmp_path):
    repo = tmp_path / "r"
    subprocess.run(["cp", "-a", str(tree), str(repo)], check=True)
    g = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*g, "init", "-q"], check=True)
    subprocess.run([*g, "add", "-A"], check=True)
    subprocess.run([*g, "commit", "-qm", "base"], check=True)
    (repo / "mm" / "new" / "deep").mkdir(parents=True)
    (repo / "mm" / "new" / "deep" / "c.c").write_text("created\n")
    (repo / "mm" / "b.c").unlink()
    (repo / "mm" / "a.c").chmod(0o755)
    subprocess.run([*g, "add", "-A"], check=True)
    diff = subprocess.run([*g, "diff", "--cached"], capture_output=True, check=True).stdout
    p = tmp_path / "x.patch"
    p.write_bytes(diff)
    before = _snapshot(tree)
    with patches.applied(tree, [p]):
        assert (tree / "mm/new/deep/c.c").exists() and not (tree / "mm/b.c").exists()
        assert (tree / "mm/a.c").stat().st_mode & 0o111
    assert _snapshot(tree) == before


def test_revert_on_exception_inside_block(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    with pytest.raises(KeyboardInterrupt):
        with patches.applied(tree, [p]):
            raise KeyboardInterrupt
    assert _snapshot(tree) == before


def _killed_after_apply(tree: Path, p: Path) -> None:
    """What a SIGKILL leaves: the patch in the tree and its journal entry."""
    patches.apply(tree, p, [])


def test_recover_after_killed_run_is_idempotent(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    p.unlink()  # the user's patch file is gone: recovery needs only the saved copies
    assert "ALPHA" in (tree / "mm/b.c").read_text()
    assert patches.recover(tree) == ["x.patch"]
    assert _snapshot(tree) == before
    assert patches.recover(tree) == []
    assert _snapshot(tree) == before


def test_stale_journal_of_a_tree_already_reverted_is_simply_cleared(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    (tree / "mm/b.c").write_text("alpha\nbeta\ngamma\n")  # killed after revert, before journal
    assert patches.recover(tree) == []
    assert not _journal(tree).exists()
    assert _snapshot(tree) == before


def test_half_written_file_mid_apply_is_restored(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/a.c": ("line 10\n", "line TEN\n")})
    before = _snapshot(tree)
    store = patches._Store(tree)
    entry = {"patch": str(p), "sha256": "x", "files": {}}
    entry["files"]["mm/a.c"] = patches._state_of(tree, "mm/a.c").to_json()
    store.save((tree / "mm/a.c").read_bytes())
    store.write_journal([entry])
    (tree / "mm/a.c").write_bytes((tree / "mm/a.c").read_bytes()[:17])  # git apply killed
    patches.recover(tree)
    assert _snapshot(tree) == before


def test_corrupt_journal_is_kept_aside_and_the_ledger_restores_the_tree(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    text = _journal(tree).read_text()
    _journal(tree).write_text(text[: len(text) // 2])  # truncated mid-write
    undone = patches.recover(tree)
    assert undone == ["mm/b.c (restored to pristine)"]
    assert _snapshot(tree) == before
    assert list(tree_state_dir(tree).glob("journal.json.corrupt-*"))
    assert list((tree_state_dir(tree) / "quarantine").rglob("b.c"))  # nothing lost


def test_lost_journal_still_detected_by_the_ledger(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    _journal(tree).unlink()
    patches.recover(tree)
    assert _snapshot(tree) == before


def test_manifest_refuses_a_file_changed_outside_the_harness(tree, tmp_path):
    patches.record_pristine(tree)
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    (tree / "mm/b.c").write_text("alpha\nbeta\ngamma\nhand edit\n")
    with pytest.raises(InfraError, match="differs from the tarball"):
        with patches.applied(tree, [p]):
            pass
    assert (tree / "mm/b.c").read_text().endswith("hand edit\n")


def test_verify_against_restores_what_an_old_harness_left(tree, tmp_path):
    pristine = tmp_path / "pristine"
    subprocess.run(["cp", "-a", str(tree), str(pristine)], check=True)
    (tree / "mm/a.c").write_text("leaked canary\n")
    assert patches.verify_against(tree, pristine) == ["mm/a.c"]
    assert (tree / "mm/a.c").read_bytes() == (pristine / "mm/a.c").read_bytes()


def test_legacy_in_tree_journal_is_undone(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    import hashlib

    digest = hashlib.sha256((tree / "mm/b.c").read_bytes()).hexdigest()
    subprocess.run(["patch", "-p1", "-s", "-d", str(tree), "-i", str(p)], check=True)
    (tree / patches.LEGACY_JOURNAL).write_text(
        json.dumps([{"patch": str(p), "copy": str(p), "before": {"mm/b.c": digest}}])
    )
    assert patches.recover(tree) == ["x.patch"]
    assert _snapshot(tree) == before


def test_patch_outside_the_tree_is_refused(tree, tmp_path):
    p = tmp_path / "evil.patch"
    p.write_text("--- a/../outside\n+++ b/../outside\n@@ -0,0 +1 @@\n+x\n")
    with pytest.raises(PatchError, match="outside the tree"):
        with patches.applied(tree, [p]):
            pass


def test_touched_files_reads_git_and_plain_headers():
    text = (
        "diff --git a/mm/x y.c b/mm/x y.c\nold mode 100644\nnew mode 100755\n"
        "diff --git a/old.c b/new.c\nsimilarity index 100%\nrename from old.c\nrename to new.c\n"
        "--- a/mm/b.c\t2024-01-01\n+++ b/mm/b.c\t2024-01-01\n@@ -1 +1 @@\n-a\n+b\n"
        "--- /dev/null\n+++ b/mm/created.c\n@@ -0,0 +1 @@\n+c\n"
    )
    assert patches.touched_files(text) == ["mm/x y.c", "old.c", "new.c", "mm/b.c", "mm/created.c"]


def test_patching_run_waits_for_readers(tree, tmp_path):
    """A run that patches must not start while another run builds from the same tree."""
    import threading
    import time

    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    seen = []

    def patcher():
        with patches.applied(tree, [p]):
            seen.append(("patched", time.monotonic()))

    with patches.applied(tree, []):
        t = threading.Thread(target=patcher)
        t.start()
        time.sleep(0.5)
        assert seen == []  # still waiting for the shared holder
        assert "ALPHA" not in (tree / "mm/b.c").read_text()
        released = time.monotonic()
    t.join(5)
    assert seen and seen[0][1] >= released
    assert "ALPHA" not in (tree / "mm/b.c").read_text()


def test_checkout_runs_under_exclusive_lock_and_held_env(tree, tmp_path, monkeypatch):
    calls = []
    with patches.applied(tree, [], checkout=lambda: calls.append("co")):
        assert calls == ["co"]
    # a parent holding the lock (bisect) lets child runs through without waiting
    monkeypatch.setenv(patches.HELD_ENV, str(tree))
    with patches.tree_lock(tree, exclusive=True):
        with patches.applied(tree, [], checkout=lambda: calls.append("co2")):
            pass
    assert calls == ["co", "co2"]


def test_owned_git_worktree_with_no_journal_is_reset_from_head(tmp_path):
    wt = cache_root() / "worktrees" / "linux"
    wt.mkdir(parents=True)
    (wt / "a.c").write_text("one\n")
    g = ["git", "-C", str(wt), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*g, "init", "-q"], check=True)
    subprocess.run([*g, "add", "-A"], check=True)
    subprocess.run([*g, "commit", "-qm", "base"], check=True)
    p = tmp_path / "x.patch"
    p.write_text("--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-one\n+ONE\n")
    patches.apply(wt, p, [])
    _journal(wt).unlink()
    with patches.tree_lock(wt, exclusive=True):
        pass
    assert (wt / "a.c").read_text() == "one\n"


def test_a_restore_killed_half_way_leaves_no_temporary_in_the_tree(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    (tree / "mm" / ".b.c.k2j3.tmp").write_text("alp")  # atomic_write_bytes killed mid-way
    patches.recover(tree)
    assert _snapshot(tree) == before


def test_readers_share_the_tree_from_the_start(tree):
    """Two runs that only read one tree (two targets, one source) build side by side: the
    second does not wait for the first's whole build."""
    import threading

    entered = threading.Event()

    def second():
        with patches.applied(tree, []):
            entered.set()

    with patches.applied(tree, []):
        t = threading.Thread(target=second)
        t.start()
        assert entered.wait(5), "the second reader waited for the first"
    t.join(5)


def test_a_reader_undoes_what_a_dead_run_left(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    _killed_after_apply(tree, p)
    assert patches.needs_recovery(tree)
    with patches.applied(tree, []):
        assert _snapshot(tree) == before
    assert not patches.needs_recovery(tree)
    (tree / "mm/b.c").write_text("changed behind the harness's back\n")  # a lost journal
    assert patches.needs_recovery(tree)
    with patches.applied(tree, []):
        assert _snapshot(tree) == before
