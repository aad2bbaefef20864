"""The nightly's results off the machine: KCIDB submitted, the summary mailed.

Both are checked before the night starts (a missing token or relay is a usage error now,
not after hours of boots), and a delivery that fails tonight is a harness failure of the
night, recorded in summary.json, never a cell's verdict.

Threading: a mail that reports new regressions starts a thread; a quieter night answers
the tree's previous mail (In-Reply-To, References), so what became of a regression is
read under the mail that reported it.
"""

from __future__ import annotations

from pathlib import Path

from harness import delivery
from harness.errors import ConfigError, HarnessError
from harness.fsutil import atomic_write_text
from harness.nightly import history as hist
from harness.nightly.model import NEW, Classified, Nightly
from harness.nightly.settings import Settings

MAX_REFERENCES = 10  # a thread's root and its latest mails: enough for any mail client


def check(cfg: Settings, config: Path | None, mail: bool, kcidb: bool) -> None:
    """What --mail and --kcidb need, before anything runs."""
    where = f"the settings ({config})" if config else "no settings file (--config FILE)"
    if mail:
        if cfg.mail is None:
            raise ConfigError(f"--mail: {where} has no mail: section (from, to, smtp)")
        if cfg.mail.relay.user and not cfg.mail.relay.password():
            raise ConfigError(
                f"--mail: mail.smtp.user {cfg.mail.relay.user!r} needs a password: "
                f"mail.smtp.password_file or ${delivery.SMTP_PASSWORD_ENV}"
            )
    if kcidb:
        if cfg.kcidb is None:
            raise ConfigError(f"--kcidb: {where} has no kcidb: section (url, token_file)")
        cfg.kcidb.token()
        delivery.kci_dev()


def submit_kcidb(nightly: Nightly, cfg: Settings) -> None:
    assert cfg.kcidb is not None
    path = nightly.folder / "kcidb.json"
    if not path.exists():
        nightly.delivery["kcidb"] = "not submitted: kcidb.json was not written"
        return
    try:
        answer = delivery.submit_kcidb(path, cfg.kcidb)
    except HarnessError as e:
        nightly.harness_failures.append(str(e))
        nightly.delivery["kcidb"] = f"failed: {e}"
        return
    nightly.delivery["kcidb"] = f"submitted to {cfg.kcidb.url}: {answer}"


def thread(
    db: hist.History, nightly: Nightly, cells: list[Classified]
) -> tuple[str | None, list[str]]:
    """In-Reply-To and References of tonight's mail (none when it starts a thread)."""
    if any(c.status == NEW for c in cells) or nightly.nightly_id is None:
        return None, []
    last = db.last_mail(nightly.tree, nightly.nightly_id)
    if last is None:
        return None, []
    parent, refs = last
    if len(refs) >= MAX_REFERENCES:  # the root and the newest, room left for the parent
        refs = [refs[0], *refs[-(MAX_REFERENCES - 2) :]]
    return parent, refs


def send_mail(
    nightly: Nightly, cells: list[Classified], cfg: Settings, db: hist.History, text: str
) -> None:
    """mail.txt as a message (mail.eml), through the settings' relay."""
    assert cfg.mail is not None
    head, _, body = text.partition("\n\n")
    subject = head.removeprefix("Subject: ").strip()
    parent, refs = thread(db, nightly, cells)
    msg = delivery.message(
        cfg.mail.sender,
        list(cfg.mail.to),
        list(cfg.mail.cc),
        subject,
        body,
        in_reply_to=parent,
        references=refs,
    )
    atomic_write_text(nightly.folder / "mail.eml", msg.as_string())
    try:
        recipients = delivery.send(msg, cfg.mail.relay)
    except HarnessError as e:
        nightly.harness_failures.append(str(e))
        nightly.delivery["mail"] = f"failed: {e}"
        return
    if nightly.nightly_id is not None:
        db.sent_mail(nightly.nightly_id, msg["Message-ID"], [*refs, parent] if parent else [])
    nightly.delivery["mail"] = (
        f"sent through {cfg.mail.relay.name} to {', '.join(recipients)} as {msg['Message-ID']}"
        + (f", in reply to {parent}" if parent else "")
    )
