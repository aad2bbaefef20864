import json
import subprocess
from pathlib import Path

import pytest

from harness import patches
from harness.errors import PatchError


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
    p.write_text("".join(out))
    return p


def _snapshot(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): p.read_text() for p in tree.rglob("*") if p.is_file()}


def test_apply_and_revert_restore_bytes(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/a.c": ("line 10\n", "line TEN\n")})
    before = _snapshot(tree)
    with patches.applied(tree, [p], tmp_path / "stash"):
        assert "line TEN" in (tree / "mm/a.c").read_text()
        assert (tree / patches.JOURNAL).exists()
    assert _snapshot(tree) == before


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
        with patches.applied(tree, [good, bad], tmp_path / "stash"):
            pytest.fail("must not get here")
    msg = str(exc.value)
    assert "bad.patch does not apply" in msg
    assert "mm/a.c, hunk #1" in msg and "+line FIVE" in msg
    assert _snapshot(tree) == before  # good.patch was reverted too, nothing half-applied


def test_revert_on_exception_inside_block(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    with pytest.raises(KeyboardInterrupt):
        with patches.applied(tree, [p], tmp_path / "stash"):
            raise KeyboardInterrupt
    assert _snapshot(tree) == before


def test_recover_after_killed_run(tree, tmp_path):
    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    before = _snapshot(tree)
    digests = patches.apply(tree, p)
    copy = tmp_path / "copy.patch"
    copy.write_bytes(p.read_bytes())
    (tree / patches.JOURNAL).write_text(
        json.dumps([{"patch": str(p), "copy": str(copy), "before": digests}])
    )
    assert patches.recover(tree) == ["x.patch"]
    assert _snapshot(tree) == before


def test_patching_run_waits_for_readers(tree, tmp_path):
    """A run that patches must not start while another run builds from the same tree."""
    import threading
    import time

    p = _make_patch(tree, tmp_path, "x.patch", {"mm/b.c": ("alpha\n", "ALPHA\n")})
    seen = []

    def patcher():
        with patches.applied(tree, [p], tmp_path / "stash2"):
            seen.append(("patched", time.monotonic()))

    with patches.applied(tree, [], tmp_path / "stash1"):
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
    with patches.applied(tree, [], tmp_path / "s", checkout=lambda: calls.append("co")):
        assert calls == ["co"]
    # a parent holding the lock (bisect) lets child runs through without waiting
    monkeypatch.setenv(patches.HELD_ENV, str(tree))
    with patches.tree_lock(tree, exclusive=True):
        with patches.applied(tree, [], tmp_path / "s2", checkout=lambda: calls.append("co2")):
            pass
    assert calls == ["co", "co2"]
