"""progress_iter: a bar on a terminal, periodic lines in a log."""

from __future__ import annotations

import io

from mrsr.progress import progress_iter


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_log_lines_when_not_a_terminal(monkeypatch):
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    assert list(progress_iter(range(3), "adapting", "step", every=0)) == [0, 1, 2]
    assert log.getvalue().splitlines() == [
        "mrsr: adapting: 1/3 step (33%) after 0 s",
        "mrsr: adapting: 2/3 step (67%) after 0 s",
        "mrsr: adapting: 3/3 step (100%) after 0 s",
    ]


def test_lines_are_spaced_in_time(monkeypatch):
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    assert list(progress_iter(iter(range(50)), "work", every=3600)) == list(range(50))
    assert log.getvalue() == ""  # an hour between lines: none in a fraction of a second


def test_interval_from_the_environment(monkeypatch):
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setenv("MRSR_PROGRESS_EVERY", "0")
    list(progress_iter(iter([1, 2]), "work", "item"))
    assert log.getvalue().splitlines() == ["mrsr: work: 1 item after 0 s", "mrsr: work: 2 item after 0 s"]


def test_a_bar_on_a_terminal_and_nothing_when_disabled(monkeypatch):
    term = _Stream(tty=True)
    monkeypatch.setattr("sys.stderr", term)
    bar = progress_iter(range(4), "work")
    assert hasattr(bar, "set_postfix") and list(bar) == [0, 1, 2, 3]  # tqdm's
    items = range(4)
    assert progress_iter(items, "work", enabled=False) is items
