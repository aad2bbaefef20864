"""The reliability suite: the real harness, real git, make and cross compiler, killed.

Each test kills `harness run` at a chosen phase (SIGTERM and SIGKILL), then runs it again
and checks what a user would: the kernel tree byte-identical to the tarball it came
from, no process left behind, the killed run's results marked incomplete, and the next
verdict right (reltools.py has the small tree and its fake boot). The table of kills is
printed at the end of the session (and written to $HARNESS_RELIABILITY_TABLE as JSON).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest
from reltools import TABLE, Small, make_small


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> Small:
    return make_small(tmp_path_factory)


def pytest_terminal_summary(terminalreporter):
    if not TABLE:
        return
    w = terminalreporter.write_line
    w("")
    w("reliability: kills at each phase, then the next run")
    w(
        f"{'tree':8} {'phase':28} {'signal':7} {'kills':>5} {'pristine':>8} "
        f"{'incomplete':>10} {'leftover':>8} {'wrong':>5}"
    )
    total = defaultdict(int)
    for (kind, phase, sig), c in sorted(TABLE.items()):
        w(
            f"{kind:8} {phase:28} {sig:7} {c['kills']:5d} {c['pristine']:8d} "
            f"{c['incomplete']:10d} {c['leftover']:8d} {c['wrong']:5d}"
        )
        for k, v in c.items():
            total[k] += v
    w(
        f"{'all':8} {'':28} {'':7} {total['kills']:5d} {total['pristine']:8d} "
        f"{total['incomplete']:10d} {total['leftover']:8d} {total['wrong']:5d}"
    )
    out = os.environ.get("HARNESS_RELIABILITY_TABLE")
    if out:
        rows = [{"tree": k, "phase": p, "signal": s, **c} for (k, p, s), c in TABLE.items()]
        Path(out).write_text(json.dumps(rows, indent=1) + "\n")
