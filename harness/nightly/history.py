"""Nightly history: a small sqlite database under results/ (results/nightly.sqlite).

One row per nightly and one per cell (verdict, status, report titles), so tonight can be
compared with the previous night, `--bisect-new` can find the last night a cell passed,
and the HTML can draw a trend. Nightlies that did not finish are kept but never compared
against.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from harness.nightly.kerneltests import PreviousTest
from harness.nightly.model import (
    FIXED,
    HARNESS,
    KNOWN_GONE,
    KNOWN_ISSUE,
    PASS,
    SKIPPED,
    STALE,
    Bisection,
    Classified,
    Previous,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS nightly (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tree TEXT NOT NULL,
    ref TEXT NOT NULL,
    commit_hash TEXT NOT NULL,
    folder TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    exit_code INTEGER,
    complete INTEGER NOT NULL DEFAULT 0,
    tag_date TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    mail_references TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS result (
    nightly_id INTEGER NOT NULL REFERENCES nightly(id),
    target TEXT NOT NULL,
    scenario TEXT NOT NULL,
    canary INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    titles TEXT NOT NULL,
    reason TEXT NOT NULL,
    since TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    results_dir TEXT NOT NULL,
    PRIMARY KEY (nightly_id, target, scenario)
);
CREATE TABLE IF NOT EXISTS test_result (
    nightly_id INTEGER NOT NULL REFERENCES nightly(id),
    target TEXT NOT NULL,
    scenario TEXT NOT NULL,
    path TEXT NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (nightly_id, target, scenario, path)
);
CREATE TABLE IF NOT EXISTS bisection (
    nightly_id INTEGER NOT NULL REFERENCES nightly(id),
    target TEXT NOT NULL,
    scenario TEXT NOT NULL,
    good TEXT NOT NULL,
    bad TEXT NOT NULL,
    culprit TEXT,
    exit_code INTEGER,
    summary TEXT NOT NULL,
    folder TEXT
);
"""

