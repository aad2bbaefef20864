"""`harness run --cmdline TEXT`: appended to the kernel command line, recorded everywhere."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path

import pytest

from harness import cli, qemu, source
from harness import run as run_mod
from harness.build import BuildResult
from harness.errors import ConfigError
from harness.patches import Applied
from harness.run import RunOptions


def _args(*argv: str):
    return cli.build_parser().parse_args(["run", "arm32-highmem-ci", *argv])


def test_flag_reaches_the_options_normalised() -> None:
    opts = RunOptions.from_args(_args("--cmdline", "  oops_inject=warn-on   foo=1 "))
    assert opts.cmdline == "oops_inject=warn-on foo=1"
    assert RunOptions.from_args(_args()).cmdline == ""


def test_control_characters_are_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="control characters"):
        RunOptions.from_args(_args("--cmdline", "a=1\nb=2"))
    assert cli.main(["run", "arm32-highmem-ci", "--cmdline", "a\tb"]) == 4


def test_it_comes_last_on_the_kernel_command_line() -> None:
    from harness.config import load_target

    target = load_target("arm32-highmem-ci")
    line = qemu.kernel_cmdline(target, "scenario=1", "mine=2 loglevel=8")
    assert line.endswith("loglevel=7 scenario=1 mine=2 loglevel=8")  # the last one wins


@pytest.fixture
def no_build(tmp_path, monkeypatch):
    """run.prepare with the source, the patching and the build faked."""
    tree = tmp_path / "tree"
    kdir = tmp_path / "build"
    for d in (tree, kdir):
        d.mkdir()
    (kdir / "zImage").write_bytes(b"kernel")
    src = source.KernelSource("fake", tree, (6, 12, 117), "debian", "a fake tree", "fake")
    monkeypatch.setattr(source, "resolve", lambda spec, cache=None: src)

    @contextlib.contextmanager
    def applied(*args, **kwargs):
        yield Applied(-1)

    monkeypatch.setattr(run_mod.patches, "applied", applied)
    result = BuildResult(kdir, kdir / "zImage", kdir / "vmlinux", kdir / "log", 1.0)
    monkeypatch.setattr(run_mod.build_mod, "build", lambda *a, **k: result)
    monkeypatch.setattr(run_mod.build_mod, "build_dir_for", lambda *a: kdir)

    def initramfs(target, scenario, cache, out, nonce, kselftests=()):
        out.write_bytes(b"initramfs")
        return out

    monkeypatch.setattr(run_mod.rootfs, "build_initramfs", initramfs)
    return tmp_path


def test_recorded_in_metadata_and_reproducer(no_build: Path) -> None:
    opts = RunOptions.from_args(
        _args(
            "--cmdline",
            "oops_inject=might-sleep rcupdate.rcu_cpu_stall_timeout=3",
            "--results",
            str(no_build / "results"),
            "-q",
        )  # fmt: skip
    )
    prep = run_mod.prepare(run_mod.start(opts))
    extra = "oops_inject=might-sleep rcupdate.rcu_cpu_stall_timeout=3"
    assert prep.cmdline.endswith(" " + extra)
    argv = prep.argv
    assert argv[argv.index("-append") + 1] == prep.cmdline
    meta = json.loads((prep.rdir / "metadata.json").read_text())
    assert meta["boot"]["extra_cmdline"] == extra
    assert meta["boot"]["cmdline"] == prep.cmdline
    assert shlex.split(meta["command"])[-2:] == ["--cmdline", extra]
    assert shlex.split(meta["reproducer"]["harness"])[-2:] == ["--cmdline", extra]
    assert shlex.quote(prep.cmdline) in (prep.rdir / "reproduce.sh").read_text()


@pytest.mark.parametrize(
    "flags",
    [
        "",
        "--cmdline oops_inject=might-sleep",
        "--cmdline 'oops_inject=rcu-stall rcupdate.rcu_cpu_stall_timeout=3 a=\"b c\"'",
        "-s oops-kinds -k debian-7.3 --patch /x/y.patch --patch z.patch --accel tcg "
        "--timeout 90 --clean --cmdline x=1",
    ],
)
def test_argv_round_trips(flags: str) -> None:
    """RunOptions.argv() (the command and the reproducer) parses back to the same run."""
    opts = RunOptions.from_args(_args(*shlex.split(flags)))
    again = RunOptions.from_args(cli.build_parser().parse_args(opts.argv()[1:]))
    assert again == opts
    assert ("--cmdline" in opts.argv()) == bool(opts.cmdline)
    assert shlex.split(opts.command()) == opts.argv()


def test_lava_commands_take_it_too() -> None:
    """`harness lava job|run|submit` share the run flags: --cmdline reaches their options."""
    from harness.lava.cmd import argv_of, options

    args = cli.build_parser().parse_args(
        ["lava", "job", "arm32-highmem-ci", "--cmdline", "oops_inject=warn-on"]
    )
    assert options(args).cmdline == "oops_inject=warn-on"
    assert argv_of(args)[-2:] == ["--cmdline", "oops_inject=warn-on"]


def test_help_shows_it(capsys) -> None:
    assert cli.main(["run", "--help"]) == 0
    assert "--cmdline TEXT" in capsys.readouterr().out
