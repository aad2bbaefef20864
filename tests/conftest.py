"""Shared fixtures: paths, and a fast way to point the harness at temporary folders."""

from __future__ import annotations

import os
import re
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


def pytest_collection_modifyitems(config, items):
    """`corpus` tests rebuild every CI target with a test-only patch: they run only when
    asked for by name (`-m corpus`, `tox -e corpus`), never in a run that just doesn't
    exclude them (a bare `pytest`, `-m "not integration"`)."""
    if re.search(r"\bcorpus\b", config.getoption("markexpr") or ""):
        return
    on_demand = [item for item in items if item.get_closest_marker("corpus")]
    if on_demand:
        config.hook.pytest_deselected(items=on_demand)
        items[:] = [item for item in items if not item.get_closest_marker("corpus")]


@pytest.fixture(autouse=True)
def _private_cache(request, tmp_path_factory, monkeypatch):
    """Unit tests keep their locks, journals and state out of the real cache."""
    if any(request.node.get_closest_marker(m) for m in ("integration", "corpus")):
        return
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
