"""The exit-code contract at the parser: usage errors are 4 (255 for bisect-step)."""

import pytest

from harness import cli


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["run"], 4),
        (["run", "t", "--nope"], 4),
        (["run", "t", "--timeout", "-1"], 4),
        (["run", "t", "--jobs", "x"], 4),
        (["bisect", "t", "--good", "a", "--bad", "b", "--kernel", "k", "--runs", "0"], 4),
        (["nightly", "--kernel", "k", "--retries", "-1"], 4),
        (["series"], 4),
        (["series", "s.mbox"], 4),
        (["series", "s.mbox", "--kernel", "k", "--calibrate", "0"], 4),
        (["series", "/nonexistent/s.mbox", "--kernel", "k"], 4),
        (["bisect-step"], 255),
        (["bisect-step", "t", "--what"], 255),
        (["-v", "bisect-step", "t", "--what"], 255),
        (["frobnicate"], 4),
    ],
)
def test_usage_errors(argv, code, capsys):
    assert cli.main(argv) == code
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--mail", "--kcidb"])
def test_nightly_delivery_without_settings_is_4_before_the_tree(tmp_path, capsys, flag):
    assert cli.main(["nightly", "--kernel", str(tmp_path / "none"), flag]) == 4
    assert f"{flag}: no settings file (--config FILE)" in capsys.readouterr().err


def test_an_unexpected_exception_is_3_and_kept(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path))

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_list", boom)
    assert cli.main(["list"]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "ZeroDivisionError" in err
    (crash,) = tmp_path.glob("harness-crash-*.txt")
    assert "ZeroDivisionError: a bug" in crash.read_text()


def test_interrupt_is_130(monkeypatch, capsys):
    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_list", stop)
    assert cli.main(["list"]) == 130
