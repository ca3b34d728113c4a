"""Thresholds -> findings: pure functions over a result's measurements.

A threshold matches measurements by metric name, and optionally check, group and params (the
threshold's params must be a subset of the measurement's). Without a group it judges the
overall value (group None); where a metric has no overall value (per-group rates), it judges
every group. Each matched measurement gets a verdict; the threshold's verdict is the worst.

Verdicts: pass, warn, fail, inconclusive. ``point`` judges the value. ``interval`` passes only
when the whole confidence interval satisfies the bound, fails only when the whole interval
violates it, and is otherwise inconclusive. A value that is undefined, or rests on a group
smaller than min_group_size, is inconclusive with the reason. A violated ``level: warn``
threshold warns instead of failing.

A threshold judges every measurement it matches: its verdict is the worst of theirs (fail if
any fails; inconclusive only if none fails), and its reason names the measurement that decided
it (group, class, attack, epsilon): the one with the worst verdict and, among equals, the one
closest to (or furthest beyond) the bound. A threshold that matched nothing is an ``error``,
never a verdict: it names the values that were measured.

The gate outcome is ``error`` when a check could not run or a threshold matched nothing (exit
2), else ``fail`` on any fail, or on any inconclusive when ``gate.inconclusive: fail`` (the
default), else ``pass``; its ``level`` adds ``warn`` for a pass with warnings (a warn verdict,
or an inconclusive one counted as warn), which every output shows in amber.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import Any

from audit.config import GateSettings, Threshold
from audit.errors import ConfigError
from audit.results import CheckFailure, Measurement

SEVERITY = {"pass": 0, "warn": 1, "inconclusive": 2, "fail": 3, "error": 4}
# params a reader needs to tell one measurement from another; the others are named only when
# they differ between the matches (and never the ones that describe rather than identify)
IDENTITY_PARAMS = ("class", "attack", "eps", "sensitive", "method", "feature")
DESCRIPTIVE_PARAMS = {"highest_group", "lowest_group", "most_fragile_group", "least_fragile_group", "mean_predicted",
                      "reference", "norm", "units"}


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
    deciding: int | None = None  # index of the match that decided the verdict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"matches": [asdict(m) for m in self.matches]}

    @property
    def decisive(self) -> Match | None:
        """The measurement that decided the verdict (the worst), None when nothing matched."""
        return None if self.deciding is None else self.matches[self.deciding]

    @property
    def violations(self) -> tuple[Match, ...]:
        """Every match that failed, warned or could not be judged, worst first."""
        bad = [m for m in self.matches if m.verdict != "pass"]
        return tuple(sorted(bad, key=lambda m: -SEVERITY[m.verdict]))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        matches = tuple(Match(**(m | {"ci": tuple(m["ci"]) if m.get("ci") else None})) for m in data["matches"])
        return cls(**(data | {"matches": matches}))


@dataclass(frozen=True)
class GateOutcome:
    verdict: str  # "pass", "fail" or "error" (a check could not run, a threshold matched nothing)
    counts: dict[str, int]
    inconclusive_policy: str
    level: str = ""  # pass, warn (passed with warnings), fail or error: what the banners show
    errors: tuple[str, ...] = ()  # why the outcome is "error"

    def __post_init__(self) -> None:
        # result.json written before levels existed: the verdict is the level
        if not self.level:
            object.__setattr__(self, "level", self.verdict)
        object.__setattr__(self, "errors", tuple(self.errors))

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def headline(self) -> str:
        """The outcome in words, the same in every output."""
        return GATE_HEADLINES[self.level]

    @property
    def word(self) -> str:
        """The outcome in one capitalised word or phrase, for the console and summary.md."""
        return GATE_WORDS[self.level]

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


GATE_WORDS = {"pass": "PASSED", "warn": "PASSED WITH WARNINGS", "fail": "FAILED", "error": "ERROR"}
GATE_HEADLINES = {
    "pass": "Gate passed", "warn": "Gate passed with warnings", "fail": "Gate failed",
    "error": "Gate error: the audit is incomplete",
}


def judge(
    measurements: tuple[Measurement, ...],
    thresholds: list[Threshold],
    settings: GateSettings,
    *,
    failures: tuple[CheckFailure, ...] = (),
) -> tuple[tuple[Finding, ...], GateOutcome]:
    findings = tuple(_judge_one(measurements, t, t.decision or settings.decision) for t in thresholds)
    return findings, outcome(findings, settings.inconclusive, failures)


def outcome(findings: tuple[Finding, ...], policy: str, failures: tuple[CheckFailure, ...] = ()) -> GateOutcome:
    """The gate over its findings: error, fail, pass with warnings or pass (module docstring)."""
    counts = {verdict: sum(f.verdict == verdict for f in findings) for verdict in SEVERITY}
    errors = tuple(f"check {f.check} could not run: {f.message}" for f in failures)
    errors += tuple(f"{f.threshold}: {f.reason}" for f in findings if f.verdict == "error")
    if errors:
        return GateOutcome("error", counts, policy, "error", errors)
    if counts["fail"] or (policy == "fail" and counts["inconclusive"]):
        return GateOutcome("fail", counts, policy, "fail")
    warned = counts["warn"] or (policy == "warn" and counts["inconclusive"])
    return GateOutcome("pass", counts, policy, "warn" if warned else "pass")


def _judge_one(measurements: tuple[Measurement, ...], threshold: Threshold, decision: str) -> Finding:
    matched = select(measurements, threshold)
    matches = tuple(_judge_measurement(m, threshold, decision) for m in matched)
    deciding = None
    if not matches:
        verdict, reason = "error", "matched no measurement; " + measured_values(measurements, threshold)
    else:
        deciding = max(range(len(matches)), key=lambda i: _badness(matches[i], threshold, decision))
        worst = matches[deciding]
        verdict = worst.verdict
        where = _identity_text(worst, threshold, matches)
        prefix = f"worst of {len(matches)}: " if len(matches) > 1 else ""
        reason = prefix + worst.reason + (f" for {where}" if where else "")
    return Finding(
        threshold=threshold.text, metric=threshold.metric, check=threshold.check, minimum=threshold.min,
        maximum=threshold.max, level=threshold.level, decision=decision, verdict=verdict, reason=reason,
        matches=matches, deciding=deciding,
    )


def _badness(match: Match, threshold: Threshold, decision: str) -> tuple[int, float]:
    """Larger is worse: the verdict first, then how far the value is on the wrong side of the bound."""
    if match.value is None:
        return SEVERITY[match.verdict], math.inf
    low, high = match.ci if decision == "interval" and match.ci is not None else (match.value, match.value)
    margins = [low - threshold.min] if threshold.min is not None else []
    margins += [threshold.max - high] if threshold.max is not None else []
    return SEVERITY[match.verdict], -min(margins)


def _identity_text(match: Match, threshold: Threshold, matches: tuple[Match, ...]) -> str:
    """What tells the deciding measurement apart: its group and identifying params."""
    parts = [] if isinstance(threshold.group, dict) else [f"{k}={v}" for k, v in (match.group or {}).items()]
    for key, value in match.params.items():
        if key in threshold.params or key in DESCRIPTIVE_PARAMS or isinstance(value, (dict, list)):
            continue
        varies = len({str(m.params.get(key)) for m in matches}) > 1
        if key in IDENTITY_PARAMS or varies:
            parts.append(f"{key}={plain(value)}")
    return ", ".join(parts)


def plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def measured_values(measurements: tuple[Measurement, ...], threshold: Threshold) -> str:
    """What a threshold could have matched: the measured params and groups, closest first."""
    named = [m for m in measurements if m.metric == threshold.metric and (threshold.check is None or m.check == threshold.check)]
    if not named:
        return f"{threshold.metric!r} was not measured (a check that did not run, or not for this model or data)"
    notes = []
    for key, wanted in threshold.params.items():
        found = sorted({plain(m.params[key]) for m in named if key in m.params and not isinstance(m.params[key], (dict, list))})
        notes.append(_valid_text(f"param {key}", plain(wanted), found) if found else f"param {key}: not a param of this metric")
    for column, wanted in (threshold.group or {}).items() if isinstance(threshold.group, dict) else ():
        found = sorted({m.group[column] for m in named if m.group and column in m.group})
        notes.append(_valid_text(f"group column {column}", wanted, found) if found else f"group column {column}: none measured")
    if threshold.group == "each":
        notes.append(f"{threshold.metric!r} has no per-group values" if all(m.group is None for m in named) else "")
    return "; ".join(n for n in notes if n) or "no measurement has exactly these params and group together"


def _valid_text(what: str, wanted: str, found: list[str]) -> str:
    if wanted in found:
        return ""
    shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
    return f"{what}: {wanted!r} not measured; measured: {shown} (closest: {closest(wanted, found)})"


def closest(wanted: Any, options: list[str]) -> str | None:
    """The option nearest to what was written, ignoring case first (f -> F, pgd -> PGD)."""
    text = plain(wanted)
    same_case = [o for o in options if o.lower() == text.lower()]
    if same_case:
        return same_case[0]
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.0)
    return lowered[close[0]] if close else None


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
        if not same_value(value, actual[key]):
            return False
    return True


def same_value(wanted: Any, found: Any) -> bool:
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
