"""The registry of checks. Each check measures (returns Measurements) and never judges.

A check is one :class:`CheckRecord`: ``run(ctx) -> list[Measurement]``; its ``catalogue``, the
:class:`~audit.catalogue.Metric` entries it can emit (thresholds naming anything else are refused
before the audit runs; the report, ``compare`` and the model card read them); and optionally
``validate(config)`` and ``prepare(ctx)``: input checks that raise an AuditError before any
check runs (an unknown method name; a gradient method on a black-box model), so bad input ends
with exit code 2 and no files rather than a half-run audit. Registration order is the order of
the report's sections.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from audit.checks import data, fairness, metric_names, performance
from audit.profiles import ll144
from audit.registry import Registry
from audit.results import Measurement
from audit.text import checks as text_checks

if TYPE_CHECKING:
    from audit.catalogue import Metric
    from audit.context import AuditContext

CheckFunction = Callable[["AuditContext"], list[Measurement]]


def _deferred(module: str, function: str) -> Callable:
    """``module.function``, imported on first call: explanations and robustness load torch,
    captum and shap, which `gate`, `compare` and `--help` must not wait for."""

    def call(*args):
        return getattr(importlib.import_module(module), function)(*args)

    call.__name__ = call.__qualname__ = f"{module.rsplit('.', 1)[-1]}.{function}"
    return call

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


@dataclass(frozen=True)
class CheckRecord:
    """One check: the same shape as an attribution method's and an attack's record."""

    name: str
    run: CheckFunction
    catalogue: tuple["Metric", ...] = ()
    validate: Callable | None = None  # validate(config): rules that need nothing loaded
    prepare: Callable | None = None  # prepare(ctx): rules that need the data and model

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.catalogue)


CHECKS: Registry[CheckRecord] = Registry("check", field="checks", hint="")
for _module in (data, performance, fairness):
    CHECKS.add(CheckRecord(_module.CHECK, _module.run, _module.CATALOGUE,
                           getattr(_module, "validate", None), getattr(_module, "prepare", None)))
# their code loads torch on first call; their catalogues come from a module that does not
for _name, _catalogue in (("explanations", metric_names.EXPLANATIONS_CATALOGUE),
                          ("robustness", metric_names.ROBUSTNESS_CATALOGUE)):
    _module = f"audit.checks.{_name}"
    CHECKS.add(CheckRecord(_name, _deferred(_module, "run"), _catalogue,
                           _deferred(_module, "validate"), _deferred(_module, "prepare")))


def _entries(names: tuple[str, ...]) -> tuple["Metric", ...]:
    """Catalogue entries for a check that lists names: a name another check catalogues keeps that entry.

    One name, one meaning: the text checks' robust_accuracy is the robustness check's metric.
    """
    from audit.catalogue import Metric

    known = {m.name: m for record in CHECKS.values() for m in record.catalogue}
    return tuple(known.get(name) or Metric(name, name.replace("_", " ")) for name in names)


for _name, _run, _names, _validate, _prepare in (
    ("identity_bias", text_checks.run_identity_bias, text_checks.IDENTITY_BIAS_METRICS, None, None),
    ("counterfactual", text_checks.run_counterfactual, text_checks.COUNTERFACTUAL_METRICS, None, None),
    ("token_attributions", text_checks.run_token_attributions, text_checks.TOKEN_ATTRIBUTION_METRICS,
     text_checks.validate_token_attributions, text_checks.prepare_token_attributions),
    ("text_robustness", text_checks.run_text_robustness, text_checks.TEXT_ROBUSTNESS_METRICS, None, None),
):
    CHECKS.add(CheckRecord(_name, _run, _entries(_names), _validate, _prepare))
# a check may emit another check's metric under that check's entry (ll144's selection_rate)
CHECKS.add(CheckRecord(ll144.CHECK, ll144.run, ll144.CATALOGUE + _entries(ll144.SHARED), ll144.validate, ll144.prepare))


def records() -> list[CheckRecord]:
    return list(CHECKS.values())


def validate(config) -> None:
    """Static input rules of every enabled check, before anything is loaded."""
    for record in records():
        section = getattr(config.checks, record.name, None)
        if record.validate is not None and applies(record.name, config) and (section is None or section.enabled):
            record.validate(config)


def prepare(ctx: "AuditContext") -> None:
    """Input rules that need the loaded data and model, before any check runs."""
    for name in enabled(ctx):
        record = CHECKS.lookup(name)
        if record.prepare is not None:
            record.prepare(ctx)


def names() -> list[str]:
    return CHECKS.names()


def metrics() -> dict[str, set[str]]:
    return {record.name: set(record.metrics) for record in records()}


def get(name: str) -> CheckFunction:
    return CHECKS.lookup(name).run


def enabled(ctx: "AuditContext") -> list[str]:
    """Checks to run: 'data' always, the others unless their spec section disables them."""
    chosen = []
    for name in names():
        section = getattr(ctx.config.checks, name, None)
        wanted = WANTED.get(name, lambda config: section is None or section.enabled)
        if applies(name, ctx.config) and wanted(ctx.config):
            chosen.append(name)
    return chosen
