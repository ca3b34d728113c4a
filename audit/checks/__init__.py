"""The registry of checks. Each check measures (returns Measurements) and never judges.

A check is a module with ``run(ctx: AuditContext) -> list[Measurement]`` and ``METRICS``, the
names it can emit (thresholds naming anything else are refused before the audit runs). The
order here is the order of the report's sections.
"""

from __future__ import annotations

from typing import Callable

from audit.checks import data, fairness, performance
from audit.context import AuditContext
from audit.errors import ConfigError
from audit.results import Measurement

CheckFunction = Callable[[AuditContext], list[Measurement]]

CHECKS: dict[str, CheckFunction] = {
    "data": data.run,
    "performance": performance.run,
    "fairness": fairness.run,
}

METRICS: dict[str, tuple[str, ...]] = {
    "data": data.METRICS,
    "performance": performance.METRICS,
    "fairness": fairness.METRICS,
}


def names() -> list[str]:
    return list(CHECKS)


def metrics() -> dict[str, set[str]]:
    return {name: set(METRICS.get(name, ())) for name in CHECKS}


def get(name: str) -> CheckFunction:
    try:
        return CHECKS[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}", hint=f"choose from {', '.join(names())}") from None


def enabled(ctx: AuditContext) -> list[str]:
    """Checks to run: 'data' always, the others unless their spec section disables them."""
    chosen = []
    for name in names():
        section = getattr(ctx.config.checks, name, None)
        if section is None or section.enabled:
            chosen.append(name)
    return chosen
