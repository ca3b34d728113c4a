"""The registry of checks. Each check measures (returns Measurements) and never judges.

A check is a module with ``run(ctx: AuditContext) -> list[Measurement]`` and ``METRICS``, the
names it can emit (thresholds naming anything else are refused before the audit runs), and
optionally ``validate(config)`` and ``prepare(ctx)``: input checks that raise an AuditError
before any check runs (an unknown method name; a gradient method on a black-box model), so bad
input ends with exit code 2 and no files rather than a half-run audit. The order here is the
order of the report's sections.
"""

from __future__ import annotations

import importlib
from typing import Callable

from audit.checks import data, fairness, metric_names, performance
from audit.context import AuditContext
from audit.errors import ConfigError
from audit.profiles import ll144
from audit.results import Measurement
from audit.text import checks as text_checks

CheckFunction = Callable[[AuditContext], list[Measurement]]


def _deferred(module: str, function: str) -> Callable:
    """``module.function``, imported on first call: explanations and robustness load torch,
    captum and shap, which `gate`, `compare` and `--help` must not wait for."""

    def call(*args):
        return getattr(importlib.import_module(module), function)(*args)

    call.__name__ = call.__qualname__ = f"{module.rsplit('.', 1)[-1]}.{function}"
    return call


CHECKS: dict[str, CheckFunction] = {
    "data": data.run,
    "performance": performance.run,
    "fairness": fairness.run,
    "explanations": _deferred("audit.checks.explanations", "run"),
    "robustness": _deferred("audit.checks.robustness", "run"),
    "identity_bias": text_checks.run_identity_bias,
    "counterfactual": text_checks.run_counterfactual,
    "token_attributions": text_checks.run_token_attributions,
    "text_robustness": text_checks.run_text_robustness,
    "ll144": ll144.run,
}

METRICS: dict[str, tuple[str, ...]] = {
    "data": data.METRICS,
    "performance": performance.METRICS,
    "fairness": fairness.METRICS,
    "explanations": metric_names.EXPLANATIONS,
    "robustness": metric_names.ROBUSTNESS,
    "identity_bias": text_checks.IDENTITY_BIAS_METRICS,
    "counterfactual": text_checks.COUNTERFACTUAL_METRICS,
    "token_attributions": text_checks.TOKEN_ATTRIBUTION_METRICS,
    "text_robustness": text_checks.TEXT_ROBUSTNESS_METRICS,
    "ll144": ll144.METRICS,
}

TEXT_ONLY = ("identity_bias", "counterfactual", "token_attributions", "text_robustness")
"""Checks that read texts; the tabular and image explanations and attacks have text versions."""
NOT_FOR_TEXT = ("explanations", "robustness")


def applies(name: str, config) -> bool:
    """Whether a check fits the spec's data kind (text checks for text, the others elsewhere)."""
    is_text = config.data.kind == "text"
    return name not in (NOT_FOR_TEXT if is_text else TEXT_ONLY)


WANTED: dict[str, Callable] = {
    "ll144": lambda config: "ll144" in config.report.profiles,
}
"""check name -> whether the spec asks for it, for checks that a report profile turns on."""


PREFLIGHT: dict[str, tuple[Callable | None, Callable | None]] = {
    "explanations": (_deferred("audit.checks.explanations", "validate"), _deferred("audit.checks.explanations", "prepare")),
    "robustness": (_deferred("audit.checks.robustness", "validate"), _deferred("audit.checks.robustness", "prepare")),
    "token_attributions": (text_checks.validate_token_attributions, None),
    "ll144": (ll144.validate, ll144.prepare),
}
"""check name -> (validate(config), prepare(ctx)); filled by checks that have input rules."""


def validate(config) -> None:
    """Static input rules of every enabled check, before anything is loaded."""
    for name, (rule, _) in PREFLIGHT.items():
        section = getattr(config.checks, name, None)
        if rule is not None and applies(name, config) and (section is None or section.enabled):
            rule(config)


def prepare(ctx: AuditContext) -> None:
    """Input rules that need the loaded data and model, before any check runs."""
    for name in enabled(ctx):
        _, rule = PREFLIGHT.get(name, (None, None))
        if rule is not None:
            rule(ctx)


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
        wanted = WANTED.get(name, lambda config: section is None or section.enabled)
        if applies(name, ctx.config) and wanted(ctx.config):
            chosen.append(name)
    return chosen
