"""--mail and --kcidb on three fake nightlies: a real SMTP server and KernelCI's real
client (kci-dev) on loopback; the mails thread, KCIDB gets every night, failures are the
harness's."""

from __future__ import annotations

import json

import pytest
import yaml
from loopback_outbox import KcidbEndpoint, SmtpSink
from test_core import env  # noqa: F401 - the fixture

from harness import delivery
from harness.errors import ConfigError


def _settings(tmp_path, smtp_port: int, kcidb_url: str):
    path = tmp_path / "nightly.yaml"
    token = tmp_path / "kcidb-token"
    token.write_text("lab-token-123\n")
    path.write_text(yaml.safe_dump({
        "mail": {"from": "Lab nightly <nightly@lab.example.org>",
                 "to": ["linux-mm@kvack.org"], "cc": ["Dev <dev@example.org>"],
                 "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"}},
        "kcidb": {"url": kcidb_url, "token_file": str(token)},
    }))  # fmt: skip
    return path


def test_three_nightlies_mailed_and_submitted(env, tmp_path):  # noqa: F811
    with SmtpSink() as sink, KcidbEndpoint("lab-token-123") as ep:
        cfg = _settings(tmp_path, sink.port, ep.url)
        runs = [env(ref, config=cfg, send_mail=True, submit_kcidb=True)
                for ref in ("next-20260301", "next-20260302", "next-20260303")]  # fmt: skip
    assert [r.exit_code for r in runs] == [0, 1, 0]
    mails = [m.message for m in sink.received]
    assert [m["Subject"].split(":")[0] for m in mails] == ["[harness nightly] next-20260301"
        ] + ["[harness nightly] next-20260302", "[harness nightly] next-20260303"]  # fmt: skip
    assert all(m.recipients == ["linux-mm@kvack.org", "dev@example.org"] for m in sink.received)
    first, new, fixed = mails
    assert first["In-Reply-To"] is None
    assert new["In-Reply-To"] is None  # a new regression starts a thread
    assert fixed["In-Reply-To"] == new["Message-ID"]  # what became of it, under it
    assert fixed["References"] == new["Message-ID"]
    for r, m in zip(runs, mails, strict=True):
        folder = r.nightly.folder
        summary = json.loads((folder / "summary.json").read_text())
        assert m["Message-ID"] in summary["delivery"]["mail"]
        assert "submitted to " + ep.url in summary["delivery"]["kcidb"]
        assert (folder / "mail.eml").read_text().count(m["Message-ID"]) == 1
        body = m.get_content().replace("\r\n", "\n")
        assert body.strip() == (folder / "mail.txt").read_text().partition("\n\n")[2].strip()
        for f in folder.rglob("*"):
            assert not f.is_file() or b"lab-token-123" not in f.read_bytes(), f
    assert [d["checkouts"][0]["git_commit_name"] for d in ep.accepted] == [
        "next-20260301", "next-20260302", "next-20260303"]  # fmt: skip


def test_a_relay_down_is_a_harness_failure_not_a_regression(env, tmp_path):  # noqa: F811
    with KcidbEndpoint("lab-token-123") as ep:
        cfg = _settings(tmp_path, 1, ep.url)
        r = env("next-20260301", config=cfg, send_mail=True, submit_kcidb=True)
    assert r.exit_code == 3
    summary = json.loads((r.nightly.folder / "summary.json").read_text())
    assert summary["delivery"]["mail"].startswith("failed: mail: SMTP relay 127.0.0.1:1")
    assert any("SMTP relay" in f for f in summary["harness_failures"])
    assert len(ep.accepted) == 1  # KCIDB went out all the same


def test_a_regression_still_exits_1_when_kcidb_refuses(env, tmp_path):  # noqa: F811
    env("next-20260301")
    with SmtpSink() as sink, KcidbEndpoint("another-token") as ep:
        cfg = _settings(tmp_path, sink.port, ep.url)
        r = env("next-20260302", config=cfg, send_mail=True, submit_kcidb=True)
    assert r.exit_code == 1 and ep.refused == ["bad token"]
    assert "kcidb: submission to" in r.mail  # the mail lists the harness failure
    assert len(sink.received) == 1


@pytest.mark.parametrize("flag", ["send_mail", "submit_kcidb"])
def test_flags_without_settings_fail_before_anything_runs(env, tmp_path, flag):  # noqa: F811
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("retries: 1\n")
    with pytest.raises(ConfigError, match=r"has no (mail|kcidb): section"):
        env("next-20260301", config=cfg, **{flag: True})
    assert not (tmp_path / "results").exists()


def test_kcidb_token_missing_fails_before_anything_runs(env, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv(delivery.KCIDB_TOKEN_ENV, raising=False)
    cfg = tmp_path / "n.yaml"
    cfg.write_text("kcidb: {url: 'https://db.example.org/submit'}\n")
    with pytest.raises(ConfigError, match="no token"):
        env("next-20260301", config=cfg, submit_kcidb=True)
