"""Results that leave the machine: mail through an SMTP relay, KCIDB through KernelCI's client.

A lab names its relay and its KCIDB endpoint in the nightly settings (`mail:`, `kcidb:`);
the secrets (SMTP password, KCIDB token) come from the environment or from a file, never
from the command line, and never appear in an error, a log or a results file. A delivery
that fails is the harness's failure (exit 3 unless a regression says 1), never the kernel's.
"""

from __future__ import annotations

import email.policy
import ipaddress
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from pathlib import Path

from harness.config import Reader
from harness.errors import ConfigError, InfraError

SMTP_PASSWORD_ENV = "HARNESS_SMTP_PASSWORD"
KCIDB_TOKEN_ENV = "HARNESS_KCIDB_TOKEN"
KCI_DEV_ENV = "HARNESS_KCI_DEV"
SECURITIES = ("starttls", "ssl", "none")


def read_secret(path: Path, what: str, *, spaces: bool = False) -> str:
    """One token (or, with spaces, a password) on one line of a file: a file, not argv,
    since any user can read a command line with `ps`."""
    try:
        text = path.expanduser().read_text().strip("\r\n")
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror}") from e
    if not text.strip() or "\n" in text or (not spaces and len(text.split()) != 1):
        raise ConfigError(f"{what} {path}: expected one {'line' if spaces else 'token'} alone")
    return text if spaces else text.strip()


def secret(file: Path | None, env: str, what: str, *, spaces: bool = False) -> str | None:
    """The file's secret when one is named, else the environment's (None: neither)."""
    if file is not None:
        return read_secret(file, what, spaces=spaces)
    return os.environ.get(env) or None


def required_secret(file: Path | None, env: str, what: str, missing: str) -> str:
    """secret(), for a token the command cannot go on without: `missing` says where to
    put one (a usage error, exit 4, before anything is built)."""
    token = secret(file, env, what)
    if not token:
        raise ConfigError(f"{missing}: {what} in the settings, or ${env}")
    return token


