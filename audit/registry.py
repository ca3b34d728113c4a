"""One registry shape for every family of interchangeable parts: checks, attribution methods, attacks.

A registry maps the name a spec uses to a record with a ``name``; :meth:`Registry.lookup` refuses an
unknown name with the valid ones and the closest match, in the family's own words. Entries are
added explicitly (no import-time discovery, no ``eval``), and the contract suite in
``tests/test_contracts.py`` runs every entry of every registry, so nothing can be registered
without passing it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

from audit.errors import ConfigError

T = TypeVar("T")


class Registry(MutableMapping, Generic[T]):
    """Records by name, in registration order (the order specs and reports list them in).

    ``field`` is the spec's path that names entries (``checks.robustness.attacks``); ``what``
    is the singular noun for one entry (``attack``); ``hint`` is added to the refusal.
    """

    def __init__(self, what: str, *, field: str, hint: str = "use one of the names listed, spelt exactly") -> None:
        self.what, self.field, self.hint = what, field, hint
        self._entries: dict[str, T] = {}

    def add(self, entry: T) -> T:
        name = entry.name  # type: ignore[attr-defined]
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry called ``name``; a ConfigError naming the valid ones otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{self.field}: unknown {self.what} {name!r}; valid {self.what}s: {', '.join(self.names())}",
                hint=(hint + self.hint).strip() or None,
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
