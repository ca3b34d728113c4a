"""Thresholds that cannot match anything are bad input: refuse them before the audit runs.

A threshold whose param or group names something the audit will not measure (a sensitive
column spelt differently, an epsilon not in the sweep, a class or attack that does not exist,
a group value not in the data) would otherwise match nothing. :func:`check_against_spec` reads
what the spec alone can tell, before anything is loaded; :func:`check_against_data` reads the
group values of the loaded data, before any check runs. Params whose values the spec does not
fix (a feature name, a default epsilon of image data) are left to the rule after the run: a
threshold that matched nothing is an error there (:func:`audit.gate.judge`).
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from audit import checks
from audit.config import AuditConfig, Threshold
from audit.data import MISSING_GROUP, OUTSIDE_BINS, bin_labels
from audit.errors import ConfigError
from audit.gate import closest, plain, same_value
from audit.groups import crosses

FAIRNESS_METHODS = ("between_groups", "to_reference")


def check_against_spec(thresholds: list[Threshold], config: AuditConfig) -> None:
    """Refuse a param value or group column that the spec says cannot be measured."""
    for index, threshold in enumerate(thresholds):
        where = f"thresholds[{index}] {threshold.text!r}"
        _require_enabled_check(where, threshold, config)
        for key, wanted in threshold.params.items():
            valid = _valid_param_values(key, threshold, config)
            if valid is not None:
                _require(where, f"param {key}", wanted, valid)
        for column, wanted in _group_items(threshold):
            _require(where, "group column", column, _group_columns(config))
            labels = _bin_labels(config, column)
            if labels is not None:
                _require(where, f"group value of {column}", wanted, labels)
        if isinstance(threshold.group, dict) and len(threshold.group) > 1:
            _require(where, "group (a cross of sensitive columns)", "+".join(threshold.group), _groupings(config))


def check_against_data(thresholds: list[Threshold], sensitive: pd.DataFrame) -> None:
    """Refuse a group value that the loaded data does not hold."""
    for index, threshold in enumerate(thresholds):
        for column, wanted in _group_items(threshold):
            if column in sensitive.columns:
                present = sorted({str(v) for v in sensitive[column].unique()})
                _require(f"thresholds[{index}] {threshold.text!r}", f"group value of {column}", wanted, present)


def _require_enabled_check(where: str, threshold: Threshold, config: AuditConfig) -> None:
    """Refuse a threshold whose metric only checks that the spec turns off would measure."""
    measuring = [name for name, names in checks.metrics().items()
                 if threshold.metric in names and threshold.check in (None, name) and checks.applies(name, config)]
    sections = [getattr(config.checks, name, None) for name in measuring]
    if measuring and all(section is not None and not section.enabled for section in sections):
        raise ConfigError(
            f"{where}: {threshold.metric!r} is measured by {' or '.join(measuring)}, which the spec turns off",
            hint=f"set checks.{measuring[0]}.enabled: true, or remove the threshold",
        )


def _group_items(threshold: Threshold) -> list[tuple[str, str]]:
    return list(threshold.group.items()) if isinstance(threshold.group, dict) else []


def _require(where: str, what: str, wanted: Any, valid: list[Any]) -> None:
    if any(same_value(wanted, value) for value in valid):
        return
    shown = [plain(v) for v in valid]
    close = closest(wanted, shown)
    listing = ", ".join(shown[:20]) + (", ..." if len(shown) > 20 else "")
    raise ConfigError(
        f"{where}: {what} {plain(wanted)!r} matches nothing the audit measures; valid: {listing or 'none'}",
        hint=f"did you mean {close!r}?" if close else "remove the threshold",
    )


def _valid_param_values(key: str, threshold: Threshold, config: AuditConfig) -> list[Any] | None:
    """The values the spec allows for one param of this threshold's metric; None: cannot tell."""
    rule = PARAM_RULES.get(key)
    return None if rule is None else rule(threshold, config)


def _sensitive(threshold: Threshold, config: AuditConfig) -> list[str]:
    return _groupings(config)


def _classes(threshold: Threshold, config: AuditConfig) -> list[str]:
    return [str(c) for c in config.data.label.classes]


def _epsilons(threshold: Threshold, config: AuditConfig) -> list[float] | None:
    check = config.checks.robustness
    if threshold.metric not in {"robust_accuracy", "attack_success_rate"}:
        return None  # other robustness values carry the sanity checks' own epsilon
    if check.epsilons is not None:
        return sorted({0.0, *check.epsilons})
    if config.data.kind == "tabular" and check.norm == "Linf":
        from audit.robust.domain import TABULAR_EPSILONS

        return list(TABULAR_EPSILONS)
    return None  # image defaults scale with the data's value range


def _attacks(threshold: Threshold, config: AuditConfig) -> list[str] | None:
    from audit.checks.robustness import attack_names

    if "attacks" not in config.checks.robustness.model_fields_set:
        return None  # the default depends on whether the model is a black box
    return attack_names(config, black_box=False)


def _methods(threshold: Threshold, config: AuditConfig) -> list[str] | None:
    """Fairness's two methods, and the explanation methods the spec names (else cannot tell)."""
    metrics = checks.metrics()
    valid: list[str] = []
    if _measured_by("fairness", threshold, metrics):
        valid += FAIRNESS_METHODS
    if _measured_by("explanations", threshold, metrics):
        if config.checks.explanations.methods is None:
            return None
        valid += config.checks.explanations.methods
    return valid or None


def _measured_by(check: str, threshold: Threshold, metrics: dict[str, set[str]]) -> bool:
    return threshold.check in (None, check) and threshold.metric in metrics.get(check, set())


PARAM_RULES: dict[str, Callable[[Threshold, AuditConfig], list[Any] | None]] = {
    "sensitive": _sensitive,
    "class": _classes,
    "pos_label": _classes,
    "eps": _epsilons,
    "attack": _attacks,
    "method": _methods,
}
"""param name -> the values the spec allows (None: the spec cannot tell; the run will)."""


def _sensitive_columns(config: AuditConfig) -> tuple[str, ...]:
    """The sensitive columns, and for text data one ``mentions:GROUP`` column per identity group."""
    from audit.text.identity import MENTIONS_PREFIX

    identity = getattr(config.data, "identity", {})
    return (*(s.column for s in config.data.sensitive), *(f"{MENTIONS_PREFIX}{g}" for g in identity))


def _group_columns(config: AuditConfig) -> list[str]:
    # the text checks group by identity mention: {identity: GROUP}
    extra = ["identity"] if getattr(config.data, "identity", None) else []
    return [*_sensitive_columns(config), *extra]


def _groupings(config: AuditConfig) -> list[str]:
    """Every grouping's name: each sensitive column, then each cross fairness measures."""
    columns = _sensitive_columns(config)
    crossed = crosses(columns, config.checks.fairness.intersections)
    return [*columns, *("+".join(c) for c in crossed)]


def _bin_labels(config: AuditConfig, column: str) -> list[str] | None:
    for spec in config.data.sensitive:
        if spec.column == column and spec.bins is not None:
            return [*bin_labels(spec), OUTSIDE_BINS, MISSING_GROUP]
    return None
