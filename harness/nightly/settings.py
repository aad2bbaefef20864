"""Nightly settings: the linux-next remote, the default matrix, retries, where reports live.

The defaults are below; a lab overrides them with `--config FILE` (YAML, keys documented in
docs/nightly.md), and the command line overrides both.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import Reader, list_scenarios, list_targets, load_yaml
from harness.delivery import (
    KcidbSettings,
    MailSettings,
    kcidb_settings,
    mail_settings,
    required_secret,
)
from harness.errors import ConfigError
from harness.lava.store import parse_bind
from harness.machine import RemoteOptions

LAVA_TOKEN_ENV = "HARNESS_LAVA_TOKEN"


@dataclass(frozen=True)
class HostEntry:
    """A `hosts:` item: these targets boot on that machine over SSH (all, without targets)."""

    remote: RemoteOptions
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class LavaLab:
    """A LAVA lab the nightly fans its cells out to (`lava:`, or `--lava URL`)."""

    server: str
    token_file: Path | None = None  # else $HARNESS_LAVA_TOKEN
    targets: tuple[str, ...] = ()  # empty: every target a LAVA job can describe
    poll: float = 10.0
    artifacts_url: str = ""  # where workers fetch artifacts (served or uploaded)
    serve: tuple[str, int] | None = None  # the nightly serves them on HOST:PORT
    upload: str = ""  # or this command puts each run's artifacts/ in the lab's store

    def token(self) -> str:
        return required_secret(
            self.token_file,
            LAVA_TOKEN_ENV,
            "lava.token_file",
            f"--lava {self.server}: submitting needs a LAVA API token",
        )


@dataclass
class Settings:
    remote_name: str = "linux-next"
    remote_url: str = "https://git.kernel.org/pub/scm/linux/kernel/git/next/linux-next.git"
    tree_name: str = "next"
    ref_pattern: str = r"^next-(\d{8})$"
    targets: list[str] = field(default_factory=list)  # empty: every configured target
    scenarios: list[str] = field(default_factory=list)  # empty: every scenario
    retries: int = 1
    origin: str = "harness"  # KCIDB origin
    artifacts_url: str = ""  # where the nightly folder is published; else file:// links
    trend_length: int = 30
    hosts: list[HostEntry] = field(default_factory=list)
    mail: MailSettings | None = None  # --mail sends the summary through this relay
    kcidb: KcidbSettings | None = None  # --kcidb submits kcidb.json here
    lava: LavaLab | None = None  # cells of its targets run as jobs in this lab

    def matrix(self) -> tuple[list[str], list[str]]:
        return (self.targets or list_targets(), self.scenarios or list_scenarios())

    def host_for(self, target: str) -> RemoteOptions | None:
        """The first `hosts:` entry naming the target (or naming none); None: boot here."""
        for h in self.hosts:
            if not h.targets or target in h.targets:
                return h.remote
        return None


def load(path: Path | None = None) -> Settings:
    """The defaults, overlaid with a lab's file; errors name the file and the key."""
    s = Settings()
    if path is not None:
        r = Reader(load_yaml(path) or {}, path)
        remote = r.sub("remote")
        s.remote_name = remote.get("name", str, s.remote_name)
        s.remote_url = remote.get("url", str, s.remote_url)
        remote.finish()
        s.tree_name = r.get("tree_name", str, s.tree_name)
        s.ref_pattern = r.get("ref_pattern", str, s.ref_pattern)
        s.targets = r.str_list("targets") or s.targets
        s.scenarios = r.str_list("scenarios") or s.scenarios
        s.retries = r.get("retries", int, s.retries)
        s.origin = r.get("kcidb_origin", str, s.origin)
        s.artifacts_url = r.get("artifacts_url", str, s.artifacts_url)
        s.trend_length = r.get("trend_length", int, s.trend_length)
        s.hosts = _hosts(r, path)
        s.mail = mail_settings(r)
        s.kcidb = kcidb_settings(r)
        s.lava = _lava(r, path)
        r.finish()
        where = f"{path}: "
        if not re.fullmatch(r"[a-z0-9_]+", s.origin):
            raise ConfigError(f"{where}kcidb_origin: expected [a-z0-9_]+, got {s.origin!r}")
        if s.retries < 0:
            raise ConfigError(f"{where}retries: expected a number >= 0, got {s.retries}")
        try:
            re.compile(s.ref_pattern)
        except re.error as e:
            raise ConfigError(f"{where}ref_pattern: not a regular expression: {e}") from e
    s.artifacts_url = os.environ.get("HARNESS_ARTIFACTS_URL", s.artifacts_url)
    return s


def default_jobs(cpus: int | None = None) -> int:
    """Concurrent runs: one per 4 CPUs (a build already uses them all), never below one."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // 4)


def _hosts(r: Reader, path: Path) -> list[HostEntry]:
    out = []
    for i, item in enumerate(r.get("hosts", list, [])):
        h = Reader(item, path, f"hosts[{i}].")
        try:
            remote = RemoteOptions.make(
                h.get("host", str, required=True),
                h.get("known_hosts", str, None),
                h.get("identity", str, None),
                h.get("remote_dir", str, None),
            )
        except ConfigError as e:
            raise ConfigError(f"{path}: hosts[{i}]: {e}") from None
        targets = tuple(h.str_list("targets"))
        h.finish()
        out.append(HostEntry(remote, targets))
    return out


def _lava(r: Reader, path: Path) -> LavaLab | None:
    if r.get("lava", dict, None) is None:
        return None
    lv = r.sub("lava")
    where = f"{path}: lava"
    server = lv.get("server", str, required=True)
    if not re.match(r"https?://[^/]", server):
        raise ConfigError(f"{where}.server: expected an http(s) URL, got {server!r}")
    token_file = lv.get("token_file", str, None)
    targets = tuple(lv.str_list("targets"))
    poll = lv.get("poll", (int, float), 10.0)
    a = lv.sub("artifacts")
    url = a.get("url", str, "")
    serve = a.get("serve", str, None)
    upload = a.get("upload", str, "")
    a.finish()
    lv.finish()
    bind = parse_bind(serve, f"{where}.artifacts.serve") if serve else None
    if serve and upload:
        raise ConfigError(f"{where}.artifacts: serve or upload, not both")
    if upload and not url:
        raise ConfigError(f"{where}.artifacts.url: needed with upload (where workers fetch)")
    if bind and not url and bind[0] in ("0.0.0.0", "::", ""):
        raise ConfigError(
            f"{where}.artifacts.url: needed when serving on {serve}: the name workers reach "
            "this machine by"
        )
    if poll <= 0:
        raise ConfigError(f"{where}.poll: expected seconds > 0, got {poll}")
    return LavaLab(
        server, Path(token_file) if token_file else None, targets, float(poll), url, bind, upload
    )
