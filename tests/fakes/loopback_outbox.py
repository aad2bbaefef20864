"""Where results go when they leave the machine, on loopback: a real SMTP server
(aiosmtpd) that keeps what it is sent, and a KCIDB submission endpoint that checks the
bearer token and validates every submission against KCIDB's schema (kcidb-io), as the
KernelCI REST service does, keeping what it accepted.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1; with `user`, it takes AUTH PLAIN with that password."""

    user: str | None = None
    password: str | None = None
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def __enter__(self) -> SmtpSink:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                sink.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            login, password = data.login.decode(), data.password.decode()
            sink.logins.append((login, password))
            ok = (login, password) == (sink.user, sink.password)
            return AuthResult(success=ok, handled=False)  # False: the server says 535

        # PLAIN only: aiosmtpd's LOGIN waits forever on smtplib's initial response
        kwargs = (
            {"authenticator": auth, "auth_require_tls": False, "auth_exclude_mechanism": ["LOGIN"]}
            if self.user
            else {}
        )
        with socket.socket() as probe:  # a free port (aiosmtpd's self-check needs a real one)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._ctl = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._ctl.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctl.stop()


@dataclass
class KcidbEndpoint:
    """POST /submit with `Authorization: Bearer TOKEN` and a KCIDB document."""

    token: str
    accepted: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/submit"

    def __enter__(self) -> KcidbEndpoint:
        from harness.errors import InfraError
        from harness.nightly.reports import kcidb

        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/submit":
                    return self._answer(404, {"error": f"no {self.path}"})
                if self.headers.get("Authorization") != f"Bearer {endpoint.token}":
                    endpoint.refused.append("bad token")
                    return self._answer(401, {"error": "invalid token"})
                try:
                    data = json.loads(raw)
                    kcidb.validate(data)
                except (ValueError, InfraError) as e:
                    endpoint.refused.append(str(e))
                    return self._answer(400, {"error": str(e)})
                endpoint.accepted.append(data)
                return self._answer(200, {"id": f"submission-{len(endpoint.accepted)}"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
