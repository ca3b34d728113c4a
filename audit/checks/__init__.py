"""The registry of checks. Each check measures (returns Measurements) and never judges.

A check is a function ``run(ctx: AuditContext) -> list[Measurement]``. The order here is the
order of the report's sections.
"""

from __future__ import annotations

from typing import Callable

from audit.context import AuditContext
from audit.errors import ConfigError
from audit.results import Measurement

CheckFunction = Callable[[AuditContext], list[Measurement]]


def _data(ctx: AuditContext) -> list[Measurement]:
    from audit.checks import data

    return data.run(ctx)


def _performance(ctx: AuditContext) -> list[Measurement]:
    from audit.checks import performance

    return performance.run(ctx)


def _fairness(ctx: AuditContext) -> list[Measurement]:
    from audit.checks import fairness

    return fairness.run(ctx)


CHECKS: dict[str, CheckFunction] = {
    "data": _data,
    "performance": _performance,
    "fairness": _fairness,
}


def names() -> list[str]:
    return list(CHECKS)


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
