"""``main.py``'s routing: commands, the app's options, and mistyped commands that must not open a window."""

from __future__ import annotations

import pytest

import gui.app
import main as entry
from cli.main import COMMANDS, parse_app_args, suggest_command


@pytest.fixture
def app_calls(monkeypatch):
    """Record calls of gui.app.run instead of opening a window."""
    calls = []

    def fake_run(paths, model=None, device=None):
        calls.append((list(paths), model, device))
        return 0

    monkeypatch.setattr(gui.app, "run", fake_run)
    return calls


@pytest.fixture
def no_window(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail(f"the app was opened with {args} {kwargs}")

    monkeypatch.setattr(gui.app, "run", fail)


@pytest.mark.parametrize("word, suggestion", [("evalute", "evaluate"), ("explian", "explain"), ("clasify", "classify"),
                                              ("inof", "info"),
                                              ("trian", "train")])
def test_mistyped_command_is_a_usage_error_with_a_suggestion(word, suggestion, tmp_path, monkeypatch, no_window,
                                                             capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics").mkdir()
    with pytest.raises(SystemExit) as info:
        entry.main([word, "pics/"])
    assert info.value.code == 2
    assert f"unknown command '{word}' (did you mean '{suggestion}'?)" in capsys.readouterr().err


def test_unknown_word_without_a_close_command_lists_the_commands(tmp_path, monkeypatch, no_window, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        entry.main(["photos"])
    assert info.value.code == 2
    assert "unknown command 'photos'; commands: " + ", ".join(COMMANDS) in capsys.readouterr().err


def test_an_existing_file_or_folder_named_like_a_typo_opens_the_app(tmp_path, monkeypatch, app_calls):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evalute").mkdir()
    assert entry.main(["evalute"]) == 0
    assert app_calls == [(["evalute"], None, None)]


def test_app_options_reach_the_app(tmp_path, monkeypatch, app_calls):
    monkeypatch.chdir(tmp_path)
    assert entry.main(["--model", "demo", "img.png"]) == 0
    assert entry.main(["a.png", "--device", "cpu", "b.png"]) == 0
    checkpoint = tmp_path / "mine.pth"
    checkpoint.write_bytes(b"checked when loaded, not here")
    assert entry.main(["--model", str(checkpoint)]) == 0
    assert entry.main([]) == 0
    assert app_calls == [(["img.png"], "demo", None), (["a.png", "b.png"], None, "cpu"),
                         ([], str(checkpoint), None), ([], None, None)]


@pytest.mark.parametrize("argv, message", [
    (["--model", "densenet999", "img.png"], "unknown model 'densenet999'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--colour", "red"], "unrecognized arguments"),
])
def test_bad_app_options_exit_2_before_any_window(argv, message, no_window, capsys):
    with pytest.raises(SystemExit) as info:
        entry.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: main.py [--model MODEL]" in err


def test_unknown_model_message_names_every_registered_model(capsys):
    from model.zoo import MODELS

    with pytest.raises(SystemExit):
        parse_app_args(["--model", "nope"])
    err = capsys.readouterr().err
    assert all(name in err for name in MODELS)


def test_help_and_version_still_work(no_window, capsys):
    from model import __version__

    with pytest.raises(SystemExit) as info:
        entry.main(["--version"])
    assert info.value.code == 0 and f"DenseLens {__version__}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        entry.main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "[--model MODEL] [--device DEVICE] [IMAGE ...]" in out
    assert all(name in out for name in COMMANDS) and "--self-test" in out


def test_self_test_is_routed_to_the_self_test(monkeypatch, no_window):
    import gui.self_test

    seen = []
    monkeypatch.setattr(gui.self_test, "run", lambda argv: seen.append(argv) or 7)
    assert entry.main(["--self-test", "--gui"]) == 7 and seen == [["--gui"]]


def test_suggestions_are_not_made_up():
    assert suggest_command("explian") == "explain"
    assert suggest_command("photos") is None and suggest_command("foo") is None
