"""--host and friends: parsing, refusals at the door, the command line that repeats a run,
and what a bisection does with a refused host key. (The SSH itself is tested against a
real sshd in tests/integration/test_remote.py.)"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import cli, qemu
from harness.bisect import ABORT, classify
from harness.config import load_target
from harness.errors import ConfigError
from harness.machine import RemoteOptions
from harness.run import HOST_KEY_CAUSE, RunOptions, remote_from_args
from harness.ssh import HostSpec
from harness.verdict import Verdict


@pytest.mark.parametrize(
    ("text", "host", "port", "user"),
    [
        ("kvm-server", "kvm-server", 22, ""),
        ("ci@kvm.example.org", "kvm.example.org", 22, "ci"),
        ("root@127.0.0.1:2222", "127.0.0.1", 2222, "root"),
        ("[::1]:2200", "::1", 2200, ""),
        ("me@[fe80::1]", "fe80::1", 22, "me"),
    ],
)
def test_host_spec(text, host, port, user):
    spec = HostSpec.parse(text)
    assert (spec.host, spec.port, spec.user) == (host, port, user)
    assert HostSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    ["", "host:0", "host:70000", "host:ssh", "-oProxyCommand=x", "a b", "u;x@host",
     "[::1", "host/../x", "ho..st", "@host"],
)  # fmt: skip
def test_bad_host_specs_are_usage_errors(text):
    with pytest.raises(ConfigError, match="--host"):
        HostSpec.parse(text)


def test_known_hosts_name_is_openssh_spelling():
    assert HostSpec.parse("h").known_hosts_name == "h"
    assert HostSpec.parse("u@h:2022").known_hosts_name == "[h]:2022"


def test_remote_dir_must_be_absolute():
    with pytest.raises(ConfigError, match="--remote-dir"):
        RemoteOptions.make("h", remote_dir="runs")
    with pytest.raises(ConfigError, match="--remote-dir"):
        RemoteOptions.make("h", remote_dir="/srv/../etc")
    assert RemoteOptions.make("h", remote_dir="/srv/runs/").base_dir == "/srv/runs"


def test_companions_need_host():
    args = argparse.Namespace(host=None, known_hosts=None, identity="id", remote_dir=None)
    with pytest.raises(ConfigError, match="--identity needs --host"):
        remote_from_args(args)


def test_the_repeat_command_carries_the_host_and_no_secret():
    remote = RemoteOptions.make("ci@kvm:2222", "/k/known", "/k/id_ed25519", "/srv/h")
    argv = RunOptions("x86-64-ci", remote=remote).argv()
    assert argv[-8:] == ["--host", "ci@kvm:2222", "--known-hosts", "/k/known",
                         "--identity", "/k/id_ed25519", "--remote-dir", "/srv/h"]  # fmt: skip
    args = cli.build_parser().parse_args(argv[1:])
    assert RunOptions.from_args(args).remote == remote


def test_a_refused_host_key_aborts_a_bisection():
    v = Verdict("config-error", 4, "ssh h: REFUSED: unknown host key")
    v.cause = HOST_KEY_CAUSE
    out = SimpleNamespace(verdict=v, reports=[], results_dir=Path())
    assert classify(out, None)[0] == ABORT  # a skip would mark every commit untestable


def test_accel_reason_names_the_host():
    t = load_target("x86-64-ci")
    facts = qemu.HostFacts("x86_64", frozenset({"vmx"}), None, lambda b: None, " on ci@kvm")
    c = qemu.choose_accel(t, facts=facts)
    assert c.accel == "kvm" and "on ci@kvm" in c.reason
    facts = qemu.HostFacts("aarch64", frozenset(), None, lambda b: None, " on board")
    assert "on a aarch64 host on board" in qemu.choose_accel(t, facts=facts).reason


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x86-64-ci", "--host", "a b"],
        ["run", "x86-64-ci", "--identity", "/x"],
        ["bisect", "t", "--good", "a", "--bad", "b", "--kernel", "k", "--host", "h:0"],
    ],
)
def test_bad_remote_flags_exit_4(argv, capsys):
    assert cli.main(argv) == 4
