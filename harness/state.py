"""Where the harness keeps what is its own: caches, locks and patch journals.

Nothing of this goes into a kernel tree or next to it: a user's tree (a bisection runs in
it) must not collect lock files, and a journal inside a tree can be lost with the tree's
own changes.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """Where sources, builds and downloads live (gitignored kernels/ unless overridden)."""
    return Path(os.environ.get("HARNESS_CACHE", ROOT / "kernels")).resolve()


def tree_state_dir(tree: Path, cache: Path | None = None) -> Path:
    """The harness's own folder for one kernel tree: its lock, journal and saved files."""
    real = str(Path(tree).expanduser().resolve())
    key = hashlib.sha256(real.encode()).hexdigest()[:16]
    label = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(real).name)[:40] or "tree"
    path = (cache or cache_root()) / "state" / "trees" / f"{label}-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path
