"""Fetch Debian packages with a private apt state, never touching the system's apt setup.

Kernel sources from another suite (linux-source-7.3 from unstable), busybox-static for a
foreign architecture and the Xen hypervisor all come from Debian's archive. A private
sources list and lists directory keep `dpkg --add-architecture` and sid out of the host.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from pathlib import Path

from harness.errors import InfraError
from harness.fsutil import exclusive_lock, make_owned_dir, remove_owned
from harness.proc import Progress

log = logging.getLogger(__name__)

SYSTEM_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
SYSTEM_LIST = Path("/etc/apt/sources.list")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def debian_mirror(
    sources: Path = SYSTEM_SOURCES, legacy: Path = SYSTEM_LIST, *, security: bool = False
) -> str:
    """Return the system's Debian mirror URI, so no host name is hard-coded here.

    With security=True, the security archive's URI (for `*-security` suites such as
    bookworm-security, which only that archive serves).
    """
    if sources.exists():
        block_is_deb = False
        for line in sources.read_text().splitlines():
            line = line.strip()
            if not line:
                block_is_deb = False
            elif line.startswith("Types:"):
                block_is_deb = "deb" in line.split(":", 1)[1].split()
            elif line.startswith("URIs:") and block_is_deb:
                uri = line.split(":", 1)[1].split()[0]
                if uri.rstrip("/").endswith("-security") == security:
                    return uri
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", line)
            if m and ("security" in m.group(1)) == security:
                return m.group(1)
    what = "Debian security mirror" if security else "Debian mirror"
    raise InfraError(f"no {what} found in {sources} or {legacy}")


def _apt_opts(state: Path, arch: str) -> list[str]:
    return [
        "-o",
        f"Dir::Etc::SourceList={state / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={state / 'lists'}",
        "-o",
        f"Dir::Cache={state / 'cache'}",
        "-o",
        f"APT::Architecture={arch}",
        "-o",
        f"APT::Architectures={arch}",
        "-o",
        "Debug::NoLocking=1",
        "-q",
    ]


def download_deb(package: str, *, suites: list[str], arch: str, cache: Path) -> Path:
    """Download one .deb (no dependencies) into cache and return its path.

    Suites are tried in order (a package moves between sid, experimental and backports);
    the private apt state lives under cache/apt-<suite>-<arch>. An existing .deb is reused
    so a machine that fetched it once keeps working offline.
    """
    cache = cache.resolve()
    # apt's own state locks make a second concurrent fetch fail, and a .deb being
    # written would look downloaded: one fetch per folder at a time, checked under it
    with exclusive_lock(cache / ".harness-fetch.lock", f"fetches into {cache}"):
        return _download_deb(package, suites=suites, arch=arch, cache=cache)


def _download_deb(package: str, *, suites: list[str], arch: str, cache: Path) -> Path:
    pkg_name = package.split(":")[0]
    existing = sorted(cache.glob(f"{pkg_name}_*_{arch}.deb")) + sorted(
        cache.glob(f"{pkg_name}_*_all.deb")
    )
    if existing:
        return existing[-1]
    missing = []
    for suite in suites:
        mirror = debian_mirror(security=suite.endswith("-security"))
        state = cache / f"apt-{suite}-{arch}"
        (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "sources.list").write_text(f"deb [signed-by={KEYRING}] {mirror} {suite} main\n")
        opts = _apt_opts(state, arch)
        progress = Progress(f"fetch {pkg_name}")
        progress.update(f"apt-get update ({suite}, {arch})", force=True)
        _run(["apt-get", *opts, "update"], what=f"apt-get update for {suite}/{arch}")
        try:
            progress.update(f"apt-get download {package} from {suite}", force=True)
            _run(
                ["apt-get", *opts, "download", package],
                what=f"apt-get download {package}",
                cwd=cache,
            )
        except InfraError as e:
            if "Unable to locate package" in str(e) or "Couldn't find any package" in str(e):
                missing.append(suite)
                continue
            raise
        # only this arch's (or an arch: all) file: other arches' debs share the folder
        got = sorted(cache.glob(f"{pkg_name}_*_{arch}.deb")) + sorted(
            cache.glob(f"{pkg_name}_*_all.deb")
        )
        if got:
            progress.done(f"{got[-1].name} from {suite} ({got[-1].stat().st_size >> 20} MiB)")
            return got[-1]
    raise InfraError(
        f"Debian package {package} ({arch}) is in none of the suites {', '.join(missing)} "
        f"at {debian_mirror()}"
    )


STAMP = ".harness-extracted"


def extract_deb(deb: Path, dest: Path) -> Path:
    """Unpack a .deb's data into dest (once; a stamp records which .deb it came from)."""
    stamp = dest / STAMP
    digest = hashlib.sha256(deb.name.encode()).hexdigest()[:16]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dest.with_name(f".{dest.name}.lock"), f"extracts into {dest}"):
        if stamp.exists() and stamp.read_text().strip() == digest:
            return dest
        remove_owned(dest, dest.parent, legacy_mark=STAMP)
        make_owned_dir(dest)
        _run(["dpkg-deb", "-x", str(deb), str(dest)], what=f"dpkg-deb -x {deb.name}")
        stamp.write_text(digest + "\n")
    return dest


def _run(cmd: list[str], *, what: str, cwd: Path | None = None) -> None:
    log.debug("running %s", cmd)
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise InfraError(f"{what}: {e.filename} not found (is this a Debian machine?)") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise InfraError(f"{what} failed (exit {proc.returncode}):\n{tail}")
