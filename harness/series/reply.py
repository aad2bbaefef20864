"""The answer on the list: a plain-text reply threaded under the series' cover letter.

Recipients come from where a reviewer takes them: the author, the people the series was
sent to, and the tree's own scripts/get_maintainer.pl on the patch at fault. The message is
RFC 5322 (email.policy.default), ready for `git send-email` or any MTA.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from pathlib import Path

from harness import delivery
from harness import git as gitmod
from harness.series.mbox import Series

SENDER_ENV = "HARNESS_MAIL_FROM"
_GET_MAINTAINER_ARGS = ("--no-rolestats", "--no-git", "--no-git-fallback", "--no-tree")


def maintainers(tree: Path, patch_files: list[Path]) -> tuple[list[str], str]:
    """Addresses get_maintainer.pl names for the patches, and a note when it could not run.

    --no-git keeps it to MAINTAINERS (no blame walk over a history we may not have).
    """
    script = tree / "scripts" / "get_maintainer.pl"
    if not script.exists():
        return [], f"{tree} has no scripts/get_maintainer.pl"
    try:
        proc = subprocess.run(
            ["perl", str(script), *_GET_MAINTAINER_ARGS, *map(str, patch_files)],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], f"get_maintainer.pl did not run: {e}"
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [], f"get_maintainer.pl exited {proc.returncode}: {last}"
    found = [formataddr(a) for a in getaddresses(proc.stdout.splitlines()) if "@" in a[1]]
    return unique(found), ""


def unique(addresses: list[str], *, without: Sequence[str] = ()) -> list[str]:
    """Addresses once each (by mailbox, case-insensitive), in order, minus `without`."""
    seen = {a[1].lower() for a in getaddresses(list(without))}
    out = []
    for name, addr in getaddresses(addresses):
        if addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(formataddr((name, addr)))
    return out


def sender(repo: Path, override: str | None = None) -> str:
    """Who the reply is from: --from, $HARNESS_MAIL_FROM, else the tree's git identity."""
    for value in (override, os.environ.get(SENDER_ENV)):
        if value:
            return value
    name = gitmod.run(repo, "config", "user.name", check=False)
    addr = gitmod.run(repo, "config", "user.email", check=False)
    return formataddr((name or "harness", addr or "harness@localhost"))


def build(series: Series, frm: str, to: list[str], cc: list[str], body: str) -> EmailMessage:
    """The reply message: Re: subject, In-Reply-To and References to the cover letter."""
    first = series.first
    subject = first.subject
    return delivery.message(
        frm,
        to,
        cc,
        subject if subject.lower().startswith("re:") else f"Re: {subject}",
        body,
        in_reply_to=first.message_id or None,
        references=first.references,
    )
