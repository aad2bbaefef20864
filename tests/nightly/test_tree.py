"""The nightly's tree: fetch only with a remote, the newest next- tag, settings files."""

from __future__ import annotations

import pytest
from gitutil import git_env

from harness.errors import ConfigError
from harness.nightly import settings, tree
from harness.nightly.settings import Settings


def test_default_ref_is_newest_next_tag(fake_linux):
    git_env(fake_linux, "tag", "next-20251231", "next-20260301")
    git_env(fake_linux, "tag", "next-2026", "next-20260301")  # not a date tag
    r = tree.resolve(fake_linux, None, Settings())
    assert r.name == "next-20260303" and r.tags == ["next-20260303"]
    assert r.commit == git_env(fake_linux, "rev-parse", "next-20260303")
    assert r.subject.startswith('Revert "mm: let pte_lockptr()')
    assert tree.resolve(fake_linux, "next-20260302", Settings()).name == "next-20260302"
    with pytest.raises(ConfigError, match="not a commit"):
        tree.resolve(fake_linux, "next-29990101", Settings())


def test_without_next_tags_head_is_tested(fake_linux):
    for t in ("next-20260301", "next-20260302", "next-20260303"):
        git_env(fake_linux, "tag", "-d", t)
    git_env(fake_linux, "tag", "v6.12", "HEAD~2")
    r = tree.resolve(fake_linux, None, Settings())
    assert r.commit == git_env(fake_linux, "rev-parse", "HEAD")
    assert r.name == "v6.12-2-g" + r.commit[:7]


def test_offline_tree_is_not_fetched(fake_linux):
    f = tree.update(fake_linux, Settings())
    assert f.ok and f.remote == "" and "offline" in f.note
    assert "disabled" in tree.update(fake_linux, Settings(), fetch=False).note


def test_fetch_from_the_configured_remote(fake_linux, tmp_path):
    clone = tmp_path / "clone"
    git_env(tmp_path, "clone", "-q", "--no-tags", str(fake_linux), str(clone))
    git_env(clone, "remote", "rename", "origin", "upstream")
    git_env(clone, "remote", "add", "broken", str(tmp_path / "nowhere"))
    s = Settings(remote_url=str(fake_linux))
    assert tree.pick_remote(tree.remotes(clone), s) == "upstream"
    assert tree.newest_tag(clone, s.ref_pattern) is None
    f = tree.update(clone, s)
    assert f.ok and f.remote == "upstream", f.note
    assert tree.newest_tag(clone, s.ref_pattern) == "next-20260303"
    bad = tree.update(clone, Settings(remote_url="x", remote_name="broken"))
    assert not bad.ok and "git fetch broken (" in bad.note
    assert "does not appear to be a git repository" in bad.note
    # a URL the tree has no remote for is fetched directly
    other = tmp_path / "clone2"
    git_env(tmp_path, "clone", "-q", "--no-tags", str(fake_linux), str(other))
    git_env(other, "remote", "remove", "origin")
    bare = tmp_path / "bare.git"  # no HEAD, as a tags-only upstream may have none
    git_env(tmp_path, "init", "-q", "--bare", str(bare))
    git_env(fake_linux, "push", "-q", str(bare), "refs/tags/*:refs/tags/*")
    f = tree.update(other, Settings(), remote=f"file://{bare}")
    assert f.ok and f.url == f"file://{bare}", f.note
    assert tree.newest_tag(other, s.ref_pattern) == "next-20260303"


def test_pick_remote_prefers_url_then_name_then_origin():
    s = Settings(remote_url="https://git.kernel.org/next/linux-next.git", remote_name="next")
    found = {"origin": "https://a", "mine": "https://git.kernel.org/next/linux-next.git/"}
    assert tree.pick_remote(found, s) == "mine"
    assert tree.pick_remote({"origin": "x", "next": "y"}, s) == "next"
    assert tree.pick_remote({"origin": "x", "zz": "y"}, s) == "origin"
    assert tree.pick_remote({"zz": "y", "aa": "z"}, s) == "aa"
    assert tree.pick_remote({}, s) is None


def test_not_a_git_tree(tmp_path):
    with pytest.raises(ConfigError, match="not a git tree"):
        tree.git_tree(tmp_path)


def test_settings_file(tmp_path):
    f = tmp_path / "nightly.yaml"
    f.write_text(
        "remote: {url: https://example.org/next.git}\ntargets: [arm32-highmem-ci]\n"
        "retries: 2\nkcidb_origin: mylab\n"
    )
    s = settings.load(f)
    assert s.remote_url == "https://example.org/next.git" and s.remote_name == "linux-next"
    assert s.targets == ["arm32-highmem-ci"] and s.retries == 2 and s.origin == "mylab"
    assert s.matrix()[0] == ["arm32-highmem-ci"] and "boot" in s.matrix()[1]
    f.write_text("retries: 1\ncolour: red\n")
    with pytest.raises(ConfigError, match="colour: unknown key"):
        settings.load(f)
    f.write_text("kcidb_origin: My-Lab\n")
    with pytest.raises(ConfigError, match="kcidb_origin"):
        settings.load(f)
    f.write_text("retries: many\n")
    with pytest.raises(ConfigError, match="retries: expected int"):
        settings.load(f)


def test_default_jobs():
    assert settings.default_jobs(2) == 1 and settings.default_jobs(16) == 4


def test_settings_hosts(tmp_path):
    f = tmp_path / "nightly.yaml"
    f.write_text(
        "hosts:\n"
        "  - {host: ci@kvm.lab, known_hosts: /etc/harness/known_hosts,\n"
        "     identity: /etc/harness/id, remote_dir: /srv/harness, targets: [x86-64-ci]}\n"
        "  - {host: 'ci@arm-box:2222'}\n"
    )
    s = settings.load(f)
    x86 = s.host_for("x86-64-ci")
    assert str(x86.ssh.host) == "ci@kvm.lab" and x86.base_dir == "/srv/harness"
    assert str(x86.ssh.known_hosts) == "/etc/harness/known_hosts"
    assert str(s.host_for("arm32-highmem-ci").ssh.host) == "ci@arm-box:2222"
    f.write_text("hosts:\n  - {host: 'a b'}\n")
    with pytest.raises(ConfigError, match=r"hosts\[0\]: --host 'a b'"):
        settings.load(f)
    f.write_text("hosts:\n  - {host: h, password: hunter2}\n")
    with pytest.raises(ConfigError, match=r"hosts\[0\]\.password: unknown key"):
        settings.load(f)
