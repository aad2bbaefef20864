"""Kernel sources: version parsing, Debian mirror discovery, git worktrees (real git)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitutil import git_env
from kernel_tree import make_fake_tree

from harness import debian, source
from harness.errors import ConfigError, InfraError


def _git(repo: Path, *args: str) -> str:
    return git_env(repo, *args)


@pytest.fixture
def repo(tmp_path):
    r = make_fake_tree(tmp_path / "linux", ["CONFIG_BASE"])
    _git(r, "init", "-q", "-b", "master")
    _git(r, "add", "-A")
    _git(r, "commit", "-q", "-m", "base")
    _git(r, "tag", "v1")
    (r / "mm" / "a.c").write_text("int a = 2;\n")
    _git(r, "commit", "-q", "-am", "mm: second")
    return r


def test_read_version(tmp_path):
    t = make_fake_tree(tmp_path / "t", [])
    assert source.read_version(t) == (6, 12, 117)
    with pytest.raises(ConfigError, match="not a kernel tree"):
        source.read_version(tmp_path)


def test_git_source_uses_worktree_and_leaves_user_tree_alone(repo, tmp_path):
    (repo / "mm" / "a.c").write_text("user's uncommitted edit\n")
    index_before = (repo / ".git" / "index").read_bytes()
    src = source.resolve(f"{repo}@v1", tmp_path / "cache")
    assert not src.tree.exists()  # checked out later, under the tree lock
    src.checkout()
    assert src.kind == "git" and src.tree != repo and src.version == (6, 12, 117)
    assert src.commit == _git(repo, "rev-parse", "v1^{commit}")
    assert src.subject == "base"
    assert (src.tree / "mm" / "a.c").read_text() == "int a;\n"
    # the user's working tree and index are untouched
    assert (repo / "mm" / "a.c").read_text() == "user's uncommitted edit\n"
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "master"
    # moving to another ref reuses the same worktree (and so the same build dir name)
    src2 = source.resolve(str(repo), tmp_path / "cache")
    src2.checkout()
    assert src2.tree == src.tree and src2.name == src.name
    assert (src2.tree / "mm" / "a.c").read_text() == "int a = 2;\n"


def test_uncommitted_changes_are_named_not_silently_left_out(repo, tmp_path, caplog):
    """`--kernel ~/linux` builds HEAD: an edit not committed is not in the kernel, and the
    developer is told so (and the run's description says it)."""
    src = source.resolve(str(repo), tmp_path / "cache")
    assert "uncommitted change" not in src.description + caplog.text
    (repo / "mm" / "a.c").write_text("int a = 3;\n")
    src = source.resolve(str(repo), tmp_path / "cache")
    assert src.description.endswith("at HEAD (without its 1 uncommitted change)")
    assert "uncommitted changes to 1 file(s)" in caplog.text and "--patch my.patch" in caplog.text
    caplog.clear()
    src = source.resolve(f"{repo}@v1", tmp_path / "cache")  # a ref asked for: nothing to say
    assert "uncommitted change" not in src.description + caplog.text


def test_bad_ref_and_non_git(repo, tmp_path):
    with pytest.raises(ConfigError, match="'nope' is not a commit"):
        source.resolve(f"{repo}@nope", tmp_path / "cache")
    plain = make_fake_tree(tmp_path / "plain", [])
    with pytest.raises(ConfigError, match="not a git tree"):
        source.resolve(str(plain), tmp_path / "cache")
    with pytest.raises(ConfigError, match="neither a known source"):
        source.resolve(str(tmp_path / "missing"), tmp_path / "cache")


def test_dirty_worktree_is_refused_not_discarded(repo, tmp_path):
    src = source.resolve(f"{repo}@v1", tmp_path / "cache")
    src.checkout()
    (src.tree / "mm" / "a.c").write_text("left behind\n")
    with pytest.raises(InfraError, match="has local changes"):
        source.resolve(str(repo), tmp_path / "cache").checkout()
    assert (src.tree / "mm" / "a.c").read_text() == "left behind\n"


def test_worktree_moves_between_commits_and_stays_put_on_the_same_one(repo, tmp_path):
    cache = tmp_path / "cache"
    v1 = source.resolve(f"{repo}@v1", cache)
    v1.checkout()
    assert (v1.tree / "mm" / "a.c").read_text() != "int a = 2;\n"
    head = source.resolve(str(repo), cache)
    head.checkout()
    assert (head.tree / "mm" / "a.c").read_text() == "int a = 2;\n"
    head.checkout()  # the same commit again: nothing to do, nothing lost
    assert _git(head.tree, "rev-parse", "HEAD") == head.commit
    v1.checkout()
    assert _git(v1.tree, "rev-parse", "HEAD") == v1.commit
    assert (v1.tree / "mm" / "a.c").read_text() != "int a = 2;\n"


def test_debian_mirror_from_deb822(tmp_path):
    s = tmp_path / "debian.sources"
    s.write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    assert debian.debian_mirror(s, tmp_path / "none") == "http://mirror.example/debian"
    assert (
        debian.debian_mirror(s, tmp_path / "none", security=True)
        == "http://mirror.example/debian-security"
    )
    legacy = tmp_path / "sources.list"
    legacy.write_text(
        "deb [arch=amd64] http://old.example/debian bookworm main\n"
        "deb http://old.example/debian-security bookworm-security main\n"
    )
    assert debian.debian_mirror(tmp_path / "none", legacy) == "http://old.example/debian"
    assert (
        debian.debian_mirror(tmp_path / "none", legacy, security=True)
        == "http://old.example/debian-security"
    )
    with pytest.raises(InfraError):
        debian.debian_mirror(tmp_path / "none", tmp_path / "none2")


def test_in_place_shares_the_worktree_build_name(repo, tmp_path):
    cache = tmp_path / "cache"
    wt_src = source.resolve(f"{repo}@v1", cache)
    wt_src.checkout()
    same = source.resolve(f"{source.IN_PLACE}{wt_src.tree}", cache)
    assert same.name == wt_src.name and same.tree == wt_src.tree
    assert same.commit == wt_src.commit
    other = source.in_place(repo, cache)
    assert other.name.endswith("-inplace") and other.tree == repo.resolve()
    assert other.subject == "mm: second"


def test_release_strings_of_linux_next_and_mainline_candidates(tmp_path):
    from harness.source import parse_release, read_release

    mk = "VERSION = 7\nPATCHLEVEL = 5\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\nNAME = Baby Opossum\n"
    assert parse_release(mk, "Makefile") == "7.5.0-rc1"
    assert parse_release(mk, "Makefile", ["-next-20261130\n"]) == "7.5.0-rc1-next-20261130"
    plain = "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n"
    assert parse_release(plain, "Makefile") == "6.12.117"
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "Makefile").write_text(mk)
    (tree / "localversion-next").write_text("-next-20261130\n")
    assert read_release(tree) == "7.5.0-rc1-next-20261130"
    g = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    import subprocess

    subprocess.run([*g, "init", "-q"], check=True)
    subprocess.run([*g, "add", "-A"], check=True)
    subprocess.run([*g, "commit", "-qm", "x"], check=True)
    assert read_release(tree) == "7.5.0-rc1-next-20261130"
    (tree / "Makefile").write_text(mk + "# edit\n")
    assert read_release(tree) == "7.5.0-rc1-next-20261130-dirty"


