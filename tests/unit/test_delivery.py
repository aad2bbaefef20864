"""Mail through a real SMTP server and KCIDB through KernelCI's real client (kci-dev), both
on loopback: settings errors name the file and key, secrets stay out of argv and errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from loopback_outbox import KcidbEndpoint, SmtpSink

from harness import delivery
from harness.config import Reader
from harness.errors import ConfigError, InfraError

KCIDB_DOC = {
    "version": {"major": 5, "minor": 3},
    "checkouts": [{"id": "harness:1", "origin": "harness"}],
}


def _read(tmp_path: Path, data: dict) -> Reader:
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(data))
    return Reader(data, path)


def _mail(**smtp) -> dict:
    return {"mail": {"from": "Nightly <ci@lab.example.org>", "to": ["linux-mm@kvack.org"],
                     "smtp": {"host": "127.0.0.1", **smtp}}}  # fmt: skip


def test_mail_settings(tmp_path):
    m = delivery.mail_settings(_read(tmp_path, _mail(port=2525, security="none")))
    assert m.sender == "Nightly <ci@lab.example.org>" and m.to == ("linux-mm@kvack.org",)
    assert m.relay == delivery.Relay("127.0.0.1", 2525, "none")
    assert delivery.mail_settings(_read(tmp_path, {})) is None
    ssl = delivery.mail_settings(_read(tmp_path, _mail(security="ssl")))
    assert ssl.relay.port == 465


@pytest.mark.parametrize(
    "data, message",
    [
        (_mail(password="hunter2"), "mail.smtp.password: not accepted in a settings file"),
        (_mail(security="tls"), "mail.smtp.security: expected one of starttls, ssl, none"),
        ({"mail": {**_mail()["mail"], "to": []}}, "mail.to: at least one recipient"),
        ({"mail": {**_mail()["mail"], "cc": ["not an address"]}}, "mail.cc: not a mail address"),
        ({"mail": {**_mail()["mail"], "smtp": {"host": "smtp.example.org", "security": "none",
                                               "user": "ci"}}}, "in clear to smtp.example.org"),
        (_mail(colour="blue"), "mail.smtp.colour: unknown key"),
        ({"kcidb": {"url": "https://tok@db.example.org/submit"}}, "credentials do not go in"),
        ({"kcidb": {"url": "http://db.example.org/submit"}}, "token in clear to db.example.org"),
        ({"kcidb": {"url": "db.example.org"}}, "kcidb.url: expected an http(s) URL"),
    ],
)  # fmt: skip
def test_settings_errors_name_file_and_key(tmp_path, data, message):
    r = _read(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        delivery.mail_settings(r)
        delivery.kcidb_settings(r)
    assert str(tmp_path / "nightly.yaml") in str(e.value) and message in str(e.value)
    assert "hunter2" not in str(e.value)


def test_mail_goes_through_the_relay_with_login(tmp_path, monkeypatch):
    secret = tmp_path / "smtp-password"
    secret.write_text("correct horse battery\n")
    msg = delivery.message("CI <ci@lab.example.org>", ["a@example.org"], ["b@example.org"],
                           "[harness nightly] next-20260302: 1 new regression", "body \u2014 ok\n",
                           in_reply_to="<root@lab.example.org>")  # fmt: skip
    with SmtpSink(user="ci", password="correct horse battery") as sink:
        relay = delivery.Relay("127.0.0.1", sink.port, "none", "ci", secret, timeout=10)
        assert delivery.send(msg, relay) == ["a@example.org", "b@example.org"]
    (got,) = sink.received
    assert got.sender == "ci@lab.example.org"
    assert got.recipients == ["a@example.org", "b@example.org"]
    m = got.message
    assert m["In-Reply-To"] == m["References"] == "<root@lab.example.org>"
    assert m["Message-ID"].endswith("@lab.example.org>") and m["Date"]
    assert m.get_content().replace("\r\n", "\n") == "body \u2014 ok\n"


def test_a_refused_login_keeps_the_password_out_of_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv(delivery.SMTP_PASSWORD_ENV, "wrong-secret")
    msg = delivery.message("ci@lab.example.org", ["a@example.org"], [], "s", "b\n")
    with SmtpSink(user="ci", password="right") as sink:
        relay = delivery.Relay("127.0.0.1", sink.port, "none", "ci", timeout=10)
        with pytest.raises(InfraError) as e:
            delivery.send(msg, relay)
    assert f"SMTP relay 127.0.0.1:{sink.port}" in str(e.value)
    assert "wrong-secret" not in str(e.value) and sink.received == []


def test_no_relay_is_an_infra_error_naming_it():
    msg = delivery.message("ci@lab.example.org", ["a@example.org"], [], "s", "b\n")
    with pytest.raises(InfraError, match=r"mail: SMTP relay 127\.0\.0\.1:1: "):
        delivery.send(msg, delivery.Relay("127.0.0.1", 1, "none", timeout=5))


@pytest.fixture
def kci_dev_here(monkeypatch):
    exe = Path(sys.executable).parent / "kci-dev"
    if not exe.exists():
        pytest.fail("kci-dev is missing: ./bootstrap.sh --test installs it")
    return exe


def test_kcidb_submission_with_kci_dev(tmp_path, monkeypatch, kci_dev_here):
    doc = tmp_path / "kcidb.json"
    doc.write_text(json.dumps(KCIDB_DOC))
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    with KcidbEndpoint("s3cr3t-token") as ep:
        answer = delivery.submit_kcidb(doc, delivery.KcidbSettings(ep.url, token))
    assert ep.accepted == [KCIDB_DOC] and "submission-1" in answer


def test_kcidb_refused_token_stays_out_of_the_error(tmp_path, monkeypatch, kci_dev_here):
    doc = tmp_path / "kcidb.json"
    doc.write_text(json.dumps(KCIDB_DOC))
    monkeypatch.setenv(delivery.KCIDB_TOKEN_ENV, "not-the-token")
    with KcidbEndpoint("s3cr3t-token") as ep, pytest.raises(InfraError) as e:
        delivery.submit_kcidb(doc, delivery.KcidbSettings(ep.url))
    assert ep.refused == ["bad token"] and ep.accepted == []
    assert f"submission to {ep.url} failed" in str(e.value) and "401" in str(e.value)
    assert "not-the-token" not in str(e.value)


def test_kcidb_without_a_token_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv(delivery.KCIDB_TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"HARNESS_KCIDB_TOKEN"):
        delivery.KcidbSettings("https://db.example.org/submit").token()


def test_secret_files(tmp_path):
    f = tmp_path / "s"
    f.write_text("two words\n")
    with pytest.raises(ConfigError, match="expected one token alone"):
        delivery.read_secret(f, "--token-file")
    assert delivery.read_secret(f, "password_file", spaces=True) == "two words"
    f.write_text("a\nb\n")
    with pytest.raises(ConfigError, match="expected one line alone"):
        delivery.read_secret(f, "password_file", spaces=True)
    with pytest.raises(ConfigError, match=f"--token-file {tmp_path / 'none'}: "):
        delivery.read_secret(tmp_path / "none", "--token-file")
    assert os.environ.get("KCIDB_REST") is None  # never left in our own environment
