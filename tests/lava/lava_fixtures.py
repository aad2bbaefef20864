"""Fixtures for the LAVA unit tests: recorded logs, a board target, a lava_common check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.lava import validate

DATA = Path(__file__).resolve().parent / "data"
CLEAN_LOG = DATA / "arm32-highmem-ci-boot.lava.log"  # lava-run stderr, nonce 185739
CANARY_LOG = DATA / "arm32-highmem-ci-pte-lockptr.lava.log"  # lava-run stderr, nonce f9b0f0
SERVER_LOG = DATA / "rest" / "job-2-logs.yaml"  # lava-server's copy of a canary job, 2cc1f5
TITLE_612 = "BUG: unable to handle kernel NULL pointer dereference in __pte_offset_map_lock"


def lava_common_available() -> bool:
    try:
        return (
            subprocess.run(
                [validate.system_python(), "-c", "import lava_common.schemas"],
                capture_output=True,
            ).returncode
            == 0
        )
    except OSError:
        return False


needs_lava_common = pytest.mark.skipif(
    not lava_common_available(), reason="lava_common missing: apt-get install lava-dispatcher"
)
