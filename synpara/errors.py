"""The one exception type synpara raises for problems a user can fix.

The CLI turns a :class:`SynparaError` into a single line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback (shown with ``-v``).
"""

from __future__ import annotations

from pathlib import Path


class SynparaError(Exception):
    """A user-facing error: the message names the file (when there is one) and the reason.

    >>> str(SynparaError("no samples", path="a.wav"))
    'a.wav: no samples'
    """

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {reason}" if self.path else reason)
