"""Progress of long work: plain lines when the output is not a terminal, a rich bar on one, nothing when off."""
from __future__ import annotations

import io

import pytest

from pipelines.core.progress import Progress, mode, track


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("MOBILE_MLOPS_PROGRESS", raising=False)
    out = io.StringIO()
    assert list(track(range(4), "epochs", stream=out)) == [0, 1, 2, 3]
    assert out.getvalue().splitlines() == ["epochs: 0/4 (0%) started", "epochs: 1/4 (25%)", "epochs: 2/4 (50%)",
                                           "epochs: 3/4 (75%)", "epochs: 4/4 (100%)"]


def test_long_work_prints_about_every_five_percent_with_its_note(monkeypatch):
    monkeypatch.delenv("MOBILE_MLOPS_PROGRESS", raising=False)
    out = io.StringIO()
    with Progress("steps", 1000, out) as bar:
        for i in range(1000):
            bar.advance(note=f"loss {1 / (i + 1):.3f}")
    lines = out.getvalue().splitlines()
    assert 20 <= len(lines) <= 22 and lines[-1] == "steps: 1000/1000 (100%) loss 0.001"
    assert "steps: 50/1000 (5%) loss 0.020" in lines


def test_a_terminal_gets_a_bar_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv("MOBILE_MLOPS_PROGRESS", raising=False)
    tty = _Tty()
    assert mode(tty) == "bar" and mode(io.StringIO()) == "plain"
    with Progress("rounds", 3, tty) as bar:
        bar.advance(note="val_loss 0.4")
    assert "rounds" in tty.getvalue() and "1/3" in tty.getvalue()
    monkeypatch.setenv("MOBILE_MLOPS_PROGRESS", "off")
    quiet = io.StringIO()
    list(track(range(3), "x", stream=quiet))
    assert quiet.getvalue() == ""
    monkeypatch.setenv("MOBILE_MLOPS_PROGRESS", "plain")
    assert mode(tty) == "plain"


@pytest.mark.parametrize("total", [None, 0])
def test_unknown_or_empty_totals_count_without_a_percentage(monkeypatch, total):
    monkeypatch.delenv("MOBILE_MLOPS_PROGRESS", raising=False)
    out = io.StringIO()
    with Progress("files", total, out) as bar:
        bar.advance(2)
    assert out.getvalue().splitlines()[-1] == "files: 2"
