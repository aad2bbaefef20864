"""Fixtures for the oops parser tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from oops_golden import SYZ_CORPUS


@pytest.fixture
def syz_corpus() -> Path:
    if not SYZ_CORPUS.is_dir():
        pytest.skip(f"syzkaller corpus not found at {SYZ_CORPUS} (set HARNESS_SHARED)")
    return SYZ_CORPUS
