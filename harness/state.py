"""Where the harness keeps what is its own: caches, locks and patch journals.

Nothing of this goes into a kernel tree or next to it: a user's tree (a bisection runs in
it) must not collect lock files, and a journal inside a tree can be lost with the tree's
own changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
# a source checkout has configs/ beside the package; an installed wheel has them in
# <prefix>/share/harness (setup.py's data_files)
INSTALLED = (CHECKOUT / "configs").is_dir() is False
ROOT = Path(sys.prefix) / "share" / "harness" if INSTALLED else CHECKOUT


def cache_root() -> Path:
    """Where sources, builds and downloads live: $HARNESS_CACHE, else kernels/ of the
    checkout (gitignored), else ~/.cache/harness for an installed harness."""
    default = Path.home() / ".cache" / "harness" if INSTALLED else CHECKOUT / "kernels"
    return Path(os.environ.get("HARNESS_CACHE", default)).resolve()


def results_root() -> Path:
    """Where results go: $HARNESS_RESULTS, else results/ of the checkout, else ./results."""
    default = Path.cwd() / "results" if INSTALLED else CHECKOUT / "results"
    return Path(os.environ.get("HARNESS_RESULTS", default)).resolve()


def tree_state_dir(tree: Path, cache: Path | None = None) -> Path:
    """The harness's own folder for one kernel tree: its lock, journal and saved files."""
    real = str(Path(tree).expanduser().resolve())
    key = hashlib.sha256(real.encode()).hexdigest()[:16]
    label = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(real).name)[:40] or "tree"
    path = (cache or cache_root()) / "state" / "trees" / f"{label}-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path
