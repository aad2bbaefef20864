"""Named points where the reliability suite kills the harness (tests/reliability/).

`HARNESS_FAULT=POINT[@N]:ACTION` makes the harness, the Nth time (default: first) it
reaches POINT, do ACTION: `kill` (SIGKILL itself: no cleanup runs), `term` (SIGTERM
itself: the normal unwinding, held while a patch is half applied), `pause` (print
`HARNESS-FAULT POINT` on stderr and wait to be killed from outside) or `raise` (a
RuntimeError: a bug of ours). Without the variable a point costs one lookup.
"""

from __future__ import annotations

import os
import signal
import sys
import time

_seen: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("HARNESS_FAULT")
    if not spec:
        return
    where, _, action = spec.rpartition(":")
    where, _, nth = where.partition("@")
    if where != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] != int(nth or 1):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # outside a held section the handler raises here
    elif action == "raise":
        raise RuntimeError(f"fault injected at {name}")
    elif action == "pause":
        sys.stderr.write(f"HARNESS-FAULT {name}\n")
        sys.stderr.flush()
        while True:
            time.sleep(1)
