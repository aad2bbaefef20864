from pathlib import Path

import pytest

from harness import config
from harness.config import load_scenario, load_target, read_fragment, version_in_range
from harness.errors import ConfigError


def test_all_shipped_targets_and_scenarios_load():
    for name in config.list_targets():
        t = load_target(name)
        assert t.qemu.binary.startswith("qemu-system-")
        assert t.fragments, name
    for name in config.list_scenarios():
        load_scenario(name)


def test_inheritance_replaces_and_adds_fragments():
    ci = load_target("arm32-highmem-ci")
    assert ci.defconfig == "tinyconfig"
    assert [f.name for f in ci.fragments] == ["arm32-ci.config"]
    lpae = load_target("arm32-highmem-lpae-ci")
    assert [f.name for f in lpae.fragments] == [
        "arm32-ci.config",
        "arm32-lpae.config",
        "kselftest-mm-ci.config",
    ]
    assert lpae.qemu.memory_mb == 2048  # inherited from arm32-highmem
    req = lpae.required_options()
    assert req["CONFIG_ARM_LPAE"] == "y" and req["CONFIG_HIGHPTE"] == "y"


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_unknown_key_names_file_and_key(tmp_path):
    base = load_target("arm32-highmem").path.read_text()
    _write(tmp_path, "bad.yaml", base + "bogus_key: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: bogus_key: unknown key"):
        load_target("bad", tmp_path)


def test_wrong_type_names_nested_key(tmp_path):
    text = load_target("arm32-highmem").path.read_text().replace("smp: 2", "smp: two")
    _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=r"bad\.yaml: qemu\.smp: expected int"):
        load_target("bad", tmp_path)


