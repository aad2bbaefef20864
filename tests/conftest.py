"""Shared fixtures: paths, and a fast way to point the harness at temporary folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# tests/fakes holds helpers every test may import: a fake kernel tree, a fake QEMU, git
sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared/ not found at {SHARED} (set HARNESS_SHARED)")
    return SHARED


@pytest.fixture(autouse=True)
def _private_cache(request, tmp_path_factory, monkeypatch):
    """Unit tests keep their locks, journals and state out of the real cache."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
