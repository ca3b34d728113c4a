"""One exception tree for everything a user can get wrong.

::

    AuditError            anything the CLI reports as one line and exit code 2
     +-- ConfigError      the spec: YAML syntax, unknown keys, wrong types, bad paths
     +-- DataError        the data: missing columns, labels outside the classes, NaN features
     +-- ModelError       the model: unreadable file, pickle without opt-in, output shape
     +-- CheckError       a check that cannot run on this model or data
     +-- OutputError      the output directory cannot be written

Every error carries a ``hint`` saying how to fix it; ``str(error)`` is the one line shown.
"""

from __future__ import annotations


MAX_LINE = 2000


class AuditError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""

    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.kind}: {self.message}"
        if self.hint:
            text += f" (fix: {self.hint})"
        text = " ".join(text.split())
        # one readable line even when a message quotes a huge input
        return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


class ConfigError(AuditError):
    kind = "spec error"


class DataError(AuditError):
    kind = "data error"


class ModelError(AuditError):
    kind = "model error"


class CheckError(AuditError):
    kind = "check error"


class OutputError(AuditError):
    kind = "output error"
