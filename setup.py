"""Data files for a wheel: targets, fragments, scenarios, kernel specs and known issues.

pyproject.toml holds the metadata; this only lists, by walking the folders, what an
installed harness finds in <prefix>/share/harness (harness.state.ROOT), so a new scenario
needs no packaging change. kernels/ holds caches too: only its *.yaml specs go in.
"""

import os

from setuptools import setup


def tree(top: str, keep=lambda name: True) -> list[tuple[str, list[str]]]:
    out = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        chosen = sorted(os.path.join(folder, f) for f in files if keep(f))
        if chosen:
            out.append((os.path.join("share", "harness", folder), chosen))
    return out


def specs() -> list[tuple[str, list[str]]]:
    files = sorted(os.path.join("kernels", f) for f in os.listdir("kernels") if f.endswith(".yaml"))
    return [(os.path.join("share", "harness", "kernels"), files)]


setup(data_files=[*tree("configs"), *tree("scenarios"), *specs()])
