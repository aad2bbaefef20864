"""Fixtures of the nightly's unit tests (the fakes themselves are in nightly_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nightly_fakes import make_fake_linux


@pytest.fixture
def fake_linux(tmp_path) -> Path:
    return make_fake_linux(tmp_path / "linux-next")
