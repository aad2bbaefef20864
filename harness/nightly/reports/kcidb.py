"""kcidb.json: the nightly in KCIDB v5 I/O format, validated with kcidb-io before writing.

One checkout (tonight's commit), one build and one test per run (retries are runs of their
own), one issue per distinct regression title and an incident linking each failing run to
its issue. A canary is a test of the harness: caught is PASS, missed is ERROR (the test
did not work, the kernel's state is unknown), its bug already in the tree is SKIP.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kcidb_io

from harness.config import Target, load_target
from harness.errors import InfraError
from harness.fsutil import atomic_write_text
from harness.nightly.model import (
    FLAKY,
    IN_TREE,
    KNOWN,
    NEW,
    STALE,
    Attempt,
    Classified,
    Nightly,
)
from harness.nightly.reports import clean, page_name, url
from harness.verdict import Kind

TEST_STATUS = {
    "pass": "PASS",
    "fail": "FAIL",
    "timeout": "ERROR",
    "infra-error": "MISS",
    "config-error": "MISS",
    "patch-error": "MISS",
    "stale": "SKIP",
    "internal-error": "MISS",
    "not-applicable": "SKIP",
    "canary-missed": "ERROR",
}


def schema() -> Any:
    """The newest KCIDB schema of major version 5 that kcidb-io knows."""
    v = kcidb_io.schema.LATEST
    while v.major > 5:
        v = v.previous
    if v.major != 5:  # pragma: no cover - kcidb-io without v5
        raise InfraError(f"kcidb-io has no v5 schema (newest: {kcidb_io.schema.LATEST})")
    return v


def _build_status(a: Attempt) -> str:
    if a.verdict == Kind.BUILD_ERROR:
        return "FAIL"
    if a.verdict in (Kind.PASS, Kind.FAIL, Kind.CANARY_MISSED, Kind.TIMEOUT) or a.build_seconds:
        return "PASS"
    skip = (Kind.NOT_APPLICABLE, Kind.CONFIG_ERROR, Kind.PATCH_ERROR, Kind.STALE)
    return "SKIP" if a.verdict in skip else "MISS"


def _test_status(c: Classified, a: Attempt) -> str:
    if c.cell.canary:
        if a.verdict == Kind.FAIL and (a.canary or {}).get("caught"):
            return "PASS"
        if c.status in (IN_TREE, STALE):
            return "SKIP"
        return "ERROR" if a.verdict != Kind.NOT_APPLICABLE else "SKIP"
    if c.status == STALE:
        return "SKIP"
    return TEST_STATUS.get(a.verdict, "ERROR")


KERNEL_TEST_STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP",
                      "xfail": "FAIL"}  # fmt: skip


def _kernel_tests(c: Classified, a: Attempt, cell_test: dict[str, Any], rid: str) -> list[Any]:
    """One KCIDB test per kernel test the run reported (kselftest.mm.*, kunit.*): their
    paths are KCIDB paths already. A known failure is a FAIL that says so in misc."""
    tonight = {t.path: t for t in c.tests}
    out = []
    for u in a.tests:
        t: dict[str, Any] = {
            "id": f"{cell_test['id']}:{u['path']}",
            "build_id": cell_test["build_id"],
            "origin": cell_test["origin"],
            "path": u["path"],
            "status": KERNEL_TEST_STATUS.get(u["status"], "ERROR"),
            "environment": cell_test["environment"],
            "misc": {"run": rid, "scenario": c.cell.scenario},
        }
        if u.get("reason"):
            t["comment"] = clean(u["reason"])[:1000]
        if u["status"] == "xfail":
            t["misc"]["known_failure"] = True
        if u["path"] in tonight:
            t["misc"]["nightly_status"] = tonight[u["path"]].status
        for key in ("start_time", "log_url"):
            if key in cell_test:
                t[key] = cell_test[key]
        out.append(t)
    return out


def _issue_id(origin: str, title: str) -> str:
    return f"{origin}:{hashlib.sha1(title.encode()).hexdigest()[:16]}"


def build(
    nightly: Nightly,
    cells: list[Classified],
    origin: str = "harness",
    base_url: str = "",
    targets: Callable[[str], Target] = load_target,
) -> dict[str, Any]:
    """The KCIDB document for one nightly (not yet validated)."""
    v = schema()
    checkout_id = f"{origin}:{nightly.name}"
    checkout: dict[str, Any] = {
        "id": checkout_id,
        "origin": origin,
        "tree_name": nightly.tree_name,
        "git_commit_hash": nightly.commit,
        "git_commit_name": nightly.describe or nightly.ref,
        "git_commit_tags": nightly.tags,
        "start_time": nightly.started.isoformat(),
        "valid": True,
        "comment": clean(f"{nightly.ref}: {nightly.subject}"),
        "misc": {"tree": str(nightly.tree), "kernel_version": nightly.version},
    }
    if nightly.remote_url.startswith("https://"):
        checkout["git_repository_url"] = nightly.remote_url
    builds: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    issues: dict[str, dict[str, Any]] = {}
    incidents: list[dict[str, Any]] = []
    for c in cells:
        try:
            t = targets(c.cell.target)
            arch, compiler = t.arch, f"{t.cross_compile}gcc"
        except Exception:  # noqa: BLE001 - a target gone since the run: leave the fields out
            arch, compiler = "", ""
        for i, a in enumerate(c.attempts):
            rid = a.run_id or f"{nightly.name}-{c.cell.slug}-{i + 1}"
            build_id = f"{origin}:{rid}:build"
            b: dict[str, Any] = {
                "id": build_id,
                "checkout_id": checkout_id,
                "origin": origin,
                "config_name": c.cell.target,
                "status": _build_status(a),
                "duration": float(a.build_seconds),
                "misc": {"target": c.cell.target, "scenario": c.cell.scenario},
            }
            if arch:
                b["architecture"], b["compiler"] = arch, compiler
            if a.started:
                b["start_time"] = a.started
            if a.results_dir and (a.results_dir / "build.log").exists():
                b["log_url"] = url(nightly, a.results_dir / "build.log", base_url)
            builds.append(b)
            if a.verdict == Kind.BUILD_ERROR:
                continue
            path = (
                f"harness.canary.{c.cell.scenario}"
                if c.cell.canary
                else (f"harness.{c.cell.scenario}")
            )
            test: dict[str, Any] = {
                "id": f"{origin}:{rid}",
                "build_id": build_id,
                "origin": origin,
                "path": path,
                "status": _test_status(c, a),
                "comment": clean(a.title or a.summary)[:1000],
                "duration": float(a.boot_seconds),
                "environment": {"comment": f"QEMU, harness target {c.cell.target}"},
                "misc": {
                    "nightly_status": c.status,
                    "reason": clean(c.reason),
                    "verdict": a.verdict,
                    "attempt": i + 1,
                    "attempts": len(c.attempts),
                },
            }
            if a.started:
                test["start_time"] = a.started
            if a.results_dir and (a.results_dir / "console.log").exists():
                test["log_url"] = url(nightly, a.results_dir / "console.log", base_url)
            excerpt = "\n\n".join(r.get("text", "") for r in a.reports) or a.summary
            test["log_excerpt"] = clean(excerpt)[-16000:]
            tests.append(test)
            tests += _kernel_tests(c, a, test, rid)
            if c.cell.canary or a.verdict != Kind.FAIL or c.status not in (NEW, KNOWN, FLAKY):
                continue
            title = a.title
            iid = _issue_id(origin, title)
            issues.setdefault(
                iid,
                {
                    "id": iid,
                    "version": 1,
                    "origin": origin,
                    "report_subject": clean(title),
                    "report_url": url(nightly, nightly.folder / page_name(c), base_url),
                    "culprit": {"code": True, "tool": False, "harness": False},
                    "comment": clean(f"{c.status} on {nightly.ref}: {c.cell.key}"),
                    "misc": {"first_seen": c.since or nightly.ref},
                },
            )
            incidents.append(
                {
                    "id": f"{origin}:{rid}:incident",
                    "origin": origin,
                    "issue_id": iid,
                    "issue_version": 1,
                    "build_id": build_id,
                    "test_id": test["id"],
                    "present": True,
                }
            )
    return {
        "version": {"major": v.major, "minor": v.minor},
        "checkouts": [checkout],
        "builds": builds,
        "tests": tests,
        "issues": list(issues.values()),
        "incidents": incidents,
    }


def validate(data: dict[str, Any]) -> None:
    """Raise InfraError naming the first schema violation (a harness bug, never the kernel's)."""
    import jsonschema

    try:
        schema().validate(data)
    except jsonschema.exceptions.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise InfraError(f"KCIDB output does not validate at {where or '/'}: {e.message}") from e


def write(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write; an invalid document goes to kcidb.invalid.json for debugging."""
    try:
        validate(data)
    except InfraError:
        atomic_write_text(path.with_name("kcidb.invalid.json"), json.dumps(data, indent=1) + "\n")
        raise
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