def _scrub(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(values: list[str], where: str) -> list[str]:
    out: list[str] = []
    for v in values:
        pairs = getaddresses([v])
        if not pairs or any("@" not in addr for _, addr in pairs):
            raise ConfigError(f"{where}: not a mail address: {v!r}")
        out.extend(formataddr(p) for p in pairs)
    return out


@dataclass(frozen=True)
class Relay:
    """An SMTP relay: STARTTLS (587) by default, `ssl` (465), or `none` for a local MTA."""

    host: str
    port: int = 587
    security: str = "starttls"
    user: str | None = None
    password_file: Path | None = None
    timeout: float = 60.0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def password(self) -> str | None:
        return secret(self.password_file, SMTP_PASSWORD_ENV, "mail.smtp.password_file", spaces=True)


@dataclass(frozen=True)
class MailSettings:
    """Who the nightly's mail is from and to, and the relay it goes through."""

    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    relay: Relay


def mail_settings(r: Reader) -> MailSettings | None:
    """The `mail:` section of the nightly settings (None when the lab sends no mail)."""
    if r.get("mail", dict, None) is None:
        return None
    m = r.sub("mail")
    where = f"{r.path}: mail"
    sender = _addresses([m.get("from", str, required=True)], f"{where}.from")[0]
    to = _addresses(m.str_list("to"), f"{where}.to")
    cc = _addresses(m.str_list("cc"), f"{where}.cc")
    if not to:
        raise ConfigError(f"{where}.to: at least one recipient is needed")
    s = m.sub("smtp")
    host = s.get("host", str, required=True)
    security = s.get("security", str, "starttls")
    if security not in SECURITIES:
        raise ConfigError(f"{where}.smtp.security: expected one of {', '.join(SECURITIES)}")
    port = s.get("port", int, 465 if security == "ssl" else 587)
    user = s.get("user", str, None)
    pw_file = s.get("password_file", str, None)
    if "password" in s.data:
        raise ConfigError(
            f"{where}.smtp.password: not accepted in a settings file; use password_file "
            f"(mode 600) or ${SMTP_PASSWORD_ENV}"
        )
    if security == "none" and user and not _loopback(host):
        raise ConfigError(
            f"{where}.smtp.security: none would send the password for {user!r} in clear "
            f"to {host}; use starttls or ssl (none is for a relay on loopback)"
        )
    timeout = s.get("timeout", (int, float), 60.0)
    s.finish()
    m.finish()
    relay = Relay(host, port, security, user, Path(pw_file) if pw_file else None, timeout)
    return MailSettings(sender, tuple(to), tuple(cc), relay)


def message(
    sender: str,
    to: list[str],
    cc: list[str],
    subject: str,
    body: str,
    *,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A plain-text RFC 5322 message, threaded when it answers another."""
    msg = EmailMessage(policy=email.policy.default)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    domain = (getaddresses([sender]) or [("", "")])[0][1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = message_id or make_msgid("harness", domain=domain)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join([*(references or []), in_reply_to])
    msg.set_content(body, cte="8bit" if not body.isascii() else "7bit")
    return msg


def send(msg: EmailMessage, relay: Relay) -> list[str]:
    """Hand the message to the relay; the envelope is To + Cc. Returns the recipients."""
    recipients = [a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
    password = relay.password()
    if relay.user and not password:
        raise ConfigError(
            f"mail.smtp.user {relay.user!r} needs a password: mail.smtp.password_file or "
            f"${SMTP_PASSWORD_ENV}"
        )
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if relay.security == "ssl":
            smtp = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        with smtp:
            smtp.ehlo()
            if relay.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if relay.user:
                smtp.login(relay.user, password or "")
            refused = smtp.send_message(msg, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as e:  # OSError covers timeouts
        why = _scrub(str(e) or type(e).__name__, password)
        raise InfraError(f"mail: SMTP relay {relay.name}: {why}") from None
    if refused:
        raise InfraError(f"mail: SMTP relay {relay.name} refused {', '.join(sorted(refused))}")
    return recipients


@dataclass(frozen=True)
class KcidbSettings:
    """Where KCIDB submissions go (the REST endpoint KernelCI gives a submitter)."""

    url: str
    token_file: Path | None = None

    def token(self) -> str:
        return required_secret(
            self.token_file,
            KCIDB_TOKEN_ENV,
            "kcidb.token_file",
            f"--kcidb: no token for {self.url}",
        )


def kcidb_settings(r: Reader) -> KcidbSettings | None:
    """The `kcidb:` section of the nightly settings (None when it has none)."""
    if r.get("kcidb", dict, None) is None:
        return None
    k = r.sub("kcidb")
    url = k.get("url", str, required=True)
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{r.path}: kcidb.url: expected an http(s) URL, got {url!r}")
    if parsed.username or parsed.password:
        raise ConfigError(
            f"{r.path}: kcidb.url: credentials do not go in the URL; use kcidb.token_file "
            f"or ${KCIDB_TOKEN_ENV}"
        )
    if parsed.scheme == "http" and not _loopback(parsed.hostname):
        raise ConfigError(
            f"{r.path}: kcidb.url: http would send the token in clear to {parsed.hostname}"
        )
    token_file = k.get("token_file", str, None)
    k.finish()
    return KcidbSettings(url, Path(token_file) if token_file else None)


def kci_dev() -> str:
    """KernelCI's client: $HARNESS_KCI_DEV, the one next to our Python, else on PATH."""
    found = (
        os.environ.get(KCI_DEV_ENV)
        or shutil.which("kci-dev", path=str(Path(sys.executable).parent))
        or shutil.which("kci-dev")
    )
    if not found:
        raise InfraError(
            "--kcidb: KernelCI's client kci-dev is not installed (pip install 'harness[kcidb]' "
            f"or kci-dev; ${KCI_DEV_ENV} names another)"
        )
    return found


def submit_kcidb(path: Path, kcidb: KcidbSettings, timeout: float = 300) -> str:
    """Submit a validated KCIDB file with `kci-dev submit build --from-json`.

    kci-dev takes the endpoint and token from KCIDB_REST (https://TOKEN@host/path), so the
    token goes through the child's environment, never its argv.
    """
    token = kcidb.token()
    if any(c in token for c in "@:/?#% "):
        raise ConfigError("--kcidb: the token has characters a KCIDB_REST URL cannot carry")
    parsed = urllib.parse.urlparse(kcidb.url)
    rest = parsed._replace(netloc=f"{token}@{parsed.netloc}").geturl()
    env = {**os.environ, "KCIDB_REST": rest}
    argv = [kci_dev(), "submit", "build", "--from-json", str(path)]
    try:
        proc = subprocess.run(
            argv, env=env, cwd=path.parent, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        why = f"kcidb: kci-dev gave no answer from {kcidb.url} in {timeout:.0f} s"
        raise InfraError(why) from None
    out = _scrub((proc.stdout + proc.stderr).strip(), token, rest)
    if proc.returncode != 0:
        last = " / ".join(out.splitlines()[-3:]) or f"exit {proc.returncode}"
        raise InfraError(f"kcidb: submission to {kcidb.url} failed: {last}")
    return out.splitlines()[-1] if out else "submitted"
