"""What each metric is, said once: the catalogue every reader of a measurement consults.

A check exports its :class:`Metric` entries (``CATALOGUE`` in its module, listed by its
:class:`~audit.checks.CheckRecord`); the gate (which names exist), ``compare`` (which way is
better, which params identify a measurement), the glossary, every report view and the model
card read them here. So a new metric is one entry beside the code that measures it, and no
renderer needs to learn its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

# which way is better: higher, lower, closer to zero, closer to one; None: neither (a count, a share)
DIRECTIONS = ("higher", "lower", "zero", "one")


@dataclass(frozen=True)
class Metric:
    """One metric a check can emit.

    ``describes`` names the params that describe a value rather than identify it (the extreme
    groups of a disparity, a bin's mean): two runs may differ in them and still measure the same
    thing. ``denominator`` is set for a rate: what it divides by, so "undefined" can say why
    (``no {denominator} in the group``) and small-group rules can count it. ``column`` makes the
    rate a column of the fairness section's group table, headed by ``short``.
    ``to_reference`` is the better direction of a disparity measured against a reference group.
    """

    name: str
    label: str
    glossary: str = ""
    better: str | None = None
    unit: str = "share"
    describes: tuple[str, ...] = ()
    denominator: str | None = None
    short: str | None = None  # the name in a table header or a short sentence, when not the label
    column: bool = False
    to_reference: str | None = None
    term: str | None = None  # the glossary's term, when it is not the label
    compares: tuple[str, ...] = ()  # a disparity: the rate(s) it compares between groups

    def __post_init__(self) -> None:
        for way in (self.better, self.to_reference):
            if way is not None and way not in DIRECTIONS:
                raise ValueError(f"metric {self.name}: direction {way!r} is not one of {DIRECTIONS}")

    def direction(self, params: dict[str, Any]) -> str | None:
        """Which way is better for a measurement with these params."""
        if params.get("method") == "to_reference" and self.to_reference is not None:
            return self.to_reference
        return self.better

    def identity(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params that say which measurement this is (the rest only describe it)."""
        return {k: v for k, v in params.items() if k not in self.describes}

    @property
    def header(self) -> str:
        """The name in a table header: the short name, capitalised."""
        text = self.short or self.label
        return text[:1].upper() + text[1:]

    @property
    def undefined_reason(self) -> str:
        return f"no {self.denominator} in the group" if self.denominator else "empty group"


class Catalogue:
    """Every registered check's metrics, by check and by name."""

    def __init__(self, by_check: dict[str, tuple[Metric, ...]]) -> None:
        self.by_check = by_check
        self.by_name: dict[str, Metric] = {}
        for metrics in by_check.values():
            for metric in metrics:
                known = self.by_name.setdefault(metric.name, metric)
                if known != metric:  # one name, one meaning, whichever check emits it
                    raise ValueError(f"metric {metric.name!r} is catalogued twice, differently")

    def get(self, name: str) -> Metric | None:
        return self.by_name.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def names(self, check: str | None = None) -> list[str]:
        if check is None:
            return list(self.by_name)
        return [m.name for m in self.by_check.get(check, ())]

    def direction(self, name: str, params: dict[str, Any]) -> str | None:
        metric = self.get(name)
        return None if metric is None else metric.direction(params)

    def label(self, name: str) -> str:
        metric = self.get(name)
        return metric.label if metric else name.replace("_", " ")

    def identity(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        metric = self.get(name)
        return dict(params) if metric is None else metric.identity(params)

    def glossary(self, checks: tuple[str, ...] | None = None) -> dict[str, str]:
        """term -> meaning for every metric with glossary text, in the checks' order."""
        chosen = self.by_check if checks is None else {c: self.by_check.get(c, ()) for c in checks}
        out: dict[str, str] = {}
        for metrics in chosen.values():
            for metric in metrics:
                if metric.glossary:
                    out.setdefault(metric.term or metric.label, metric.glossary)
        return out

    def columns(self, check: str) -> list[Metric]:
        """The check's metrics that are columns of a group table, in catalogue order."""
        return [m for m in self.by_check.get(check, ()) if m.column]


@cache
def catalogue() -> Catalogue:
    """The catalogue of every registered check (built once, on first use)."""
    from audit import checks

    return Catalogue({record.name: tuple(record.catalogue) for record in checks.records()})
