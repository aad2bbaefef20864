"""A posted series, read the way a reviewer reads it: cover letter, patches 1..N, base.

Input is an mbox (`git format-patch --stdout`, b4, a mail client's export) or a folder of
format-patch files. Replies in a thread mbox are left out; a series with a gap, two
versions mixed, or a numbered mail without a diff is refused with the message named, not
applied in part.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from pathlib import Path

from harness.errors import ConfigError

_TAG = re.compile(r"^\s*\[(?P<tag>[^\]]*)\]\s*(?P<title>.*)$", re.S)
_NUM = re.compile(r"(?:^|\s)(?P<i>\d+)/(?P<n>\d+)\s*$")
_REPLY = re.compile(r"^\s*(?:re|aw|sv)\s*:", re.I)
_DIFF = re.compile(rb"^(?:diff --git |--- \S.*\n\+\+\+ )", re.M)
_BASE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M)
_UNIXFROM = b"From harness-series Mon Sep 17 00:00:00 2001\n"


@dataclass
class Mail:
    """One message of the series: the cover letter (index 0) or patch index/total."""

    index: int
    total: int
    subject: str  # as posted, "[PATCH v2 2/3] mm: ..."
    title: str  # without the bracketed prefix
    message_id: str
    author: str  # the From header
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    raw: bytes = b""  # the message as posted, for git am
    body: str = ""

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"

    @property
    def mbox_bytes(self) -> bytes:
        """The message as a one-message mbox: what `git am` reads."""
        return self.raw if self.raw.startswith(b"From ") else _UNIXFROM + self.raw


@dataclass
class Series:
    path: Path
    cover: Mail | None
    patches: list[Mail]
    base_commit: str | None = None
    skipped: list[str] = field(default_factory=list)  # replies and other mail left out

    @property
    def first(self) -> Mail:
        """The message a reply threads under: the cover letter, else patch 1."""
        return self.cover or self.patches[0]

    @property
    def title(self) -> str:
        return self.first.title if self.cover else self.patches[0].title


def _text_body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (KeyError, LookupError):  # an unknown charset: keep what decodes
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _addresses(msg: EmailMessage, name: str) -> list[str]:
    values = [str(v) for v in msg.get_all(name, [])]
    return [formataddr(a) for a in getaddresses(values) if a[1]]


def _messages(path: Path) -> list[tuple[str, bytes]]:
    """(where, raw bytes) of every message in an mbox file or a folder of patch files."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    out: list[tuple[str, bytes]] = []
    for f in files:
        data = f.read_bytes()
        if not data.startswith(b"From "):  # one bare message (a saved .eml)
            if data.strip():
                out.append((f.name, data))
            continue
        box = mailbox.mbox(f, create=False)
        try:
            for n, key in enumerate(box.keys(), 1):
                out.append((f"{f.name} message {n}", box.get_bytes(key)))
        finally:
            box.close()
    return out


def read_series(path: Path) -> Series:
    """The series in path, in order; a ConfigError names the file and message when it is
    not one complete series."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such mbox or folder")
    cover: Mail | None = None
    numbered: dict[int, list[tuple[str, Mail]]] = {}
    unnumbered: list[tuple[str, Mail]] = []
    skipped: list[str] = []
    totals: set[int] = set()
    for where, raw in _messages(path):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        subject = " ".join(str(msg.get("subject", "")).split())
        if _REPLY.match(subject):
            skipped.append(f"{where}: a reply ({subject[:60]})")
            continue
        m = _TAG.match(subject)
        tag, title = (m.group("tag"), m.group("title")) if m else ("", subject)
        num = _NUM.search(tag)
        has_diff = bool(_DIFF.search(raw))
        mail = Mail(
            index=int(num.group("i")) if num else 1,
            total=int(num.group("n")) if num else 1,
            subject=subject,
            title=title.strip(),
            message_id=str(msg.get("message-id", "")).strip(),
            author=str(msg.get("from", "")).strip(),
            to=_addresses(msg, "to"),
            cc=_addresses(msg, "cc"),
            references=str(msg.get("references", "")).split(),
            raw=raw,
            body=_text_body(msg),
        )
        if num and mail.index == 0:
            if cover is not None:
                raise ConfigError(f"{path}: two cover letters ({where}): pass one version")
            cover = mail
            totals.add(mail.total)
        elif num:
            if not has_diff:
                raise ConfigError(f"{path}: {where} ({subject[:70]}) is patch {mail.label} but "
                                  "has no diff")  # fmt: skip
            numbered.setdefault(mail.index, []).append((where, mail))
            totals.add(mail.total)
        elif has_diff:
            unnumbered.append((where, mail))
        else:
            skipped.append(f"{where}: no diff ({subject[:60]})")
    if numbered and unnumbered:
        where = unnumbered[0][0]
        raise ConfigError(f"{path}: {where} is an unnumbered patch in a numbered series")
    if len(totals) > 1:
        lengths = ", ".join(f"of {t}" for t in sorted(totals))
        raise ConfigError(f"{path}: patches of series of different lengths ({lengths}): "
                          "pass one version")  # fmt: skip
    if numbered:
        total = totals.pop()
        for i, mails in sorted(numbered.items()):
            if len(mails) > 1:
                where = ", ".join(w for w, _ in mails)
                raise ConfigError(f"{path}: {len(mails)} messages are patch {i}/{total} "
                                  f"({where}): pass one version")  # fmt: skip
        missing = [i for i in range(1, total + 1) if i not in numbered]
        extra = [i for i in numbered if i > total]
        if missing or extra:
            what = ", ".join(f"{i}/{total}" for i in missing) or ", ".join(map(str, extra))
            raise ConfigError(f"{path}: patch {what} is {'missing' if missing else 'out of range'}")
        patches = [numbered[i][0][1] for i in range(1, total + 1)]
    else:
        patches = [m for _, m in unnumbered]
        for n, p in enumerate(patches, 1):  # loose format-patch files: their order is theirs
            p.index, p.total = n, len(patches)
    if not patches:
        raise ConfigError(f"{path}: no patches (no message with a diff)")
    base = None
    for mail in [*([cover] if cover else []), *patches]:
        b = _BASE.search(mail.body)
        if b:
            base = b.group(1)
            break
    return Series(path, cover, patches, base, skipped)
