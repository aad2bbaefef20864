"""Where a lab's workers fetch a run's kernel, initramfs, dtb and hypervisor.

Three ways, from the nightly's `lava.artifacts` settings:
- none: file:// URLs, for a worker on this machine;
- served: the runs' own `lava/artifacts/` folders, served over HTTP by the harness for as
  long as the nightly runs (`serve: HOST:PORT`), at `url`;
- upload: a command the lab gives (`rsync`, `scp`, `curl -T`, ...), run on each run's
  artifacts folder with {dir} and {name} filled in, the files then fetched at `url`.
Only artifacts are served: the console logs and reports next to them are not.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, InfraError

ARTIFACTS = "lava/artifacts"  # under a run's results folder (publish.write's default)


@dataclass(frozen=True)
class ArtifactStore:
    """A served folder (root) or an upload command; `url` is what workers fetch from."""

    url: str
    root: Path | None = None
    upload: str = ""
    timeout: float = 600.0

    def url_for(self, artifacts: Path, name: str) -> str:
        """The URL a worker fetches `artifacts/` at (`name`: the run's id)."""
        base = self.url.rstrip("/")
        if self.root is not None:
            try:
                rel = artifacts.resolve().relative_to(self.root.resolve())
            except ValueError:
                raise InfraError(f"artifacts {artifacts} are not under {self.root}") from None
            return f"{base}/{rel.as_posix()}"
        return base.replace("{name}", name) if "{name}" in base else f"{base}/{name}"

    def publish(self, artifacts: Path, name: str) -> None:
        """Run the upload command (no shell: each word filled in on its own)."""
        if not self.upload:
            return
        argv = [w.replace("{dir}", str(artifacts)).replace("{name}", name)
                for w in shlex.split(self.upload)]  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise InfraError(f"artifacts upload: {argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise InfraError(f"artifacts upload: {argv[0]} ran past {self.timeout:.0f} s") from None
        if proc.returncode:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["?"]
            raise InfraError(f"artifacts upload: {argv[0]} exited {proc.returncode}: {last[0]}")

    def to_spec(self) -> dict[str, Any]:
        return {"url": self.url, "root": str(self.root) if self.root else None,
                "upload": self.upload}  # fmt: skip

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> ArtifactStore | None:
        if not spec:
            return None
        root = spec.get("root")
        return cls(spec["url"], Path(root) if root else None, spec.get("upload") or "")


def parse_bind(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{where}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class _ArtifactsOnly(SimpleHTTPRequestHandler):
    """GET/HEAD of files under some run's lava/artifacts/; nothing else, no listings."""

    def log_message(self, *args: Any) -> None:  # the nightly's stderr is for people
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = self.path.split("?", 1)[0]
        if f"/{ARTIFACTS}/" not in path or path.endswith("/") or ".." in path.split("/"):
            self.send_error(404)
            return None
        return super().send_head()


@contextlib.contextmanager
def serving(root: Path, bind: tuple[str, int]) -> Iterator[int]:
    """Serve the runs' artifacts under root while the body runs; yields the port."""
    handler = functools.partial(_ArtifactsOnly, directory=str(root))
    try:
        server = ThreadingHTTPServer(bind, handler)
    except OSError as e:
        raise InfraError(f"cannot serve artifacts on {bind[0]}:{bind[1]}: {e.strerror}") from e
    thread = threading.Thread(target=server.serve_forever, name="artifacts", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
