"""`pip install` of a built wheel (not editable) gives a working tool, from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_wheel_install_works_from_anywhere(tmp_path):
    # a clean environment: nothing of this checkout may leak in through PYTHONPATH
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    src = tmp_path / "src"  # build from a copy: a wheel build leaves egg-info behind
    skip = {".git", ".venv", ".tox", "results", "build", "__pycache__", ".pytest_cache"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        caches = Path(folder) == REPO / "kernels"  # the specs, not the kernels
        return [n for n in names if n in skip or n.endswith(".egg-info")
                or (caches and not n.endswith(".yaml"))]  # fmt: skip

    shutil.copytree(REPO, src, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
        check=True, timeout=600, env=clean,
    )  # fmt: skip
    (wheel,) = wheels.glob("harness-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean)
    subprocess.run([venv / "bin" / "pip", "install", "-q", str(wheel)], check=True, timeout=900,
                   env=clean)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    harness = str(venv / "bin" / "harness")
    listing = subprocess.run([harness, "list"], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert "arm32-highmem-ci" in listing.stdout and "pte-lockptr-highpte" in listing.stdout
    assert "debian-6.12" in listing.stdout and "BROKEN" not in listing.stdout
    log = REPO / "tests" / "golden" / "oops" / "arm32-tinyconfig-6.12.117-pte-lockptr-injected.txt"
    console = elsewhere / "console.log"
    console.write_text(log.read_text().split("\n\n", 1)[1])  # the golden's console part
    parsed = subprocess.run([harness, "parse", "console.log"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert parsed.returncode == 1, parsed.stderr  # reports found
    assert "TITLE: BUG: unable to handle kernel NULL pointer dereference" in parsed.stdout
    version = subprocess.run([harness, "--version"], env=env, capture_output=True, text=True)
    assert version.stdout.startswith("harness ")
    # nothing was written next to the installed package or in the folder it ran from
    assert sorted(p.name for p in elsewhere.iterdir()) == ["console.log"]