def test_worktree_name_of_a_repo_in_the_cache_is_the_same_from_every_checkout(tmp_path):
    """ccache (base dir /) hits across checkouts only if the build dir's relative path
    to the worktree is the same: a repository in the cache is named by its place there."""
    from harness.source import worktree_name

    a, b = tmp_path / "a" / "kernels", tmp_path / "b" / "kernels"
    for cache in (a, b):
        (cache / "test-repos" / "linux").mkdir(parents=True)
    name_a = worktree_name(a / "test-repos" / "linux", a)
    assert name_a == worktree_name(b / "test-repos" / "linux", b)
    assert name_a.startswith("git-linux-")
    outside = tmp_path / "src" / "linux"
    outside.mkdir(parents=True)
    assert worktree_name(outside, a) != name_a  # a user's tree: its absolute path
    assert worktree_name(outside, a) == worktree_name(outside, b)


def test_two_runs_on_a_fresh_cache_extract_the_source_once(tmp_path, monkeypatch):
    """A nightly's parallel cells (or two terminals) start on an empty cache at once: they
    used to untar into the same .partial folder and one crashed on rmtree."""
    import subprocess
    import threading

    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    t = make_fake_tree(tmp_path / "linux-source-6.12", ["CONFIG_BASE"])
    for n in range(300):  # enough files that two extractions overlap
        (t / "drivers" / f"d{n}").mkdir(parents=True)
        (t / "drivers" / f"d{n}" / "x.c").write_text(f"int x{n};\n")
    tarball = tmp_path / "linux-source-6.12.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tmp_path), t.name], check=True)
    spec = tmp_path / "debian-test.yaml"
    spec.write_text(f"package: linux-source-6.12\nsuites: [bookworm]\nlocal_tarball: {tarball}\n")
    got: list[object] = []

    def one() -> None:
        try:
            got.append(source._debian_source("debian-test", spec, cache).tree)
        except Exception as e:  # noqa: BLE001 - the test reports what a run would crash on
            got.append(e)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == [cache / "src" / "debian-test"] * 3, got
    assert (cache / "src" / "debian-test" / "drivers" / "d299" / "x.c").exists()
    assert not (cache / "src" / "debian-test.partial").exists()
