"""Fixtures for the oops parser tests: where the shared corpus and logs live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))
SYZ_CORPUS = SHARED / "oops-corpus" / "syzkaller"
RESEARCH_LOGS = SHARED / "research" / "logs"
GOLDEN_DIR = REPO / "tests" / "golden" / "oops"


@pytest.fixture
def syz_corpus() -> Path:
    if not SYZ_CORPUS.is_dir():
        pytest.skip(f"syzkaller corpus not found at {SYZ_CORPUS} (set HARNESS_SHARED)")
    return SYZ_CORPUS
