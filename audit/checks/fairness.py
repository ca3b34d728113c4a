"""The fairness check: group metrics, disparities and their intervals, for every grouping.

Groupings: each sensitive column, then the crosses the spec asks for (default: all). For each
group: count and every rate of :data:`audit.groups.RATES` (one-vs-rest per class for
multiclass models), and ROC-AUC and calibration error where scores exist. Disparities follow
fairlearn's definitions exactly (``between_groups``: max - min and min / max over the groups
where the rate is defined), plus each group against the spec's reference group (signed
difference, plain ratio).

Two deliberate differences from fairlearn, both in the reader's favour:
- a rate with a zero denominator (no positives in a group) is *undefined*, reported with its
  reason and left out of the extremes; fairlearn scores it 0, which invents a disparity;
- a group below ``min_group_size`` is kept (fairlearn's numbers are unchanged) but marked
  ``insufficient``, and so is any disparity resting on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audit import groups, score_stats, stats
from audit.context import AuditContext
from audit.groups import RATES, WHY_UNDEFINED, Grouping
from audit.results import Measurement

CHECK = "fairness"

DISPARITIES = {
    "demographic_parity": ("selection_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
    "equal_opportunity": ("true_positive_rate",),
    "predictive_parity": ("positive_predictive_value",),
    "false_positive_rate": ("false_positive_rate",),
    "false_negative_rate": ("false_negative_rate",),
}

METRICS = (
    "count", *RATES, *score_stats.METRICS,
    *(f"{name}_{kind}" for name in DISPARITIES for kind in ("difference", "ratio")),
)


def disparity_statistics(counts: np.ndarray, reference: int | None) -> dict[str, np.ndarray]:
    """Group rates and every disparity of ``(..., groups, targets, 4)`` counts.

    One function for the point estimate and the bootstrap replicates, so they cannot drift.
    Keys: each rate ``(..., groups, targets)``; ``{disparity}_difference`` and ``_ratio``
    between groups ``(..., targets)``; with a reference group, ``vs:{disparity}_difference``
    and ``vs:{disparity}_ratio`` ``(..., groups, targets)``.
    """
    rates = groups.rates(counts)
    out: dict[str, np.ndarray] = dict(rates)
    for disparity, bases in DISPARITIES.items():
        spans = [groups.between_groups(np.moveaxis(rates[b], -2, -1)) for b in bases]
        out[f"{disparity}_difference"] = _worst([s["difference"] for s in spans], np.maximum)
        out[f"{disparity}_ratio"] = _worst([s["ratio"] for s in spans], np.minimum)
        if reference is not None:
            out |= _against_reference(disparity, [rates[b] for b in bases], reference)
    return out


def _worst(values: list[np.ndarray], pick) -> np.ndarray:
    # equalized odds: the larger difference and the smaller ratio of its two rates, as fairlearn;
    # np.maximum/minimum keep NaN, so it is undefined when either rate's disparity is
    result = values[0]
    for value in values[1:]:
        result = pick(result, value)
    return result


def _against_reference(disparity: str, bases: list[np.ndarray], reference: int) -> dict[str, np.ndarray]:
    differences, ratios = [], []
    for rate in bases:
        base = rate[..., reference : reference + 1, :]
        differences.append(rate - base)
        ratios.append(stats.divide(rate, np.broadcast_to(base, rate.shape)))
    if len(bases) == 1:
        return {f"vs:{disparity}_difference": differences[0], f"vs:{disparity}_ratio": ratios[0]}
    # several rates: the largest absolute gap, and the ratio furthest from 1 (taken below 1)
    below_one = [np.fmin(r, stats.divide(np.ones_like(r), r)) for r in ratios]
    return {
        f"vs:{disparity}_difference": _worst([np.abs(d) for d in differences], np.maximum),
        f"vs:{disparity}_ratio": _worst(below_one, np.minimum),
    }


@dataclass(frozen=True)
class _Setting:
    targets: tuple[int, ...]  # the positive class of each one-vs-rest view
    classes: tuple[str, ...]
    multiclass: bool
    min_group_size: int
    level: float

    def params(self, target: int) -> dict[str, Any]:
        return {"class": self.classes[target]} if self.multiclass else {}


def run(ctx: AuditContext) -> list[Measurement]:
    data = ctx.data
    if data.sensitive.empty:
        ctx.warn("no sensitive columns declared: the fairness check has nothing to compare")
        return []
    config = ctx.config.checks.fairness
    setting = _Setting(
        targets=(data.positive_index,) if data.is_binary else tuple(range(len(data.classes))),
        classes=data.classes,
        multiclass=not data.is_binary,
        min_group_size=config.min_group_size,
        level=ctx.config.statistics.ci_level,
    )
    cells = groups.code_cells(data.sensitive)
    tables = groups.cell_tables(cells, data.labels, ctx.predictions.decisions, len(data.classes))
    chosen = groups.groupings(cells, groups.crosses(cells.columns, config.intersections))
    references = [_reference_index(ctx, grouping) for grouping in chosen]
    replicates = _replicates(tables, chosen, references, setting, ctx)
    units = _score_units(ctx, cells)
    out: list[Measurement] = []
    for grouping, reference, grouping_replicates in zip(chosen, references, replicates):
        counts = groups.one_vs_rest(groups.group_tables(tables, grouping))[..., list(setting.targets), :]
        point = disparity_statistics(counts, reference)
        sizes = counts[:, 0, :].sum(axis=-1).astype(int)
        _warn_about_groups(ctx, grouping, sizes, setting.min_group_size)
        denominators = {name: bottom for name, (_, bottom) in groups.rate_parts(counts).items()}
        emit = _Emitter(grouping, point, grouping_replicates, sizes, reference, setting, denominators)
        out += emit.group_measurements() + emit.disparities()
        if units is not None:
            out += _group_scores(ctx, units, grouping, sizes, setting)
    return out


def _replicates(tables, chosen, references, setting, ctx) -> list[dict[str, np.ndarray]]:
    """Bootstrap replicates of every statistic of every grouping, from one stratified draw."""
    collected: list[dict[str, list[np.ndarray]]] = [{} for _ in chosen]
    rng = np.random.default_rng(ctx.seed)
    for chunk in groups.stratified_replicates(tables, ctx.config.statistics.bootstrap, rng):
        for store, grouping, reference in zip(collected, chosen, references):
            counts = groups.one_vs_rest(groups.group_tables(chunk, grouping))[..., list(setting.targets), :]
            for name, values in disparity_statistics(counts, reference).items():
                store.setdefault(name, []).append(values)
    return [{name: np.concatenate(parts) for name, parts in store.items()} for store in collected]


def _reference_index(ctx: AuditContext, grouping: Grouping) -> int | None:
    wanted = {s.column: s.reference for s in ctx.config.data.sensitive}
    target = {column: wanted.get(column) for column in grouping.columns}
    if any(value is None for value in target.values()):
        return None
    return next((i for i, label in enumerate(grouping.labels) if label == target), None)


def _warn_about_groups(ctx: AuditContext, grouping: Grouping, sizes: np.ndarray, minimum: int) -> None:
    if grouping.size == 1:
        ctx.warn(f"every row is in one group of '{grouping.name}' ({_label(grouping.labels[0])}): no disparity can be measured across it")
    small = [f"{_label(label)} (n={size})" for label, size in zip(grouping.labels, sizes) if size < minimum]
    if small and grouping.size > 1:
        shown = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
        ctx.warn(f"{len(small)} group(s) of '{grouping.name}' have fewer than {minimum} rows and are marked insufficient: {shown}")


def _label(group: dict[str, str]) -> str:
    return ", ".join(f"{column}={value}" for column, value in group.items())


class _Emitter:
    """Turns one grouping's point values and replicates into Measurements."""

    def __init__(self, grouping, point, replicates, sizes, reference, setting: _Setting, denominators) -> None:
        self.grouping, self.point, self.replicates = grouping, point, replicates
        self.sizes, self.reference, self.setting = sizes, reference, setting
        self.denominators = denominators
        self.small = sizes < setting.min_group_size

    def _ci(self, name: str, index: tuple) -> tuple[float, float] | None:
        if name not in self.replicates:
            return None
        low, high = stats.percentile_interval(self.replicates[name][(slice(None), *index)], self.setting.level)
        return None if np.isnan(low) else (low, high)

    def group_measurements(self) -> list[Measurement]:
        out = []
        for g, label in enumerate(self.grouping.labels):
            status = "insufficient" if self.small[g] else None
            note = f"insufficient: {self.sizes[g]} rows, fewer than {self.setting.min_group_size}" if status else None
            out.append(Measurement(CHECK, "count", float(self.sizes[g]), group=label, n=int(self.sizes[g]), status=status, note=note))
            for t, target in enumerate(self.setting.targets):
                for rate in RATES:
                    value = float(self.point[rate][g, t])
                    params = self.setting.params(target)
                    if np.isnan(value):
                        why = f"undefined: {WHY_UNDEFINED.get(rate, 'empty group')}"
                        out.append(Measurement(CHECK, rate, None, group=label, n=int(self.sizes[g]), params=params, note=why, status="undefined"))
                        continue
                    ci, exact = self._rate_interval(rate, g, t, value)
                    out.append(Measurement(CHECK, rate, value, group=label, ci=ci, n=int(self.sizes[g]), params=params, note=note or exact, status=status))
        return out

    def _rate_interval(self, rate: str, g: int, t: int, value: float) -> tuple[tuple[float, float] | None, str | None]:
        """The bootstrap interval; for a rate of 0 or 1, the exact Clopper-Pearson one.

        A rate of 0 (or 1) stays 0 in every resample, so its bootstrap interval collapses to a
        point and claims a certainty the data do not give. The exact binomial interval for
        x = 0 of d is [0, 1 - (alpha/2)^(1/d)] (for x = d, its mirror image).
        """
        ci = self._ci(rate, (g, t))
        if ci is None or ci[0] != ci[1] or value not in (0.0, 1.0):
            return ci, None
        denominator = float(self.denominators[rate][g, t])
        edge = (1 - self.setting.level) / 2
        bound = edge ** (1 / denominator)
        exact = (0.0, 1 - bound) if value == 0.0 else (bound, 1.0)
        return exact, "interval: exact binomial (Clopper-Pearson), as a rate of 0 or 1 does not vary under resampling"

    def disparities(self) -> list[Measurement]:
        out = []
        for disparity, bases in DISPARITIES.items():
            for t, target in enumerate(self.setting.targets):
                for kind in ("difference", "ratio"):
                    out.append(self._between(disparity, bases, kind, t, target))
                if self.reference is not None:
                    out += self._against_reference(disparity, t, target)
        return out

    def _between(self, disparity: str, bases: tuple[str, ...], kind: str, t: int, target: int) -> Measurement:
        name = f"{disparity}_{kind}"
        value = float(self.point[name][t])
        params = {"sensitive": self.grouping.name, "method": "between_groups"} | self.setting.params(target)
        extremes = self._extremes(bases, t, kind)
        params |= {k: _label(self.grouping.labels[v]) for k, v in extremes.items()}
        total = int(self.sizes.sum())
        if np.isnan(value):
            note = f"undefined: {self._why_undefined(bases, t)}"
            return Measurement(CHECK, name, None, n=total, params=params, note=note, status="undefined")
        weak = [self.grouping.labels[v] for v in set(extremes.values()) if self.small[v]]
        status = "insufficient" if weak else None
        note = f"insufficient: rests on small group(s) {'; '.join(_label(w) for w in weak)}" if weak else None
        return Measurement(CHECK, name, value, ci=self._ci(name, (t,)), n=total, params=params, note=note, status=status)

    def _why_undefined(self, bases: tuple[str, ...], t: int) -> str:
        for base in bases:
            values = self.point[base][:, t]
            if np.count_nonzero(~np.isnan(values)) < 2:
                return f"fewer than two groups of '{self.grouping.name}' have a defined {base}"
        return f"the highest {' or '.join(bases)} is 0, so the ratio is 0/0"

    def _extremes(self, bases: tuple[str, ...], t: int, kind: str) -> dict[str, int]:
        """The highest and lowest group of the rate that sets this disparity.

        For equalized odds that is the rate with the larger difference, or with the smaller
        ratio: the two can differ, so each kind names its own pair.
        """
        spans = []
        for base in bases:
            high, low, high_at, low_at = groups.extremes(self.point[base][:, t])
            if high_at >= 0:
                gap = high - low if kind == "difference" else -(low / high if high > 0 else np.inf)
                spans.append((gap, int(high_at), int(low_at)))
        if not spans:
            return {}
        _, high_at, low_at = max(spans)
        return {"highest_group": high_at, "lowest_group": low_at}

    def _against_reference(self, disparity: str, t: int, target: int) -> list[Measurement]:
        reference_label = _label(self.grouping.labels[self.reference])
        out = []
        for g, label in enumerate(self.grouping.labels):
            if g == self.reference:
                continue
            for kind in ("difference", "ratio"):
                name = f"{disparity}_{kind}"
                value = float(self.point[f"vs:{name}"][g, t])
                params = {"sensitive": self.grouping.name, "method": "to_reference", "reference": reference_label}
                params |= self.setting.params(target)
                n = int(self.sizes[g] + self.sizes[self.reference])
                if np.isnan(value):
                    note = f"undefined: the rate is undefined (or zero, for a ratio) in {_label(label)} or in the reference group"
                    out.append(Measurement(CHECK, name, None, group=label, n=n, params=params, note=note, status="undefined"))
                    continue
                weak = self.small[g] or self.small[self.reference]
                note = "insufficient: a group in this comparison is smaller than min_group_size" if weak else None
                out.append(
                    Measurement(CHECK, name, value, group=label, ci=self._ci(f"vs:{name}", (g, t)), n=n,
                                params=params, note=note, status="insufficient" if weak else None)
                )
        return out


