"""Progress of long work: status lines through the ``mrsr`` logger, a bar or periodic lines for loops.

:func:`say` reports through ``logging.getLogger("mrsr")`` at INFO, as MONAI and ignite report through
theirs, so an application decides where mrsr's lines go and which: the command line (:mod:`mrsr.cli`)
sends them to stderr at the level of ``-q``/``-v``. Without such a decision, the first line adds
:class:`StderrHandler` to the ``mrsr`` logger (:func:`logger`), so ``python -c "from mrsr ..."`` and a
bundle run print their lines on stderr as they always have. :func:`progress_iter` draws its bar or
lines on stderr itself (a bar is not a log record) while the ``mrsr`` logger takes INFO lines.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["LOGGER_NAME", "LOG_EVERY_S", "StderrHandler", "logger", "progress_iter", "say"]

T = TypeVar("T")
LOG_EVERY_S = 10.0  # seconds between progress lines when stderr is not a terminal ($MRSR_PROGRESS_EVERY)
LOGGER_NAME = "mrsr"

_default_lock = threading.Lock()
_default_added = False


class StderrHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is when a record comes (a redirect, a test's capture), not
    on the stream of the moment it was made; each record is the message alone, flushed at once (a log file or
    a pipe gets it as :func:`print` with ``flush=True`` gave it)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__()
        self.setLevel(level)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr`` (``StreamHandler.__init__`` sets it)."""


def logger() -> logging.Logger:
    """The ``mrsr`` logger, with a stderr handler the first time it has none of its own.

    A Python user and a bundle run see mrsr's progress on stderr, as before mrsr reported through
    logging. The check is the logger's own handlers, not ``hasHandlers()``: a bundle run configures the
    root logger (MONAI's ``logging.conf``: timestamped lines on stdout), and so does pytest, and neither is
    a decision about mrsr's lines. The default is added once, at INFO, without propagation (else a root
    handler prints each line again). An application takes over by giving the ``mrsr`` logger a handler
    before mrsr's first line, e.g. ``logging.NullHandler()`` to let its lines propagate to the root's
    handlers, or by removing :class:`StderrHandler` from it after; ``setLevel(logging.WARNING)`` silences it.
    """
    global _default_added
    log = logging.getLogger(LOGGER_NAME)
    if not _default_added and not log.handlers:
        with _default_lock:
            if not _default_added and not log.handlers:
                log.addHandler(StderrHandler())
                if log.level == logging.NOTSET:
                    log.setLevel(logging.INFO)
                log.propagate = False
                _default_added = True
    return log


def say(text: str, level: int = logging.INFO) -> None:
    """A progress or status line through the ``mrsr`` logger (by default at INFO: on stderr, flushed)."""
    logger().log(level, text)


def _log_lines(items: Iterable[T], desc: str, unit: str, total: int | None, every: float) -> Iterator[T]:
    start = last = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every:
            last = now
            of = f"/{total} {unit} ({100 * done / total:.0f}%)" if total else f" {unit}"
            print(f"mrsr: {desc}: {done}{of} after {now - start:.0f} s", file=sys.stderr, flush=True)


def progress_iter(
    items: Iterable[T], desc: str, unit: str = "it", enabled: bool = True, total: int | None = None,
    every: float | None = None,
) -> Iterable[T]:  # fmt: skip
    """``items``, reporting progress on stderr when ``enabled`` and the ``mrsr`` logger takes INFO lines
    (``mrsr -q`` asks for none).

    On a terminal it is a transient tqdm bar; otherwise (a log file, a pipe, a batch job) a line
    ``mrsr: DESC: DONE/TOTAL UNIT (PCT%) after ELAPSED s`` at most every ``every`` seconds (default
    ``$MRSR_PROGRESS_EVERY`` or :data:`LOG_EVERY_S`), so long runs are never silent and logs stay
    readable.
    """
    if every is None:
        every = float(os.environ.get("MRSR_PROGRESS_EVERY", LOG_EVERY_S))
    if not enabled or not logger().isEnabledFor(logging.INFO):
        return items
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, unit=unit, total=total, leave=False)
    return _log_lines(items, desc, unit, total, every)
