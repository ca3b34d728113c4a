"""Compare two audits: every shared measurement side by side, its change, and regressions.

Significance: each interval gives a standard error under a normal approximation,
``se = width / (2 z)`` with ``z`` the normal quantile of the interval's level; a change is
significant when ``|delta| > z_0.975 * sqrt(se_b^2 + se_c^2)``. Without both intervals
significance is unknown (None).

Regressions: ``max_regression: {metric: allowed}`` bounds how much a metric may get worse.
"Worse" depends on the metric (:func:`direction`). With ``decision: point`` a worsening above
the allowance fails; with ``decision: interval`` it fails only when also significant and is
inconclusive otherwise; an inconclusive verdict fails the comparison when ``gate.inconclusive``
is ``fail`` (the default), as for thresholds.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from audit.catalogue import catalogue
from audit.errors import ConfigError
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
    verdict: str | None  # pass / fail / inconclusive where an allowance applies


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
        return [c for c in self.changes if c.verdict in {"fail", "inconclusive"}]


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


def check_allowances(allowances: dict[str, float]) -> None:
    """Refuse an allowance on a metric with no better side (a count, a selection rate)."""
    for metric in allowances:
        if direction(metric, {}) is None:
            raise ConfigError(
                f"max_regression {metric!r}: this metric has no better direction, so it cannot regress",
                hint="bound it with a threshold instead, e.g. 'selection_rate[sex=F] >= 0.2'",
            )


def compare(
    baseline: AuditResult,
    candidate: AuditResult,
    *,
    max_regression: dict[str, float],
    decision: str = "point",
    inconclusive: str = "fail",
) -> Comparison:
    before = {_key(m): m for m in baseline.measurements}
    after = {_key(m): m for m in candidate.measurements}
    shared = [key for key in after if key in before]
    level = float(candidate.provenance.get("ci_level") or 0.95)
    judged = _judged_keys(shared, after, max_regression)
    changes = tuple(
        _change(before[k], after[k], max_regression if k in judged else {}, decision, level) for k in shared
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


def _judged_keys(keys: list[tuple], measurements: dict[tuple, Measurement], allowances: dict[str, float]) -> set[tuple]:
    """As for thresholds: an allowance judges a metric's overall value, or each group if it has none."""
    judged: set[tuple] = set()
    for metric in allowances:
        named = [k for k in keys if measurements[k].metric == metric]
        overall = [k for k in named if measurements[k].group is None]
        judged.update(overall or named)
    return judged


def _key(m: Measurement) -> tuple:
    # params that describe a value rather than identify it (extreme groups, a bin's mean) may differ between runs
    params = catalogue().identity(m.metric, m.params)
    return (m.check, m.metric, json.dumps(m.group, sort_keys=True), json.dumps(params, sort_keys=True))


def _change(b: Measurement, c: Measurement, allowances: dict[str, float], decision: str, level: float) -> Change:
    delta = None if b.value is None or c.value is None else c.value - b.value
    significant = _significant(delta, b.ci, c.ci, level)
    worse = None if delta is None else worsening(c.metric, c.params, b.value, c.value)
    allowed = allowances.get(c.metric)
    verdict = None
    if allowed is not None and direction(c.metric, c.params) is not None:
        if worse is None:
            verdict = "inconclusive"  # undefined in one of the audits
        elif worse <= allowed + 1e-12:  # 0.80 - 0.78 is 0.020000000000000018 in floating point
            verdict = "pass"
        elif decision == "interval" and significant is False:
            verdict = "inconclusive"
        else:
            verdict = "fail"
    return Change(
        check=c.check, metric=c.metric, group=c.group, params=c.params, baseline=b.value, candidate=c.value,
        baseline_ci=b.ci, candidate_ci=c.ci, delta=delta, significant=significant, worsening=worse,
        allowed=allowed, verdict=verdict,
    )


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
    measured = {c.metric for c in changes}
    notes += [f"max_regression names {metric!r}, which neither audit shares" for metric in allowances if metric not in measured]
    return notes
