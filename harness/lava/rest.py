"""A lava-server's REST API v0.2: submit a job, wait for it, fetch its log and results.

Only what the harness needs; the log is then judged exactly like a local lava-run's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from harness.errors import ConfigError, InfraError

log = logging.getLogger(__name__)

FINISHED = "Finished"
RUNNING = "Running"
OFFLINE = "Offline"
LOST = "Lost"  # our health for a job whose worker vanished (LAVA keeps it Running)
LOST_AFTER = 30.0  # seconds a worker stays Offline before its job counts as lost
# a lab's server drops keep-alive connections and restarts: GETs are retried, never a POST
_RETRY = Retry(
    total=6,
    backoff_factor=1.0,
    status_forcelist=(502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    raise_on_status=False,
)


@dataclass
class JobState:
    """A job as the server reports it (state: Submitted .. Finished; health: Complete ..)."""

    id: int
    state: str
    health: str
    failure_comment: str = ""
    device: str = ""  # the device the scheduler gave it (empty until then)


class LavaServer:
    """One server, optionally authenticated with a user's API token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base = url.rstrip("/") + "/api/v0.2"
        self.url = url.rstrip("/")
        self.http = session or requests.Session()
        self.http.mount("http://", HTTPAdapter(max_retries=_RETRY))
        self.http.mount("https://", HTTPAdapter(max_retries=_RETRY))
        # polls are seconds apart: a kept-alive connection is often reset by then
        self.http.headers["Connection"] = "close"
        self.timeout = timeout
        if token:
            self.http.headers["Authorization"] = f"Token {token}"
            if self.url.startswith("http://") and not _loopback(self.url):
                log.warning(
                    "LAVA server %s is plain http: the API token crosses the network "
                    "unencrypted; use https",
                    self.url,
                )

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            r = self.http.request(method, f"{self.base}/{path}", timeout=self.timeout, **kw)
        except requests.RequestException as e:
            raise InfraError(f"LAVA server {self.url}: {e}") from e
        if r.status_code in (401, 403):
            raise ConfigError(
                f"LAVA server {self.url}: {r.status_code}: check the token "
                "(--token-file or $HARNESS_LAVA_TOKEN)"
            )
        if r.status_code == 400:
            raise ConfigError(f"LAVA server {self.url} refused the job: {_message(r)}")
        if r.status_code >= 300:
            raise InfraError(f"LAVA server {self.url}: {method} {path}: HTTP {r.status_code}")
        return r

    def _json(self, r: requests.Response, what: str) -> Any:
        """The answer as JSON, or an infra error that says what came instead (a proxy's
        HTML login page, a truncated body)."""
        try:
            return r.json()
        except ValueError:
            kind = r.headers.get("Content-Type", "unknown type")
            head = " ".join(r.text[:120].split())
            raise InfraError(
                f"LAVA server {self.url}: {what}: expected JSON, got {kind}: {head!r}"
            ) from None

    def submit(self, definition: str) -> int:
        """POST the job YAML; the id of the (single-node) job."""
        r = self._call("POST", "jobs/", json={"definition": definition})
        d = self._json(r, "job submission")
        try:
            return int(d["job_ids"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            raise InfraError(f"LAVA server {self.url}: no job id in {str(d)[:200]!r}") from None

    def state(self, job_id: int) -> JobState:
        d = self._json(self._call("GET", f"jobs/{job_id}/"), f"job {job_id}")
        try:
            return JobState(
                int(d["id"]),
                d["state"],
                d["health"],
                d.get("failure_comment") or "",
                d.get("actual_device") or "",
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InfraError(
                f"LAVA server {self.url}: job {job_id}: unexpected answer {str(d)[:200]!r}"
            ) from None

    def workers(self) -> list[dict[str, Any]]:
        """The lab's workers (hostname, state: Online/Offline, health)."""
        d = self._json(self._call("GET", "workers/"), "workers")
        rows = d.get("results", []) if isinstance(d, dict) else d
        return [w for w in rows or [] if isinstance(w, dict)]

    def _field(self, path: str, key: str) -> str:
        """One field of one object, "" when the server will not say (best effort)."""
        try:
            return str(self._json(self._call("GET", path), path).get(key) or "")
        except (InfraError, ConfigError, AttributeError):
            return ""

    def worker_of(self, device: str) -> str:
        """The worker a device hangs off ("" when the server will not say)."""
        return self._field(f"devices/{device}/", "worker_host")

    def cancel(self, job_id: int) -> None:
        try:
            self._call("GET", f"jobs/{job_id}/cancel/")
        except (InfraError, ConfigError):
            pass

    def logs(self, job_id: int) -> str:
        return self._call("GET", f"jobs/{job_id}/logs/").text

    def results(self, job_id: int) -> str:
        """The job's test cases as YAML (LAVA's own 'lava' suite included)."""
        return self._call("GET", f"jobs/{job_id}/yaml/").text

    def worker_state(self, worker: str) -> str:
        """Online or Offline ("" when the server will not say)."""
        return self._field(f"workers/{worker}/", "state")

    def wait(
        self,
        job_id: int,
        timeout: float,
        *,
        poll: float = 5.0,
        on_state: Callable[[JobState, float], None] | None = None,
        lost_after: float = LOST_AFTER,
    ) -> JobState | None:
        """Poll until Finished; None when the timeout passed first (the job is canceled).

        A job whose worker went offline (the server stops hearing it after a minute) would
        stay Running until the worker comes back: once its worker has been Offline for
        `lost_after` seconds, the job is canceled and comes back with health "Lost".
        """
        t0 = time.monotonic()
        worker, offline_since = "", None
        while True:
            st = self.state(job_id)
            if on_state:
                on_state(st, time.monotonic() - t0)
            if st.state == FINISHED:
                return st
            if time.monotonic() - t0 > timeout:
                self.cancel(job_id)
                return None
            if st.state == RUNNING and st.device:
                worker = worker or self.worker_of(st.device)
                if worker and self.worker_state(worker) == OFFLINE:
                    offline_since = offline_since or time.monotonic()
                    if time.monotonic() - offline_since >= lost_after:
                        self.cancel(job_id)
                        why = f"worker {worker} went offline while it ran the job"
                        return JobState(st.id, FINISHED, LOST, why, st.device)
                else:
                    offline_since = None
            time.sleep(poll)


def _loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


def _message(r: requests.Response) -> str:
    try:
        return str(r.json().get("message", r.text))
    except ValueError:
        return r.text[:500]
