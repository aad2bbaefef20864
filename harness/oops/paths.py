"""Source paths as a kernel developer writes them: relative to the kernel tree.

An out-of-tree build whose compiler sees relative paths (ccache's base_dir rewrites
`-I/abs/src` and the source file to paths relative to the build directory) prints
`../../../src/debian-6.12/mm/mremap.c:175` in BUG, WARNING and might_sleep lines, and
its DWARF names files the same way; the kernel's own -fmacro-prefix-map only strips
the absolute form. Reports say `mm/mremap.c:175` instead.

A caller that knows the tree (a run: its source tree and build directory) passes the
exact prefixes; otherwise a `../`-relative path is cut at its first component that is a
top-level directory of the kernel tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

# Top-level directories of a Linux tree that hold compiled sources.
TOP_DIRS = (
    "arch block certs crypto drivers fs include init io_uring ipc kernel lib mm net rust "
    "samples scripts security sound usr virt"
).split()

_RELATIVE = re.compile(
    r"(?<![\w/.-])(?:\.\./)+(?:[\w.+@-]+/)*?(?=(?:" + "|".join(TOP_DIRS) + r")/[\w.+@-])"
)


def prefixes_for(tree: Path | str, build_dir: Path | str | None = None) -> list[str]:
    """The spellings of `tree` a build in `build_dir` may print, longest first."""
    tree = Path(tree)
    out = {str(tree) + "/", str(tree.resolve()) + "/"}
    if build_dir is not None:
        for base in {Path(build_dir), Path(build_dir).resolve()}:
            out.add(os.path.relpath(tree.resolve(), base.resolve()) + "/")
            out.add(os.path.relpath(tree, base) + "/")
    return sorted((p for p in out if p not in ("./", "/")), key=len, reverse=True)


def tree_relative(text: str, prefixes: Iterable[str] = ()) -> str:
    """`text` with kernel source paths made relative to the tree."""
    for prefix in prefixes:
        if prefix in text:
            text = re.sub(r"(?<![\w/.-])" + re.escape(prefix), "", text)
    if "../" in text:
        text = _RELATIVE.sub("", text)
    return text


def file_relative(path: str, prefixes: Iterable[str] = ()) -> str:
    """One file name (addr2line's): normalised, then made relative to the tree."""
    if "/../" in path or path.startswith("./"):
        norm = os.path.normpath(path)
        if not norm.startswith(".."):
            path = norm
    return tree_relative(path, prefixes)
