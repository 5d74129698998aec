"""Progress of long work: a bar on a terminal, a line every few seconds in a log file."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress_iter", "say", "LOG_EVERY_S"]

T = TypeVar("T")
LOG_EVERY_S = 10.0  # seconds between progress lines when stderr is not a terminal ($MRSR_PROGRESS_EVERY)


def say(text: str) -> None:
    """A progress or status line: on stderr, flushed (a log file or a pipe gets it at once)."""
    print(text, file=sys.stderr, flush=True)


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
    """``items``, reporting progress on stderr when ``enabled``.

    On a terminal it is a transient tqdm bar; otherwise (a log file, a pipe, a batch job) a line
    ``mrsr: DESC: DONE/TOTAL UNIT (PCT%) after ELAPSED s`` at most every ``every`` seconds (default
    ``$MRSR_PROGRESS_EVERY`` or :data:`LOG_EVERY_S`), so long runs are never silent and logs stay
    readable.
    """
    if every is None:
        every = float(os.environ.get("MRSR_PROGRESS_EVERY", LOG_EVERY_S))
    if not enabled:
        return items
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, unit=unit, total=total, leave=False)
    return _log_lines(items, desc, unit, total, every)
