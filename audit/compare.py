"""Compare two audits: every shared measurement side by side, its change, and regressions.

Significance: each interval gives a standard error under a normal approximation,
``se = width / (2 z)`` with ``z`` the normal quantile of the interval's level; a change is
significant when ``|delta| > z_0.975 * sqrt(se_b^2 + se_c^2)``. Without both intervals
significance is unknown (None).

Regressions: ``max_regression: {allowance: amount}`` bounds how much a metric may get worse.
An allowance is written in the threshold syntax without a bound: ``accuracy``,
``equalized_odds_difference(sensitive=age)``, ``accuracy[sex=F]``; like a threshold it judges
the overall value, or every group where the metric has none, and the most specific allowance
that matches a measurement applies. "Worse" depends on the metric (:func:`direction`). With
``decision: point`` a worsening above the allowance fails; with ``decision: interval`` it fails
only when it is also significant, and otherwise warns (judged on the point when an interval is
missing). A value undefined in one audit is inconclusive, which fails the comparison when
``gate.inconclusive`` is ``fail`` (the default), as for thresholds.

Small groups: a measurement that rests on a group below ``min_group_size`` (status
``insufficient``) in either audit is left out of regression verdicts and of significance by
default (``small_groups="exclude"``); it is still listed, with its values and why it was not
judged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from pydantic import ValidationError

from audit.catalogue import catalogue
from audit.config import Threshold
from audit.errors import ConfigError
from audit.gate import select
from audit.results import AuditResult, Measurement


@dataclass(frozen=True)
class Change:
    check: str
    metric: str
    group: dict[str, str] | None
    params: dict[str, Any]
    baseline: float | None
    candidate: float | None
    baseline_ci: tuple[float, float] | None
    candidate_ci: tuple[float, float] | None
    delta: float | None
    significant: bool | None
    worsening: float | None  # > 0: the candidate is worse by this much
    allowed: float | None
    verdict: str | None  # pass / warn / fail / inconclusive where an allowance applies
    allowance: str | None = None  # the allowance that applied, as written
    note: str | None = None  # why a change was not judged, or why it only warns


@dataclass(frozen=True)
class Comparison:
    baseline: str
    candidate: str
    changes: tuple[Change, ...]
    only_baseline: int
    only_candidate: int
    warnings: tuple[str, ...]
    verdict: str  # pass / fail

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in {"fail", "inconclusive", "warn"}]

    @property
    def left_out(self) -> list[Change]:
        """Changes in groups too small to judge: listed, never judged."""
        return [c for c in self.changes if c.note == SMALL_GROUP_NOTE]


def direction(metric: str, params: dict[str, Any]) -> str | None:
    """higher, lower, zero (closer to 0 is better), one (closer to 1) or None (no better side): the catalogue's."""
    return catalogue().direction(metric, params)


def worsening(metric: str, params: dict[str, Any], before: float, after: float) -> float | None:
    way = direction(metric, params)
    if way == "higher":
        return before - after
    if way == "lower":
        return after - before
    if way == "zero":
        return abs(after) - abs(before)
    if way == "one":
        return abs(after - 1) - abs(before - 1)
    return None


SMALL_GROUP_NOTE = "rests on a group below min_group_size: listed, not judged"


def allowance_scope(text: str) -> Threshold:
    """An allowance's key (``metric(param=v)[column=value]``) as the threshold it scopes like."""
    try:
        return Threshold.model_validate(f"{text} >= 0")
    except ValidationError:
        raise ConfigError(
            f"max_regression {text!r}: write it as METRIC, METRIC(param=value) or METRIC[column=value]",
            hint="e.g. 'equalized_odds_difference(sensitive=age)'",
        ) from None


def check_allowances(allowances: dict[str, float]) -> None:
    """Refuse an allowance on a metric with no better side (a count, a selection rate)."""
    for text in allowances:
        scope = allowance_scope(text)
        if direction(scope.metric, {}) is None and direction(scope.metric, scope.params) is None:
            raise ConfigError(
                f"max_regression {text!r}: this metric has no better direction, so it cannot regress",
                hint="bound it with a threshold instead, e.g. 'selection_rate[sex=F] >= 0.2'",
            )


def compare(
    baseline: AuditResult,
    candidate: AuditResult,
    *,
    max_regression: dict[str, float],
    decision: str = "point",
    inconclusive: str = "fail",
    small_groups: str = "exclude",
) -> Comparison:
    before = {_key(m): m for m in baseline.measurements}
    after = {_key(m): m for m in candidate.measurements}
    shared = [key for key in after if key in before]
    level = float(candidate.provenance.get("ci_level") or 0.95)
    applies = _allowances_by_key(shared, after, max_regression)
    changes = tuple(
        _change(before[k], after[k], applies.get(k), decision, level, small_groups) for k in shared
    )
    failing = any(c.verdict == "fail" or (c.verdict == "inconclusive" and inconclusive == "fail") for c in changes)
    return Comparison(
        baseline=baseline.name,
        candidate=candidate.name,
        changes=changes,
        only_baseline=len(set(before) - set(after)),
        only_candidate=len(set(after) - set(before)),
        warnings=tuple(_mismatches(baseline, candidate, max_regression, changes)),
        verdict="fail" if failing else "pass",
    )