def test_yaml_syntax_error_names_line(tmp_path):
    _write(tmp_path, "bad.yaml", "arch: arm\nqemu: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_target("bad", tmp_path)


def test_unknown_target_lists_known(tmp_path):
    with pytest.raises(ConfigError, match="known targets: arm32-highmem"):
        load_target("nope")


def test_inherit_cycle(tmp_path):
    _write(tmp_path, "a.yaml", "inherits: b\n")
    _write(tmp_path, "b.yaml", "inherits: a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_target("a", tmp_path)


def test_fragment_parsing(tmp_path):
    p = _write(
        tmp_path,
        "f.config",
        'CONFIG_A=y\n# CONFIG_B is not set\n# comment\nCONFIG_C="x y"\nCONFIG_D=4\n',
    )
    assert read_fragment(p) == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_C": '"x y"',
        "CONFIG_D": "4",
    }
    bad = _write(tmp_path, "g.config", "CONFIG_A=y\nHIGHMEM=y\n")
    with pytest.raises(ConfigError, match=r"g\.config:2: not a Kconfig line"):
        read_fragment(bad)


@pytest.mark.parametrize(
    "version,spec,ok",
    [
        ((6, 12, 117), ">=6.12,<6.13", True),
        ((6, 13, 0), ">=6.12,<6.13", False),
        ((7, 3, 4), ">=7.3", True),
        ((7, 3, 4), "==7.3", True),
        ((7, 2, 9), ">=7.3", False),
        ((6, 1, 0), "*", True),
    ],
)
def test_version_ranges(version, spec, ok):
    assert version_in_range(version, spec) is ok


def test_bad_version_range():
    with pytest.raises(ConfigError, match="cannot read"):
        version_in_range((1, 2, 3), ">=six")


def test_canary_variant_selection():
    s = load_scenario("pte-lockptr-highpte")
    assert s.canary
    v612 = s.variant_for((6, 12, 117))
    v73 = s.variant_for((7, 3, 4))
    assert v612 and v612.expect and "__pte_offset_map_lock" in v612.expect.title
    assert v73 and v73.expect and v73.expect.title.endswith(" pte_offset_map_lock")
    v61, v72 = s.variant_for((6, 1, 192)), s.variant_for((7, 2, 13))
    assert v61 and [p.name for p in v61.patches] == ["pte-lockptr-highpte-6.1.patch"]
    assert v72 and [p.name for p in v72.patches] == ["pte-lockptr-highpte-7.2.patch"]
    assert s.variant_for((6, 0, 0)) is None and s.variant_for((7, 4, 0)) is None


def test_scenario_errors(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "scenario.yaml").write_text("steps:\n  - workload: no-such-workload\n")
    with pytest.raises(
        ConfigError, match=r"scenario\.yaml: steps\[0\]: workload 'no-such-workload'"
    ):
        load_scenario("x", tmp_path)
    (d / "scenario.yaml").write_text("canary: true\nsteps: []\n")
    with pytest.raises(ConfigError, match="a canary needs at least one variant"):
        load_scenario("x", tmp_path)
    (d / "scenario.yaml").write_text("patches: [missing.patch]\n")
    with pytest.raises(ConfigError, match=r"patches: missing\.patch: no such file"):
        load_scenario("x", tmp_path)


def test_xen_target_and_its_direct_boot_twin_share_one_kernel():
    xen, direct = load_target("x86-xen-pv-ci"), load_target("x86-64-ci")
    assert xen.hypervisor and xen.hypervisor.kind == "xen" and direct.hypervisor is None
    assert xen.build_name == direct.build_name == "x86-xen-pv-ci"
    assert xen.required_options() == direct.required_options()
    assert xen.qemu.console == "hvc0" and direct.qemu.console == "ttyS0"
    assert load_target("x86-xen-pv").defconfig.split() == ["x86_64_defconfig", "xen.config"]


def test_shares_build_with_a_different_kernel_is_refused(tmp_path):
    base = load_target("arm32-highmem").path.read_text()
    _write(tmp_path, "a.yaml", base)
    _write(tmp_path, "b.yaml", "inherits: a\nshares_build_with: a\ndefconfig: tinyconfig\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: shares_build_with: a .*defconfig differs"):
        load_target("b", tmp_path)
    _write(tmp_path, "c.yaml", "inherits: a\nshares_build_with: a\ncmdline: quiet\n")
    assert load_target("c", tmp_path).build_name == "a"


def test_hypervisor_errors_name_the_key(tmp_path):
    base = load_target("arm32-highmem").path.read_text()
    _write(tmp_path, "h.yaml", base + "hypervisor:\n  kind: kvmtool\n  package: p\n  image: i\n")
    with pytest.raises(ConfigError, match=r"h\.yaml: hypervisor\.kind: 'kvmtool' is not one of"):
        load_target("h", tmp_path)
    _write(tmp_path, "m.yaml", base + "hypervisor:\n  kind: xen\n  image: i\n")
    with pytest.raises(ConfigError, match=r"m\.yaml: hypervisor\.package: required key"):
        load_target("m", tmp_path)


def test_xen_canary_scope():
    s = load_scenario("xen-lazy-mmu-nesting")
    assert s.canary and s.requires_hypervisor == "xen" and "x86_64" in s.arches
    assert s.variant_for((6, 12, 117)).expect.title == "kernel BUG in xen_enter_lazy_mmu"
    late = s.variant_for((7, 3, 4))
    assert late.not_applicable and not late.patches and late.expect is None


def _scenario(tmp: Path, text: str, patches: tuple[str, ...] = ()) -> None:
    """Scenario 'x' under tmp, with empty patch files of these names."""
    d = tmp / "x"
    (d / "patches").mkdir(parents=True)
    for name in patches:
        (d / "patches" / name).write_text("")
    (d / "scenario.yaml").write_text(text)


def test_not_applicable_variant_cannot_carry_patches(tmp_path):
    _scenario(
        tmp_path,
        "canary: true\nvariants:\n  - kernel: '>=7'\n    not_applicable: why\n"
        "    patches: [p.patch]\n",
        ("p.patch",),
    )
    with pytest.raises(ConfigError, match=r"variants\[0\]\.not_applicable"):
        load_scenario("x", tmp_path)


def test_enablers_must_be_among_the_variant_patches(tmp_path):
    _scenario(
        tmp_path,
        "canary: true\nvariants:\n  - kernel: '>=7'\n    patches: [bug.patch]\n"
        "    enablers: [enable.patch]\n    expect: {title: X}\n",
        ("bug.patch",),
    )
    with pytest.raises(ConfigError, match=r"variants\[0\]\.enablers: enable\.patch is not in"):
        load_scenario("x", tmp_path)


def test_requires_console_regex_is_checked(tmp_path):
    _scenario(tmp_path, "variants:\n  - kernel: '>=7'\n    requires_console: ['BBM Level [23']\n")
    with pytest.raises(ConfigError, match=r"variants\[0\]\.requires_console\[0\]"):
        load_scenario("x", tmp_path)


def test_shared_patches_are_found_after_the_scenarios_own():
    for name in ("vmalloc-perms", "bbml2-lockless-split"):
        v = load_scenario(name).variant_for((7, 3, 4))
        assert config.PATCHES_DIR / "bbml3-allow-qemu-max-7.3.patch" in v.patches


def test_harness_path_adds_targets_scenarios_and_fragments(tmp_path, monkeypatch):
    from harness import config

    lab = tmp_path / "lab"
    (lab / "configs" / "targets").mkdir(parents=True)
    (lab / "configs" / "fragments").mkdir(parents=True)
    (lab / "scenarios" / "lab-only").mkdir(parents=True)
    (lab / "configs" / "fragments" / "lab.config").write_text("CONFIG_LAB=y\n")
    (lab / "configs" / "targets" / "lab-arm.yaml").write_text(
        "inherits: arm32-highmem-ci\nadd_fragments: [lab.config]\n"
    )
    (lab / "scenarios" / "lab-only" / "scenario.yaml").write_text(
        "steps:\n  - workload: mm-churn\n"
    )
    monkeypatch.setenv("HARNESS_PATH", str(lab))
    t = config.load_target("lab-arm")
    assert t.required_options()["CONFIG_LAB"] == "y" and t.arch == "arm"
    assert "lab-arm" in config.list_targets() and "arm32-highmem" in config.list_targets()
    s = config.load_scenario("lab-only")
    assert s.workloads[0].name == "mm-churn.c"  # the harness's own shared workload
    assert "lab-only" in config.list_scenarios()


def test_non_utf8_yaml_names_file_and_line(tmp_path):
    from harness import config

    (tmp_path / "t.yaml").write_bytes(b"description: ok\narch: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"t\.yaml:2: not UTF-8 \(byte 0xe9"):
        config.load_yaml(tmp_path / "t.yaml")
