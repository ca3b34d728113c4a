"""Progress of the long steps of an audit, for whoever listens.

Library code marks its long steps with :func:`task` and never prints: with no listener (the
default, and always from Python unless you ask) a task costs a context switch and nothing more.
The CLI installs a :class:`TqdmListener` with :func:`listening`, which draws one tqdm bar per
step on stderr (elapsed time, and an estimate where the step knows its total) and keeps the
duration of every top-level step for the time line printed at the end.

>>> from audit import progress
>>> with progress.task("predicting", total=3, unit="batch") as step:
...     for _ in range(3):
...         step.advance()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO


class Task:
    """A running step: ``advance`` by some units, ``note`` what it is doing now."""

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class Listener:
    """Receives the start and end of every step; the base class ignores them."""

    def start(self, label: str, *, total: int | None, unit: str, depth: int) -> Task:
        return Task()

    def end(self, label: str, task: Task, *, seconds: float, depth: int) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


_listener: ContextVar[Listener | None] = ContextVar("audit_progress_listener", default=None)
_depth: ContextVar[int] = ContextVar("audit_progress_depth", default=0)


@contextlib.contextmanager
def task(label: str, *, total: int | None = None, unit: str = "step") -> Iterator[Task]:
    """Mark a long step; yields a :class:`Task` to advance. Nested steps are drawn below it."""
    listener = _listener.get()
    if listener is None:
        yield Task()
        return
    depth = _depth.get()
    handle = listener.start(label, total=total, unit=unit, depth=depth)
    token = _depth.set(depth + 1)
    start = time.perf_counter()
    try:
        yield handle
    finally:
        _depth.reset(token)
        listener.end(label, handle, seconds=time.perf_counter() - start, depth=depth)


def warn(text: str) -> None:
    """A warning that matters before the step ends (a long run ahead); the listener shows it."""
    listener = _listener.get()
    if listener is not None:
        listener.warn(text)


@contextlib.contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send the steps run inside this block to ``listener`` (None: to nobody)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class _Bar(Task):
    def __init__(self, bar) -> None:
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(text, refresh=True)


class TqdmListener(Listener):
    """tqdm bars on ``stream`` (the CLI's stderr), one per step, removed when it ends.

    ``max_depth`` limits how deep nested steps are drawn (a method inside a check: depth 1).
    The top-level durations are kept in :attr:`timings`, in the order the steps ended.
    """

    def __init__(self, stream: TextIO, *, max_depth: int = 2) -> None:
        self.stream = stream
        self.max_depth = max_depth
        self.timings: dict[str, float] = {}

    def start(self, label: str, *, total: int | None, unit: str, depth: int) -> Task:
        if depth > self.max_depth:
            return Task()
        from tqdm import tqdm

        bar = tqdm(total=total, desc=("  " * depth) + label, unit=unit, file=self.stream, leave=False,
                   position=depth, dynamic_ncols=True, mininterval=0.2,
                   bar_format=None if total else "{desc}: {elapsed} {postfix}")
        return _Bar(bar)

    def end(self, label: str, task: Task, *, seconds: float, depth: int) -> None:
        if isinstance(task, _Bar):
            task.bar.close()
        if depth == 0:
            self.timings[label] = self.timings.get(label, 0.0) + seconds

    def warn(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"warning: {text}", file=self.stream)

    def time_line(self) -> str:
        """``time: loading data 0.4 s, predicting 0.2 s, ...`` for the end of a run."""
        parts = [f"{label} {_duration(seconds)}" for label, seconds in self.timings.items()]
        return "time: " + ", ".join(parts) if parts else ""


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
