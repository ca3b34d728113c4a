"""Thresholds -> findings: pure functions over a result's measurements.

A threshold matches measurements by metric name, and optionally check, group and params (the
threshold's params must be a subset of the measurement's). Without a group it judges the
overall value (group None); where a metric has no overall value (per-group rates), it judges
every group. Each matched measurement gets a verdict; the threshold's verdict is the worst.

Verdicts: pass, warn, fail, inconclusive. ``point`` judges the value. ``interval`` passes only
when the whole confidence interval satisfies the bound, fails only when the whole interval
violates it, and is otherwise inconclusive. A value that is undefined, or rests on a group
smaller than min_group_size, is inconclusive with the reason. A violated ``level: warn``
threshold warns instead of failing. The gate fails on any fail, and on any inconclusive when
the spec says ``gate.inconclusive: fail`` (the default).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from audit.config import GateSettings, Threshold
from audit.errors import ConfigError
from audit.results import Measurement

SEVERITY = {"pass": 0, "warn": 1, "inconclusive": 2, "fail": 3}


@dataclass(frozen=True)
class Match:
    """One measurement a threshold judged."""

    group: dict[str, str] | None
    params: dict[str, Any]
    value: float | None
    ci: tuple[float, float] | None
    verdict: str
    reason: str


@dataclass(frozen=True)
class Finding:
    """One threshold's verdict and the measurements behind it."""

    threshold: str
    metric: str
    check: str | None
    minimum: float | None
    maximum: float | None
    level: str
    decision: str
    verdict: str
    reason: str
    matches: tuple[Match, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"matches": [asdict(m) for m in self.matches]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        matches = tuple(Match(**(m | {"ci": tuple(m["ci"]) if m.get("ci") else None})) for m in data["matches"])
        return cls(**(data | {"matches": matches}))


@dataclass(frozen=True)
class GateOutcome:
    verdict: str  # "pass" or "fail"
    counts: dict[str, int]
    inconclusive_policy: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_metric_names(thresholds: list[Threshold], known: dict[str, set[str]], *, label: str = "thresholds") -> None:
    """Refuse a threshold naming a metric (or check) that no check measures."""
    every = sorted(set().union(*known.values())) if known else []
    for index, threshold in enumerate(thresholds):
        where = f"{label}[{index}]" if label == "thresholds" else f"{label} {threshold.metric!r}"
        if threshold.check is not None and threshold.check not in known:
            raise ConfigError(f"{where}: unknown check {threshold.check!r}", hint=f"choose from {', '.join(known)}")
        names = known.get(threshold.check, set()) if threshold.check else set(every)
        if threshold.metric not in names:
            close = difflib.get_close_matches(threshold.metric, sorted(names), n=4, cutoff=0.5)
            suggestion = f"closest: {', '.join(close)}" if close else f"valid names include {', '.join(sorted(names)[:12])}"
            raise ConfigError(f"{where}: unknown metric {threshold.metric!r}", hint=suggestion)


def judge(
    measurements: tuple[Measurement, ...], thresholds: list[Threshold], settings: GateSettings
) -> tuple[tuple[Finding, ...], GateOutcome]:
    findings = tuple(_judge_one(measurements, t, t.decision or settings.decision) for t in thresholds)
    counts = {verdict: sum(f.verdict == verdict for f in findings) for verdict in SEVERITY}
    failing = counts["fail"] > 0 or (settings.inconclusive == "fail" and counts["inconclusive"] > 0)
    return findings, GateOutcome("fail" if failing else "pass", counts, settings.inconclusive)


def _judge_one(measurements: tuple[Measurement, ...], threshold: Threshold, decision: str) -> Finding:
    matched = select(measurements, threshold)
    matches = tuple(_judge_measurement(m, threshold, decision) for m in matched)
    if not matches:
        verdict, reason = "inconclusive", "no measurement matched: the metric was not measured for this model or data"
    else:
        worst = max(matches, key=lambda m: SEVERITY[m.verdict])
        verdict = worst.verdict
        where = f" for {_group_text(worst.group)}" if worst.group else ""
        reason = worst.reason + (where if len(matches) > 1 and verdict != "pass" else "")
    return Finding(
        threshold=threshold.text, metric=threshold.metric, check=threshold.check, minimum=threshold.min,
        maximum=threshold.max, level=threshold.level, decision=decision, verdict=verdict, reason=reason,
        matches=matches,
    )


def select(measurements: tuple[Measurement, ...], threshold: Threshold) -> list[Measurement]:
    """The measurements a threshold speaks about (module docstring)."""
    candidates = [
        m for m in measurements
        if m.metric == threshold.metric
        and (threshold.check is None or m.check == threshold.check)
        and _params_match(threshold.params, m.params)
    ]
    if isinstance(threshold.group, dict):
        return [m for m in candidates if m.group == threshold.group]
    if threshold.group == "each":
        return [m for m in candidates if m.group is not None]
    overall = [m for m in candidates if m.group is None]
    return overall or candidates


def _params_match(wanted: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        if key not in actual:
            return False
        if not _same(value, actual[key]):
            return False
    return True


def _same(wanted: Any, found: Any) -> bool:
    """Equal as numbers when both read as numbers (class=1 matches "1"), else as text."""
    try:
        wanted_number, found_number = float(wanted), float(found)
    except (TypeError, ValueError):
        return str(found) == str(wanted)
    return abs(found_number - wanted_number) <= 1e-9 * max(1.0, abs(wanted_number))


def _judge_measurement(m: Measurement, threshold: Threshold, decision: str) -> Match:
    def match(verdict: str, reason: str) -> Match:
        return Match(m.group, m.params, m.value, m.ci, verdict, reason)

    if m.value is None:
        return match("inconclusive", m.note or "undefined value")
    if m.status == "insufficient":
        return match("inconclusive", m.note or "rests on a group below min_group_size")
    violated = "warn" if threshold.level == "warn" else "fail"
    bound = _bound_text(threshold)
    if decision == "interval" and m.ci is not None:
        low_ok, high_ok = _satisfies(m.ci[0], threshold), _satisfies(m.ci[1], threshold)
        interval = f"[{m.ci[0]:.4g}, {m.ci[1]:.4g}]"
        if low_ok and high_ok:
            return match("pass", f"the whole interval {interval} satisfies {bound}")
        if not _interval_touches(m.ci, threshold):
            return match(violated, f"the whole interval {interval} violates {bound}")
        return match("inconclusive", f"the interval {interval} straddles {bound}")
    suffix = " (no interval to judge; judged on the value)" if decision == "interval" else ""
    if _satisfies(m.value, threshold):
        return match("pass", f"{m.value:.4g} satisfies {bound}{suffix}")
    return match(violated, f"{m.value:.4g} violates {bound}{suffix}")


def _satisfies(value: float, threshold: Threshold) -> bool:
    return (threshold.min is None or value >= threshold.min) and (threshold.max is None or value <= threshold.max)


def _interval_touches(ci: tuple[float, float], threshold: Threshold) -> bool:
    """Whether any point of the interval satisfies the bound."""
    low = max(ci[0], threshold.min if threshold.min is not None else ci[0])
    high = min(ci[1], threshold.max if threshold.max is not None else ci[1])
    return low <= high


def _bound_text(threshold: Threshold) -> str:
    parts = [f">= {threshold.min:g}"] if threshold.min is not None else []
    parts += [f"<= {threshold.max:g}"] if threshold.max is not None else []
    return " and ".join(parts)


def _group_text(group: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (group or {}).items())
