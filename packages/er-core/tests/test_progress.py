"""er_core.Progress: rate and ETA; throttled plain lines off a terminal, a redrawn line on one,
nothing when quiet; a final line when the work is done."""

from __future__ import annotations

import pytest
from er_core import Progress, duration
from er_core import progress as progress_mod


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (2 * 3600 + 14 * 60, "2h14m"), (float("inf"), "?")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_log_lines_are_throttled(capsys, monkeypatch):
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    with Progress(total=10, label="text minilm", tty=False, every=3.0) as bar:
        for _ in range(10):
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    # one clock tick per update: a line at t=3, 6, 9 (since the last line), then the final one
    assert len(lines) == 4, lines
    assert lines[-1].startswith("text minilm: 10/10 utt (100%)")
    assert "ETA 0s" in lines[-1] and "utt/s" in lines[0]
    first = lines[0]
    assert first.startswith("text minilm: 3/10 utt (30%)") and "ETA 7s" in first, first


def test_quiet_prints_nothing(capsys):
    with Progress(total=5, label="x", quiet=True, tty=False, every=0) as bar:
        bar.update(5)
    assert capsys.readouterr().err == ""


def test_terminal_redraws_one_line(capsys):
    with Progress(total=3, label="video", unit="clip", tty=True, every=0) as bar:
        bar.update(1)
        bar.update(2)
    err = capsys.readouterr().err
    assert err.count("\r") >= 1 and err.endswith("\n") and err.count("\n") == 1
    assert "3/3 clip" in err


def test_failed_work_prints_no_final_line(capsys):
    with pytest.raises(RuntimeError), Progress(total=5, label="x", tty=False, every=100) as bar:
        bar.update(1)
        raise RuntimeError("boom")
    assert capsys.readouterr().err == ""


def test_every_from_environment(monkeypatch):
    monkeypatch.setenv(progress_mod.EVERY_ENV, "2.5")
    assert progress_mod.log_every() == 2.5
    monkeypatch.setenv(progress_mod.EVERY_ENV, "nonsense")
    assert progress_mod.log_every() == progress_mod.DEFAULT_EVERY
