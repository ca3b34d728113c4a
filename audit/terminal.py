"""Text bound for a terminal: control characters from user input are shown, never obeyed.

A spec's name, a threshold's name or a group value can hold ESC sequences that recolour,
retitle or rewrite the terminal (terminal escape injection), or bidirectional overrides that
reorder what is shown. They are printed as visible escapes (``\\x1b``). Newlines, tabs and
carriage returns stay (progress bars redraw with ``\\r``).
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class EscapingStream(io.TextIOBase):
    """A text stream that escapes control characters before passing text on."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(escape_controls(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def escaping(stream: TextIO) -> TextIO:
    return stream if isinstance(stream, EscapingStream) else EscapingStream(stream)
