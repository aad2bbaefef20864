"""Results folder pieces: metadata lifecycle, JUnit XML, summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from types import SimpleNamespace

from harness import results
from harness.verdict import Verdict


def test_metadata_starts_incomplete_and_is_valid_json(tmp_path):
    m = results.Metadata(tmp_path / "metadata.json", {"run_id": "r1"})
    assert json.loads((tmp_path / "metadata.json").read_text())["status"] == "incomplete"
    m.update(status="complete", verdict="pass")
    data = json.loads((tmp_path / "metadata.json").read_text())
    assert data == {"status": "complete", "run_id": "r1", "verdict": "pass"}
    assert not (tmp_path / "metadata.tmp").exists()


def test_run_dirs_are_unique(tmp_path):
    a = results.new_run_dir("t", "s", tmp_path)
    b = results.new_run_dir("t", "s", tmp_path)
    assert a[0] != b[0] and a[1].is_dir() and b[1].is_dir()


def _rep(title: str):
    return SimpleNamespace(title=title, type="BUG", frames=[], text=f"{title}\n\x1b[0mtrace\n")


def test_junit_failure_carries_report(tmp_path):
    v = Verdict("fail", 1, "regression: BUG: X in f")
    path = tmp_path / "junit.xml"
    results.write_junit(path, "arm32", "boot", v, 12.5, "tail", [_rep("BUG: X in f")])
    root = ET.parse(path).getroot()
    case = root.find(".//testcase")
    assert case.get("name") == "boot" and case.get("classname") == "harness.arm32"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "regression: BUG: X in f"
    assert "BUG: X in f" in failure.text


def test_junit_pass_error_and_skip(tmp_path):
    for verdict, tag in (("pass", None), ("timeout", "error"), ("not-applicable", "skipped")):
        path = tmp_path / f"{verdict}.xml"
        results.write_junit(path, "t", "s", Verdict(verdict, 0, "x"), 1.0, "console", [])
        case = ET.parse(path).getroot().find(".//testcase")
        children = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        assert children == ([tag] if tag else [])


def test_summary_mentions_verdict_and_titles():
    meta = {
        "run_id": "r",
        "target": "t",
        "scenario": "s",
        "kernel": {"version": "6.12.117"},
        "results_dir": "/r",
    }
    text = results.summary_text(meta, Verdict("fail", 1, "regression: BUG: X"), [_rep("BUG: X")])
    assert "verdict:  FAIL: regression: BUG: X" in text and "TITLE: BUG: X" in text