# Statuses that say nothing about the kernel, skipped when looking for "the night before"
UNINFORMATIVE = (HARNESS, SKIPPED, STALE)
PASSED = (PASS, FIXED, KNOWN_ISSUE, KNOWN_GONE)  # the kernel passed (known issues aside)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class History:
    """The database; every method commits, so a killed nightly loses only itself."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        cols = {r["name"] for r in self.db.execute("PRAGMA table_info(nightly)")}
        # a database from before history was ordered by tag date, or before mail was sent
        for col in ("tag_date", "message_id", "mail_references"):
            if col not in cols:
                self.db.execute(f"ALTER TABLE nightly ADD COLUMN {col} TEXT NOT NULL DEFAULT ''")
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def begin(self, tree: Path, ref: str, commit: str, folder: Path, tag_date: str = "") -> int:
        cur = self.db.execute(
            "INSERT INTO nightly (tree, ref, commit_hash, folder, started, tag_date) "
            "VALUES (?,?,?,?,?,?)",
            (str(tree), ref, commit, str(folder), _now(), tag_date),
        )
        self.db.commit()
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record(self, nightly_id: int, cells: list[Classified]) -> None:
        rows = []
        for c in cells:
            a = c.final
            rows.append(
                (
                    nightly_id,
                    c.cell.target,
                    c.cell.scenario,
                    int(c.cell.canary),
                    a.verdict if a else "",
                    c.status,
                    c.title,
                    json.dumps(c.titles),
                    c.reason,
                    c.since,
                    len(c.attempts),
                    str(a.results_dir or "") if a else "",
                )
            )
        self.db.executemany("INSERT OR REPLACE INTO result VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        tests = [
            (nightly_id, c.cell.target, c.cell.scenario, t.path, t.result, t.status, t.reason,
             t.since)
            for c in cells
            for t in c.tests
        ]  # fmt: skip
        self.db.executemany("INSERT OR REPLACE INTO test_result VALUES (?,?,?,?,?,?,?,?)", tests)
        self.db.commit()

    def previous_tests(
        self, tree: Path, target: str, scenario: str, before: int
    ) -> dict[str, PreviousTest]:
        """Each kernel test of the cell in the latest finished nightly that ran them."""
        earlier, args = self._earlier(before)
        row = self.db.execute(
            "SELECT n.id, n.ref FROM test_result t JOIN nightly n ON n.id = t.nightly_id "
            f"WHERE n.tree = ? AND n.complete = 1 AND {earlier} AND t.target = ? "
            "AND t.scenario = ? ORDER BY n.tag_date DESC, n.id DESC LIMIT 1",
            (str(tree), *args, target, scenario),
        ).fetchone()
        if row is None:
            return {}
        rows = self.db.execute(
            "SELECT path, status, since FROM test_result WHERE nightly_id = ? AND target = ? "
            "AND scenario = ?",
            (row["id"], target, scenario),
        ).fetchall()
        return {r["path"]: PreviousTest(r["status"], r["since"], row["ref"]) for r in rows}

    def finish(self, nightly_id: int, exit_code: int) -> None:
        self.db.execute(
            "UPDATE nightly SET finished = ?, exit_code = ?, complete = 1 WHERE id = ?",
            (_now(), exit_code, nightly_id),
        )
        self.db.commit()

    def sent_mail(self, nightly_id: int, message_id: str, references: list[str]) -> None:
        self.db.execute(
            "UPDATE nightly SET message_id=?, mail_references=? WHERE id=?",
            (message_id, " ".join(references), nightly_id),
        )
        self.db.commit()

    def last_mail(self, tree: Path, before: int) -> tuple[str, list[str]] | None:
        """The Message-ID of the tree's last mail sent before this nightly, and its References."""
        row = self.db.execute(
            "SELECT message_id, mail_references FROM nightly "
            "WHERE tree=? AND id<? AND message_id!='' ORDER BY id DESC LIMIT 1",
            (str(tree), before),
        ).fetchone()
        if row is None:
            return None
        return row["message_id"], row["mail_references"].split()

    def add_bisection(self, nightly_id: int, cell: Classified, b: Bisection) -> None:
        self.db.execute(
            "INSERT INTO bisection VALUES (?,?,?,?,?,?,?,?,?)",
            (
                nightly_id,
                cell.cell.target,
                cell.cell.scenario,
                b.good,
                b.bad,
                b.culprit,
                b.exit_code,
                b.summary,
                str(b.folder or ""),
            ),
        )
        self.db.commit()

    def _earlier(self, before: int) -> tuple[str, tuple]:
        """SQL for "a nightly before nightly `before`": an earlier tag date, or the same
        date run earlier (rows from before tag dates have none and count as oldest)."""
        row = self.db.execute("SELECT tag_date FROM nightly WHERE id = ?", (before,)).fetchone()
        day = row["tag_date"] if row else ""
        return "(n.tag_date < ? OR (n.tag_date = ? AND n.id < ?))", (day, day, before)

    def previous(self, tree: Path, target: str, scenario: str, before: int) -> Previous | None:
        """The cell's latest informative result in a finished nightly of the same tree."""
        earlier, args = self._earlier(before)
        row = self.db.execute(
            "SELECT n.id, n.ref, n.commit_hash, r.status, r.title, r.titles, r.since "
            "FROM result r JOIN nightly n ON n.id = r.nightly_id "
            f"WHERE n.tree = ? AND n.complete = 1 AND {earlier} AND r.target = ? "
            "AND r.scenario = ? AND r.status NOT IN (?, ?, ?) "
            "ORDER BY n.tag_date DESC, n.id DESC LIMIT 1",
            (str(tree), *args, target, scenario, *UNINFORMATIVE),
        ).fetchone()
        if row is None:
            return None
        return Previous(
            row["id"],
            row["ref"],
            row["commit_hash"],
            row["status"],
            row["title"],
            json.loads(row["titles"]),
            row["since"],
        )

    def passes(self, tree: Path, target: str, scenario: str, before: int) -> list[tuple[str, str]]:
        """(ref, commit) of finished nightlies where the cell passed, newest first."""
        earlier, args = self._earlier(before)
        rows = self.db.execute(
            "SELECT n.ref, n.commit_hash FROM result r JOIN nightly n ON n.id = r.nightly_id "
            f"WHERE n.tree = ? AND n.complete = 1 AND {earlier} AND r.target = ? "
            "AND r.scenario = ? AND r.status IN (?, ?, ?, ?) "
            "ORDER BY n.tag_date DESC, n.id DESC",
            (str(tree), *args, target, scenario, *PASSED),
        ).fetchall()
        return [(r["ref"], r["commit_hash"]) for r in rows]

    def trend(self, tree: Path, limit: int = 30, include: int = 0) -> list[dict[str, Any]]:
        """The last finished nightlies of the tree (and `include`, tonight's), oldest first,
        each with its cells."""
        nights = self.db.execute(
            "SELECT * FROM nightly WHERE tree = ? AND (complete = 1 OR id = ?) "
            "ORDER BY tag_date DESC, id DESC LIMIT ?",
            (str(tree), include, limit),
        ).fetchall()
        out = []
        for n in reversed(nights):
            cells = self.db.execute(
                "SELECT target, scenario, canary, status, title FROM result WHERE nightly_id = ?",
                (n["id"],),
            ).fetchall()
            out.append(
                {**dict(n), "cells": {f"{c['target']}/{c['scenario']}": dict(c) for c in cells}}
            )
        return out