def _score_units(ctx: AuditContext, cells: groups.Cells) -> score_stats.Units | None:
    """Rows collapsed by (cell, score, label) after one sort; None when no group scores are wanted."""
    data, predictions = ctx.data, ctx.predictions
    if not (ctx.config.checks.fairness.group_scores and data.is_binary and predictions.scores is not None):
        return None
    losses = None
    if predictions.probabilities is not None:
        losses = stats.log_loss_terms(data.labels, predictions.probabilities)
    return score_stats.collapse(predictions.scores, data.labels == data.positive_index, cells.codes, losses)


def _group_scores(ctx: AuditContext, units: score_stats.Units, grouping: Grouping, sizes, setting: _Setting) -> list[Measurement]:
    """ROC-AUC, average precision, log loss and calibration error within each group (see score_stats)."""
    found = score_stats.group_statistics(units, grouping.cell_to_group, grouping.size,
                                         ctx.config.checks.fairness.calibration_bins)
    with_intervals = ctx.config.statistics.bootstrap > 0
    out = []
    for g, label in enumerate(grouping.labels):
        for metric in found.values:
            out.append(_score_measurement(metric, found, g, label, int(sizes[g]), setting, with_intervals))
    return out


def _score_measurement(metric, found: score_stats.GroupScores, g, label, size, setting: _Setting, with_intervals) -> Measurement:
    value = float(found.values[metric][g])
    if np.isnan(value):
        why = "only one class in the group" if metric == "roc_auc" else "no positives in the group"
        return Measurement(CHECK, metric, None, group=label, n=size, note=f"undefined: {why}", status="undefined")
    small = size < setting.min_group_size
    ci = found.interval(metric, g, setting.level) if with_intervals else None
    note = f"insufficient: {size} rows, fewer than {setting.min_group_size}" if small else score_stats.INTERVAL_NOTE
    return Measurement(CHECK, metric, value, group=label, ci=ci, n=size, note=note, status="insufficient" if small else None)
