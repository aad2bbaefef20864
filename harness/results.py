"""results/<run-id>/: metadata first (marked incomplete), the rest as stages finish.

A run killed half-way leaves a folder that says so, instead of one that looks complete.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from harness import state
from harness.fsutil import atomic_write_text
from harness.verdict import Kind

results_root = state.results_root


def new_run_dir(target: str, scenario: str, root: Path | None = None) -> tuple[str, Path]:
    """A fresh, sortable run id and its folder."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{target}-{scenario}-{secrets.token_hex(3)}"
    path = (root or results_root()) / run_id
    path.mkdir(parents=True)
    return run_id, path


class Metadata:
    """metadata.json, rewritten atomically as the run proceeds."""

    def __init__(self, path: Path, initial: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {"status": "incomplete", **initial}
        self.save()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def merge(self, section: str, **fields: Any) -> None:
        """Add fields to a section (a dict) of the metadata, keeping what it had."""
        self.data[section] = {**(self.data.get(section) or {}), **fields}
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str) + "\n")


def write_reports(
    path: Path,
    reports: list[Any],
    known: dict[int, str] | None = None,
    tests: list[Any] | None = None,
) -> None:
    """reports.json; a report that is a known issue carries its id ("known_issue"), one
    printed while a kernel test ran carries the test's path ("test")."""
    from harness import ktap

    during = {i: t.path for t in ktap.walk(tests or []) for i in t.reports}
    out = []
    for i, r in enumerate(reports):
        d = r.to_dict()
        if known and i in known:
            d["known_issue"] = known[i]
        if i in during:
            d["test"] = during[i]
        out.append(d)
    atomic_write_text(path, json.dumps(out, indent=2) + "\n")


def write_report_text(path: Path, reports: list[Any], console: str) -> None:
    """report.txt: each report's header and trace, then its raw lines, ready to quote in a mail."""
    from harness.oops.render import render

    parts = []
    for i, rep in enumerate(reports, 1):
        parts.append(render(rep, console, i, len(reports)) + "\n" + rep.text.rstrip() + "\n")
    atomic_write_text(path, "\n".join(parts) if parts else "no crash report in the console\n")


def write_junit(
    path: Path,
    target: str,
    scenario: str,
    verdict: Any,
    seconds: float,
    console_tail: str,
    reports: list[Any],
    tests: list[Any] | None = None,
) -> None:
    """One suite per target, one case per scenario; the report is the failure text.
    The kernel's own tests add a case each (classname: the test's parent path)."""
    case = TestCase(name=scenario, classname=f"harness.{target}", elapsed_sec=seconds)
    text = _xml_safe("\n\n".join(r.text for r in reports) or console_tail)
    if verdict.verdict == Kind.PASS:
        pass
    elif verdict.verdict == Kind.FAIL:
        case.add_failure_info(message=verdict.summary, output=text)
    elif verdict.verdict == Kind.NOT_APPLICABLE:
        case.add_skipped_info(message=verdict.summary)
    else:
        case.add_error_info(message=f"{verdict.verdict}: {verdict.summary}", output=text)
    suite = TestSuite(f"harness.{target}", [case, *_test_cases(tests or [], reports)])
    atomic_write_text(path, to_xml_report_string([suite]))


def _xml_safe(text: str) -> str:
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)


def _test_cases(tests: list[Any], reports: list[Any]) -> list[TestCase]:
    from harness import ktap

    cases = []
    for t in ktap.units(tests):
        parent, _, name = t.path.rpartition(".")
        case = TestCase(name=name, classname=parent)
        out = _xml_safe("\n".join([*t.log, *(reports[i].text for i in t.reports)]))
        if t.status in (ktap.Status.FAIL, ktap.Status.ERROR):
            case.add_failure_info(message=f"{t.status}: {t.reason}".rstrip(": "), output=out)
        elif t.status in (ktap.Status.SKIP, ktap.Status.XFAIL):
            case.add_skipped_info(message=f"{t.status}: {t.reason}".rstrip(": "))
        cases.append(case)
    return cases


def summary_text(meta: dict[str, Any], verdict: Any, reports: list[Any]) -> str:
    """The few lines printed at the end and saved as summary.txt, paste-ready for a reply."""
    k = meta.get("kernel", {})
    lines = [
        f"harness run {meta.get('run_id')}",
        f"  target:   {meta.get('target')}",
        f"  scenario: {meta.get('scenario')}"
        + (f" (variant {meta['variant']})" if meta.get("variant") else ""),
        f"  kernel:   {k.get('description', '')} {k.get('version', '')}".rstrip()
        + (f" @ {k['commit'][:12]}" if k.get("commit") else ""),
    ]
    if meta.get("patches"):
        lines.append("  patches:  " + ", ".join(Path(p["path"]).name for p in meta["patches"]))
    extra = (meta.get("boot") or {}).get("extra_cmdline")
    if extra:
        lines.append(f"  cmdline:  ... {extra}")
    lines.append(f"  verdict:  {verdict.verdict.upper()}: {verdict.summary}")
    lines += [f"            {d}" for d in verdict.details]
    for r in reports:
        lines += ["", f"TITLE: {r.title}", f"TYPE: {r.type}"]
        if getattr(r, "count", 1) > 1:
            lines.append(f"SEEN:  x{r.count} in this console (repeats merged; the first is shown)")
        if r.frames:
            lines.append("Call trace: " + " <- ".join(f.function for f in r.frames[:12]))
    if meta.get("results_dir"):
        lines += ["", f"results: {meta['results_dir']}"]
    return "\n".join(lines) + "\n"
