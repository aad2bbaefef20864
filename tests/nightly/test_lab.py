"""Which targets a nightly runs in a LAVA lab, and the settings that say so."""

from __future__ import annotations

import pytest
import yaml

from harness.errors import ConfigError
from harness.nightly import lab, settings
from harness.nightly.matrix import where_it_ran


def _load(tmp_path, lava: dict):
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump({"lava": lava}))
    return settings.load(path)


def test_lava_settings(tmp_path):
    art = {"serve": "0.0.0.0:8020", "url": "http://me.lab:8020"}
    s = _load(tmp_path, {"server": "https://lava.lab/", "targets": ["arm32-highmem-ci"],
                         "artifacts": art})  # fmt: skip
    assert s.lava == settings.LavaLab(
        "https://lava.lab/", None, ("arm32-highmem-ci",), 10.0, "http://me.lab:8020",
        ("0.0.0.0", 8020), "",
    )  # fmt: skip


@pytest.mark.parametrize(
    "lava, message",
    [
        ({"server": "lava.lab"}, r"lava.server: expected an http\(s\) URL"),
        ({"server": "https://l/", "artifacts": {"serve": "127.0.0.1:1", "upload": "x",
                                                "url": "u"}}, "serve or upload, not both"),
        ({"server": "https://l/", "artifacts": {"upload": "rsync {dir} s:"}}, "needed with upload"),
        ({"server": "https://l/", "artifacts": {"serve": "0.0.0.0:8020"}}, "the name workers"),
        ({"server": "https://l/", "artifacts": {"serve": "8020"}}, "expected HOST:PORT"),
        ({"server": "https://l/", "token": "abc"}, "lava.token: unknown key"),
    ],
)  # fmt: skip
def test_lava_settings_errors_name_the_key(tmp_path, lava, message):
    with pytest.raises(ConfigError, match=message) as e:
        _load(tmp_path, lava)
    assert str(tmp_path / "nightly.yaml") in str(e.value)


def test_the_xen_dom0_runs_here_and_says_why(monkeypatch):
    monkeypatch.setenv(settings.LAVA_TOKEN_ENV, "t0k")
    p = lab.plan(settings.LavaLab("https://lava.lab/"), ["arm32-highmem-ci", "x86-xen-pv-ci"], "x")
    assert p.targets == ["arm32-highmem-ci"] and p.token == "t0k"
    assert list(p.here) == ["x86-xen-pv-ci"] and "multiboot" in p.here["x86-xen-pv-ci"]
    only = lab.plan(settings.LavaLab("https://l/", targets=("arm64-bbml2-ci",)),
                    ["arm32-highmem-ci", "arm64-bbml2-ci"], "x")  # fmt: skip
    assert only.targets == ["arm64-bbml2-ci"]
    assert only.here == {"arm32-highmem-ci": "not in lava.targets"}


def test_a_lab_target_it_cannot_run_or_no_token_is_a_usage_error(monkeypatch):
    monkeypatch.delenv(settings.LAVA_TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match="lava.targets: x86-xen-pv-ci"):
        lab.plan(settings.LavaLab("https://l/", targets=("x86-xen-pv-ci",)), [], "n.yaml")
    with pytest.raises(ConfigError, match="needs a LAVA API token"):
        lab.plan(settings.LavaLab("https://l/"), ["arm32-highmem-ci"], "n.yaml")
    # nothing to submit: no token needed
    assert lab.plan(settings.LavaLab("https://l/"), ["x86-xen-pv-ci"], "n.yaml").targets == []


def test_where_a_run_booted():
    on_w2 = {"lava": {"job_id": 7, "worker": "w2", "actual_device": "q2"}}
    assert where_it_ran(on_w2) == "lava job 7 on w2"
    on_q2 = {"lava": {"job_id": 7, "actual_device": "q2", "device": "/r/device.yaml"}}
    assert where_it_ran(on_q2) == "lava job 7 on q2"  # device: the device file, not where
    assert where_it_ran({"boot": {"machine": {"kind": "ssh", "host": "ci@kvm"}}}) == "ssh ci@kvm"
    assert where_it_ran({"boot": {"machine": {"kind": "local"}}}) == "here"
