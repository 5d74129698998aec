"""progress_iter: a bar on a terminal, periodic lines in a log; say: a line through the mrsr logger."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

from mrsr.progress import StderrHandler, logger, progress_iter, say


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


def test_nothing_when_the_mrsr_logger_takes_no_info_lines(monkeypatch):
    """`mrsr -q` sets the logger to WARNING: no bar and no progress lines either."""
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    before = logger().level
    logger().setLevel(logging.WARNING)
    try:
        items = range(3)
        assert progress_iter(items, "work", every=0) is items
    finally:
        logger().setLevel(before)
    assert log.getvalue() == ""


def test_say_goes_through_the_mrsr_logger(caplog, monkeypatch):
    # caplog's handler alone, whatever pytest attached already (it adds its handlers to non-propagating loggers)
    monkeypatch.setattr(logger(), "handlers", [caplog.handler])
    with caplog.at_level(logging.INFO, logger="mrsr"):
        say("mrsr: a line")
        say("mrsr: warning: a warning", logging.WARNING)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("mrsr", logging.INFO, "mrsr: a line"),
        ("mrsr", logging.WARNING, "mrsr: warning: a warning"),
    ]


def test_the_stderr_handler_writes_to_stderr_as_it_is_now(monkeypatch):
    """Not to the stream of the moment it was made: a redirect (or a test's capture) later still gets the lines."""
    handler = StderrHandler()
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    handler.handle(logging.makeLogRecord({"msg": "mrsr: 100% done", "levelno": logging.INFO}))
    assert log.getvalue() == "mrsr: 100% done\n"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_say_prints_on_stderr_without_any_logging_configured():
    """A Python user sees the lines as print gave them: the message alone, one line each, on stderr."""
    done = _python("from mrsr.progress import say; say('mrsr: 50% of %s'); say('second')")
    assert (done.stdout, done.stderr) == ("", "mrsr: 50% of %s\nsecond\n")


def test_a_root_logging_config_does_not_take_or_repeat_the_lines():
    """A bundle run configures the root logger (MONAI: timestamped lines on stdout): mrsr's lines stay on stderr,
    once, as before."""
    done = _python(
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='ROOT %(message)s'); "
        "from mrsr.progress import say; say('mrsr: a line'); logging.getLogger('monai').info('monai line')"
    )
    assert (done.stdout, done.stderr) == ("ROOT monai line\n", "mrsr: a line\n")


def test_an_application_takes_the_lines_by_giving_the_logger_a_handler():
    done = _python(
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='APP %(message)s'); "
        "logging.getLogger('mrsr').addHandler(logging.NullHandler()); "
        "from mrsr.progress import say; say('mrsr: a line')"
    )
    assert (done.stdout, done.stderr) == ("APP mrsr: a line\n", "")
