import os

import pytest

from harness.errors import ConfigError, InfraError
from harness.fsutil import (
    OWNED_MARK,
    atomic_write_text,
    check_name,
    make_owned_dir,
    remove_owned,
)


@pytest.mark.parametrize("name", ["arm32-highmem-ci", "debian-6.12", "x86_64", "a+b", "v1.2"])
def test_good_names(name):
    assert check_name("target", name) == name


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "-rf", "a..b", "x" * 129, "ä"])
def test_hostile_names(name):
    with pytest.raises(ConfigError, match="is not valid"):
        check_name("target", name)


def test_atomic_write_leaves_no_temporary(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_text(p, "one\n")
    atomic_write_text(p, "two\n")
    assert p.read_text() == "two\n"
    assert os.listdir(tmp_path) == ["x.json"]


def test_remove_owned_only_removes_marked_folders_inside(tmp_path):
    cache = tmp_path / "cache"
    mine = make_owned_dir(cache / "src" / "partial")
    (mine / "f").write_text("x")
    users = cache / "src" / "users"
    users.mkdir()
    outside = make_owned_dir(tmp_path / "elsewhere")
    link = cache / "link"
    link.symlink_to(mine)
    with pytest.raises(InfraError, match="did not create it"):
        remove_owned(users, cache)
    with pytest.raises(InfraError, match="not inside"):
        remove_owned(outside, cache)
    with pytest.raises(InfraError, match="not inside"):
        remove_owned(cache / "src" / ".." / ".." / "elsewhere", cache)
    with pytest.raises(InfraError, match="symlink"):
        remove_owned(link, cache)
    remove_owned(mine, cache)
    assert not mine.exists() and users.exists() and (outside / OWNED_MARK).exists()
    remove_owned(cache / "never-there", cache)  # nothing to do
