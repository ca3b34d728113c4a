"""Ctrl-C always stops a run, even when it lands where Python cannot raise it.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode the main thread runs. When that
bytecode belongs to a weakref callback or a ``__del__`` (the import system runs one each time it
drops a module lock, thousands of times while torch loads), the exception cannot propagate:
CPython prints "Exception ignored" and carries on, so an interrupted run went on to write its
report and exit 0. :func:`install` sends such a swallowed interrupt back to the main thread, where
it is raised again at its next bytecode outside the callback. :func:`received` lets the CLI refuse to publish
the results of a run that was interrupted, should a library swallow the exception some other way.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading

_received = False
REDELIVERY_DELAY_S = 0.05


def install() -> None:
    """Take SIGINT and the unraisable-exception hook; called once by the CLI before any heavy import."""
    signal.signal(signal.SIGINT, _on_interrupt)
    previous = sys.unraisablehook

    def redeliver(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            # a moment later, from another thread: signalled now, it would be raised inside this hook
            timer = threading.Timer(REDELIVERY_DELAY_S, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    sys.unraisablehook = redeliver


def received() -> bool:
    """Whether Ctrl-C was pressed since :func:`install`."""
    return _received


def _on_interrupt(signum, frame) -> None:
    global _received
    _received = True
    raise KeyboardInterrupt
