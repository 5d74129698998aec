"""The error mrsr raises for bad input: its message is a one-line instruction for the user."""

from __future__ import annotations


class MrsrError(ValueError):
    """Bad input or a request that cannot be met; the message says what is wrong and what to do."""


class OutputExistsError(MrsrError):
    """The output exists and may not be replaced: it was there before the run, or another run wrote it
    meanwhile (a batch counts that volume as done)."""
