"""Known issues as data: loading, matching, and the verdict that names them."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import known
from harness.config import load_scenario
from harness.console import BootResult
from harness.errors import ConfigError
from harness.verdict import decide

RACY = SimpleNamespace(
    title="WARNING in __check_safe_pte_update",
    text="__check_safe_pte_update: racy access flag clearing: 0x04e0 -> 0x00e0",
    frames=[],
)
UNSAFE = SimpleNamespace(
    title="WARNING in __check_safe_pte_update",
    text="__check_safe_pte_update: unsafe attribute change: 0x1 -> 0x2",
    frames=[],
)


def _boot(done=True) -> BootResult:
    return BootResult("console", "poweroff", 5.0, 0, True, done, 0)


def test_the_shipped_file_loads_and_matches_only_its_warning():
    issues = known.load()
    (issue,) = [i for i in issues if i.id == "arm64-uffd-wp-racy-access-flag"]
    at = {"target": "arm64-bbml2-ci", "scenario": "boot", "version": (6, 12, 117)}
    assert issue.matches(RACY, **at)
    assert not issue.matches(UNSAFE, **at)  # the cow-without-bbm canary's warning
    assert not issue.matches(RACY, **{**at, "target": "x86-64-ci"})
    assert not issue.matches(RACY, **{**at, "version": (6, 1, 150)})
    assert (Path(__file__).parents[2] / issue.link).exists()


def test_a_run_with_only_known_issues_passes_and_names_them():
    issues = known.load()
    reports = [RACY]
    seen = known.split(reports, issues, target="arm64-bbml2-ci", scenario="boot",
                       version=(6, 12, 117))  # fmt: skip
    v = decide(_boot(), reports, load_scenario("boot"), None, (), seen)
    assert v.verdict == "pass" and v.exit_code == 0
    assert "known issue arm64-uffd-wp-racy-access-flag" in v.summary
    assert v.known[0]["link"].startswith("docs/known-issues/")
    v2 = decide(_boot(), [RACY, UNSAFE], load_scenario("boot"), None, (),
                known.split([RACY, UNSAFE], issues, target="arm64-bbml2-ci",
                            scenario="boot", version=(6, 12, 117)))  # fmt: skip
    assert v2.verdict == "fail" and v2.exit_code == 1
    assert any("also known issue" in d for d in v2.details)


def test_bad_known_issue_files_name_file_and_key(tmp_path):
    f = tmp_path / "k.yaml"
    f.write_text("issues:\n  - id: x\n    text_regex: '('\n    title: T\n")
    with pytest.raises(ConfigError, match=r"k\.yaml: issues\[0\]\.text_regex"):
        known.load([f])
    f.write_text("issues:\n  - id: x\n")
    with pytest.raises(ConfigError, match="needs title or title_regex"):
        known.load([f])
    f.write_text("issues:\n  - id: x\n    title: T\n  - id: x\n    title: U\n")
    with pytest.raises(ConfigError, match="also defined"):
        known.load([f])
    f.write_text("issues:\n  - id: x\n    title: T\n    colour: red\n")
    with pytest.raises(ConfigError, match="colour: unknown key"):
        known.load([f])


def test_extra_file_from_the_environment(tmp_path, monkeypatch):
    f = tmp_path / "lab.yaml"
    f.write_text("issues:\n  - id: lab-one\n    title: 'BUG: x'\n")
    monkeypatch.setenv("HARNESS_KNOWN_ISSUES", str(f))
    assert "lab-one" in {i.id for i in known.load()}
