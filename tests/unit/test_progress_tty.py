"""The progress line on a real terminal (a pty) stays one line at 80 and 200 columns."""

import re
import sys

import pexpect
import pytest

SNIPPET = """
import time
from harness.proc import Progress, eta
p = Progress("build")
for i in range(1, 6):
    p.update(f"{i * 300} steps ({eta(i, 6, i)})  CC " + "drivers/very/long/path/" * 12, force=True)
p.done("1800 steps in 6s (cold)")
"""


@pytest.mark.parametrize("cols", [80, 200])
def test_progress_fits_the_terminal(cols):
    child = pexpect.spawn(
        sys.executable, ["-c", SNIPPET], dimensions=(24, cols), encoding="utf-8", timeout=30
    )
    child.expect(pexpect.EOF)
    out = child.before
    updates, final = out.rsplit("\r\x1b[K", 1)
    assert final.strip() == "[build] 1800 steps in 6s (cold)"
    assert "\n" not in updates  # every update rewrote the same line
    shown = [seg.replace("\x1b[K", "") for seg in updates.split("\r") if seg]
    assert len(shown) == 5
    assert all(len(seg) <= cols - 1 for seg in shown), [len(s) for s in shown]
    assert re.search(r"\d+%, ~\d+s left", shown[2])
