"""Known issues: bugs already in the kernel under test, kept in sight but not counted.

A bug the kernel has had for releases is not a regression of tonight's change, yet
hiding it would lose it. A known issue is data (configs/known-issues.yaml in every search
root, plus any file in $HARNESS_KNOWN_ISSUES): which reports it covers (title, and a
regex on the report's text), on which kernels, targets and scenarios, and a link. A run
whose only reports are known issues passes and names them; the nightly shows them as
"known issue", and as "fixed?" the night one stops reproducing where it used to.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import Reader, load_yaml, search_dirs, version_in_range
from harness.errors import ConfigError
from harness.fsutil import check_name

FILE = "known-issues.yaml"


@dataclass(frozen=True)
class KnownIssue:
    id: str
    path: Path
    title: str = ""
    title_regex: str = ""
    text_regex: str = ""  # must also appear in the report's own lines
    kernels: str = ""  # a version range ("" = any)
    targets: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()
    link: str = ""
    note: str = ""

    def matches(
        self, report: Any, *, target: str, scenario: str, version: tuple[int, int, int]
    ) -> bool:
        if self.targets and target not in self.targets:
            return False
        if self.scenarios and scenario not in self.scenarios:
            return False
        if self.kernels and not version_in_range(version, self.kernels):
            return False
        if self.title and report.title != self.title:
            return False
        if self.title_regex and not re.search(self.title_regex, report.title):
            return False
        return not self.text_regex or bool(re.search(self.text_regex, report.text, re.M))

    def describe(self) -> str:
        return f"{self.id}" + (f" ({self.link})" if self.link else "")


def files() -> list[Path]:
    """Every known-issues file: configs/known-issues.yaml per search root, then the env's."""
    found = [d / FILE for d in search_dirs("configs") if (d / FILE).exists()]
    extra = os.environ.get("HARNESS_KNOWN_ISSUES", "")
    found += [Path(p).expanduser() for p in extra.split(os.pathsep) if p]
    return found


def load(paths: list[Path] | None = None) -> list[KnownIssue]:
    """All known issues; an id defined twice is an error naming both files."""
    out: dict[str, KnownIssue] = {}
    for path in files() if paths is None else paths:
        data = load_yaml(path) or {}
        r = Reader(data, path)
        for i, raw in enumerate(r.get("issues", list, [])):
            e = Reader(raw, path, f"issues[{i}].")
            issue = KnownIssue(
                id=check_name(f"{path}: issues[{i}].id", e.get("id", str, required=True)),
                path=path,
                title=e.get("title", str, ""),
                title_regex=e.get("title_regex", str, ""),
                text_regex=e.get("text_regex", str, ""),
                kernels=e.get("kernels", str, ""),
                targets=tuple(e.str_list("targets")),
                scenarios=tuple(e.str_list("scenarios")),
                link=e.get("link", str, ""),
                note=e.get("note", str, ""),
            )
            e.finish()
            if not (issue.title or issue.title_regex):
                raise ConfigError(f"{path}: issues[{i}]: needs title or title_regex")
            for key in ("title_regex", "text_regex"):
                try:
                    re.compile(getattr(issue, key))
                except re.error as err:
                    raise ConfigError(f"{path}: issues[{i}].{key}: {err}") from err
            if issue.kernels:
                version_in_range((0, 0, 0), issue.kernels)
            if issue.id in out:
                raise ConfigError(
                    f"{path}: issues[{i}].id: {issue.id} is also defined in {out[issue.id].path}"
                )
            out[issue.id] = issue
        r.finish()
    return list(out.values())


def split(
    reports: list[Any],
    issues: list[KnownIssue],
    *,
    target: str,
    scenario: str,
    version: tuple[int, int, int],
) -> dict[int, KnownIssue]:
    """Which reports (by index) are known issues, and which issue each is."""
    out = {}
    for i, rep in enumerate(reports):
        for issue in issues:
            if issue.matches(rep, target=target, scenario=scenario, version=version):
                out[i] = issue
                break
    return out