def _allowances_by_key(
    keys: list[tuple], measurements: dict[tuple, Measurement], allowances: dict[str, float]
) -> dict[tuple, tuple[str, float]]:
    """Which allowance judges each measurement: as a threshold would select, the most specific wins."""
    chosen: dict[tuple, tuple[str, float]] = {}
    rank: dict[tuple, tuple[int, float]] = {}
    shared = tuple(measurements[k] for k in keys)
    by_identity = {id(measurements[k]): k for k in keys}
    for text, amount in allowances.items():
        scope = allowance_scope(text)
        specificity = len(scope.params) + (len(scope.group) if isinstance(scope.group, dict) else 0)
        for m in select(shared, scope):
            key = by_identity[id(m)]
            better = (-specificity, amount)  # more specific first, then the stricter
            if key not in rank or better < rank[key]:
                rank[key], chosen[key] = better, (text, amount)
    return chosen


def _key(m: Measurement) -> tuple:
    # params that describe a value rather than identify it (extreme groups, a bin's mean) may differ between runs
    params = catalogue().identity(m.metric, m.params)
    return (m.check, m.metric, json.dumps(m.group, sort_keys=True), json.dumps(params, sort_keys=True))


def _change(
    b: Measurement, c: Measurement, allowance: tuple[str, float] | None, decision: str, level: float, small_groups: str
) -> Change:
    delta = None if b.value is None or c.value is None else c.value - b.value
    small = small_groups == "exclude" and "insufficient" in (b.status, c.status)
    significant = None if small else _significant(delta, b.ci, c.ci, level)
    worse = None if delta is None else worsening(c.metric, c.params, b.value, c.value)
    text, allowed = allowance or (None, None)
    verdict, note = None, SMALL_GROUP_NOTE if small else None
    if allowed is not None and not small and direction(c.metric, c.params) is not None:
        verdict, note = _regression_verdict(worse, allowed, significant, decision)
    return Change(
        check=c.check, metric=c.metric, group=c.group, params=c.params, baseline=b.value, candidate=c.value,
        baseline_ci=b.ci, candidate_ci=c.ci, delta=delta, significant=significant, worsening=worse,
        allowed=allowed, verdict=verdict, allowance=text, note=note,
    )


def _regression_verdict(worse: float | None, allowed: float, significant: bool | None, decision: str) -> tuple[str, str | None]:
    if worse is None:
        return "inconclusive", "undefined in one of the audits"
    if worse <= allowed + 1e-12:  # 0.80 - 0.78 is 0.020000000000000018 in floating point
        return "pass", None
    if decision == "interval" and significant is False:
        return "warn", "worse beyond the allowance, but not significant given both intervals"
    if decision == "interval" and significant is None:
        return "fail", "no intervals to judge: judged on the values"
    return "fail", None


def _significant(delta, ci_b, ci_c, level: float) -> bool | None:
    if delta is None or ci_b is None or ci_c is None or None in (*ci_b, *ci_c):
        return None
    z_level = NormalDist().inv_cdf(0.5 + level / 2)
    se = math.hypot((ci_b[1] - ci_b[0]) / (2 * z_level), (ci_c[1] - ci_c[0]) / (2 * z_level))
    if se == 0:
        return delta != 0
    return abs(delta) > NormalDist().inv_cdf(0.975) * se


def _mismatches(baseline: AuditResult, candidate: AuditResult, allowances, changes) -> list[str]:
    notes = []
    files_b = baseline.provenance.get("files", {})
    files_c = candidate.provenance.get("files", {})
    for role in ("data", "labels", "metadata", "features_file"):
        if role in files_b and role in files_c and files_b[role]["sha256"] != files_c[role]["sha256"]:
            notes.append(
                f"the {role} file differs between the audits (SHA-256 {files_b[role]['sha256'][:12]} vs "
                f"{files_c[role]['sha256'][:12]}): changes mix model and data differences"
            )
    if baseline.data.get("rows_used") != candidate.data.get("rows_used"):
        notes.append(f"the audits used different row counts ({baseline.data.get('rows_used')} vs {candidate.data.get('rows_used')})")
    used = {c.allowance for c in changes}
    notes += [f"max_regression names {text!r}, which matched no measurement the audits share" for text in allowances if text not in used]
    return notes
