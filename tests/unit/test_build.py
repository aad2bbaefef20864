"""The build stage against a fake kernel tree (real make, fake Kconfig)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from kernel_tree import make_fake_tree

from harness import build
from harness.config import load_target
from harness.errors import BuildError, NotApplicable
from harness.source import KernelSource, read_version


@pytest.fixture
def fake(tmp_path, monkeypatch):
    if not shutil.which("make"):
        pytest.skip("make not installed")
    tree = make_fake_tree(tmp_path / "linux", ["CONFIG_BASE", "CONFIG_HIGHMEM", "CONFIG_X"])
    frag = tmp_path / "frag.config"
    frag.write_text("CONFIG_HIGHMEM=y\nCONFIG_X=y\n")
    target = dataclasses.replace(
        load_target("arm32-highmem-ci"),
        cross_compile="",  # host gcc stands in for the cross compiler
        defconfig="tinyconfig",
        fragments=(frag,),
        config={},
    )
    src = KernelSource("fake", tree, read_version(tree), "debian", "fake tree", "fake")
    monkeypatch.setenv("CCACHE_DISABLE", "1")
    return target, src, tmp_path / "cache", frag


def test_build_configures_and_builds(fake):
    target, src, cache, _ = fake
    r = build.build(target, src, cache, jobs=1, quiet=True)
    assert r.image.read_text() == "int a;\n"
    cfg = (r.build_dir / ".config").read_text()
    assert "CONFIG_HIGHMEM=y" in cfg and "CONFIG_X=y" in cfg
    assert r.steps == 2  # CC mm/a.o + LD vmlinux
    assert r.commands[0].endswith(" tinyconfig") and "merge_config.sh" in r.commands[1]
    assert "O=" in r.commands[-1] and r.commands[-1].endswith("zImage")
    assert "$ make" in r.log.read_text()


def test_configure_is_skipped_when_inputs_unchanged(fake):
    target, src, cache, frag = fake
    r1 = build.build(target, src, cache, jobs=1, quiet=True)
    mtime = (r1.build_dir / ".config").stat().st_mtime_ns
    build.build(target, src, cache, jobs=1, quiet=True)
    assert (r1.build_dir / ".config").stat().st_mtime_ns == mtime
    frag.write_text("CONFIG_HIGHMEM=y\n")  # changed input: reconfigure
    r3 = build.build(target, src, cache, jobs=1, quiet=True)
    assert "CONFIG_X=y" not in (r3.build_dir / ".config").read_text()


def test_option_dropped_by_kconfig_is_named(fake):
    target, src, cache, frag = fake
    frag.write_text("CONFIG_HIGHMEM=y\nCONFIG_NEEDS_LPAE=y\n")
    with pytest.raises(BuildError) as e:
        build.build(target, src, cache, jobs=1, quiet=True)
    assert "CONFIG_NEEDS_LPAE=y (asked by frag.config)" in str(e.value)
    assert "final .config has CONFIG_NEEDS_LPAE=n" in str(e.value)


def test_scenario_requirement_not_met(fake):
    target, src, cache, _ = fake
    with pytest.raises(NotApplicable, match="CONFIG_TRANSPARENT_HUGEPAGE=n"):
        build.build(
            target, src, cache, jobs=1, quiet=True, requires={"CONFIG_TRANSPARENT_HUGEPAGE": "y"}
        )


def test_compile_error_is_build_error_with_log(fake):
    target, src, cache, _ = fake
    (src.tree / "mm" / "a.c").write_text("BREAK_BUILD\n")
    with pytest.raises(BuildError) as e:
        build.build(target, src, cache, jobs=1, quiet=True)
    assert "mm/a.c:1: error: broken" in str(e.value) and "build.log" in str(e.value)


def test_missing_cross_compiler(fake):
    target, src, cache, _ = fake
    target = dataclasses.replace(target, cross_compile="no-such-arch-linux-")
    from harness.errors import InfraError

    with pytest.raises(InfraError, match="no-such-arch-linux-gcc not found"):
        build.build(target, src, cache, jobs=1, quiet=True)


def test_make_command_uses_ccache_for_cc_not_cross_prefix(fake):
    target, src, cache, _ = fake
    cmd = build.make_command(load_target("arm32-highmem"), src, cache / "b", 2)
    assert "CROSS_COMPILE=arm-linux-gnueabihf-" in cmd
    if shutil.which("ccache"):
        assert "CC=ccache arm-linux-gnueabihf-gcc" in cmd
