"""The fairness check: group metrics, disparities and their intervals, for every grouping.

Groupings: each sensitive column, then the crosses the spec asks for (default: all). For each
group: count and every rate of :func:`audit.groups.rate_parts` in the catalogue (one-vs-rest per class for
multiclass models), and ROC-AUC and calibration error where scores exist. Disparities follow
fairlearn's definitions exactly (``between_groups``: max - min and min / max over the groups
where the rate is defined), plus each group against the spec's reference group (signed
difference, plain ratio).

Deliberate differences from fairlearn, each in the reader's favour:
- a rate with a zero denominator (no positives in a group) is *undefined*, reported with its
  reason and left out of the extremes; fairlearn scores it 0, which invents a disparity;
- small and missing groups inform, they do not decide: with ``small_groups: exclude`` (the
  default) a group below ``min_group_size``, and with ``missing: exclude`` (the default) the
  ``(missing)`` group, is reported with its counts, rates and intervals but left out of the
  between-group disparities, which name it (``left_out``). With ``include`` the disparities are
  fairlearn's over every group, and one resting on a small group is ``insufficient``;
- a rate counts its own denominator, not the group's rows: a disparity resting on a rate whose
  denominator (positives for TPR/FNR, negatives for FPR/TNR, predicted positives for PPV) is
  below ``min_denominator`` (default ``min_group_size``) is ``insufficient`` and says which
  group and denominator;
- intervals never collapse where the truth is uncertain: a rate whose bootstrap interval is a
  point, or whose denominator is small, gets the exact Clopper-Pearson interval, and a
  disparity resting on such a rate gets the hull of its bootstrap interval and the bounds
  implied by its two groups' exact intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audit import groups, score_stats, stats
from audit.catalogue import Metric
from audit.checks import performance
from audit.context import AuditContext
from audit.data import MISSING_GROUP
from audit.groups import Grouping
from audit.results import Measurement, Reason, small_group

CHECK = "fairness"

def _rate(name, label, short, denominator, better, glossary="", *, column=False) -> Metric:
    term = label if short == label else f"{label} ({short})"
    return Metric(name, label, glossary, better=better, denominator=denominator, short=short, column=column,
                  term=term if glossary else None)


RATE_CATALOGUE = (
    _rate("selection_rate", "selection rate", "selection rate", "rows", None,
          "Share of a group that the model predicts positive (assigns the positive class).", column=True),
    _rate("base_rate", "base rate", "base rate", "rows", None,
          "Share of a group that is truly positive in the data, whatever the model predicts."),
    _rate("true_positive_rate", "true positive rate", "TPR", "actual positives", "higher",
          "Of a group's truly positive examples, the share the model predicts positive (recall within the group).",
          column=True),
    _rate("false_positive_rate", "false positive rate", "FPR", "actual negatives", "lower",
          "Of a group's truly negative examples, the share the model wrongly predicts positive.", column=True),
    _rate("positive_predictive_value", "positive predictive value", "PPV", "predicted positives", "higher",
          "Of a group's examples predicted positive, the share that truly are (precision within the group).", column=True),
    _rate("false_negative_rate", "false negative rate", "FNR", "actual positives", "lower",
          "Of a group's truly positive examples, the share the model misses; 1 minus the TPR."),
    _rate("negative_predictive_value", "negative predictive value", "NPV", "predicted negatives", "higher",
          "Of a group's examples predicted negative, the share that truly are."),
    _rate("true_negative_rate", "true negative rate", "TNR", "actual negatives", "higher"),
)
TOP1_CATALOGUE = (
    _rate("top1_accuracy", "top-1 accuracy", "top-1 accuracy", "rows", "higher",
          "Multiclass models: share of a group's examples whose predicted class is the true class (the per-group "
          "accuracy; the one-vs-rest accuracy of a class counts correct rejections too).", column=True),
    _rate("error_rate", "error rate", "error rate", "rows", "lower",
          "Multiclass models: share of a group's examples given a wrong class; 1 minus the top-1 accuracy.", column=True),
)
"""The one-vs-rest rates of :func:`audit.groups.rate_parts` that are not performance metrics too."""


@dataclass(frozen=True)
class Disparity:
    name: str
    title: str  # its name for readers
    bases: tuple[str, ...]  # the rate(s) it compares
    glossary: str
    compares: str | None = None  # how a reader should read several bases


DISPARITY_LIST = (
    Disparity("demographic_parity", "Demographic parity", ("selection_rate",),
              "Every group receives positive predictions at the same rate (equal selection rates), whatever its true outcomes."),
    Disparity("equalized_odds", "Equalized odds", ("true_positive_rate", "false_positive_rate"),
              "Every group has the same true positive rate and the same false positive rate; the worse of the two gaps is reported.",
              compares="TPR and FPR, the worse of the two"),
    Disparity("equal_opportunity", "Equal opportunity", ("true_positive_rate",),
              "Every group has the same true positive rate: truly positive examples are found equally often in each group."),
    Disparity("predictive_parity", "Predictive parity", ("positive_predictive_value",),
              "A positive prediction is equally reliable in every group (equal positive predictive value)."),
    Disparity("false_positive_rate", "False positive rate parity", ("false_positive_rate",), ""),
    Disparity("false_negative_rate", "False negative rate parity", ("false_negative_rate",), ""),
)
DISPARITIES = {d.name: d.bases for d in DISPARITY_LIST}


def _disparity_metrics(d: Disparity) -> tuple[Metric, Metric]:
    common = {"describes": ("highest_group", "lowest_group", "left_out"), "compares": d.bases, "term": d.title.lower(),
              "glossary": d.glossary, "short": d.compares}
    return (
        Metric(f"{d.name}_difference", d.title, better="lower", to_reference="zero", unit="difference", **common),
        Metric(f"{d.name}_ratio", d.title, better="higher", to_reference="one", unit="ratio", **common),
    )


CATALOGUE = (
    Metric("count", "rows in the group", unit="count"),
    *RATE_CATALOGUE[:5],
    *(m for m in performance.CATALOGUE if m.name in ("accuracy", "roc_auc")),  # one entry, whichever check emits it
    *TOP1_CATALOGUE,
    *RATE_CATALOGUE[5:],
    *(m for m in performance.CATALOGUE if m.name in ("f1", "average_precision", "log_loss", "expected_calibration_error")),
    *(m for d in DISPARITY_LIST for m in _disparity_metrics(d)),
)
METRICS = tuple(m.name for m in CATALOGUE)
TOP1 = tuple(m.name for m in TOP1_CATALOGUE)


def _rate_entries() -> dict[str, Metric]:
    """The catalogue's group rates (those with a denominator), by name; read at run time."""
    return {m.name: m for m in CATALOGUE if m.denominator and m.name not in TOP1}


def disparity_statistics(counts: np.ndarray, reference: int | None, included: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Group rates and every disparity of ``(..., groups, targets, 4)`` counts.

    One function for the point estimate and the bootstrap replicates, so they cannot drift.
    Keys: each rate ``(..., groups, targets)``; ``{disparity}_difference`` and ``_ratio``
    between groups ``(..., targets)``, over the ``included`` groups (default: all); with a
    reference group, ``vs:{disparity}_difference`` and ``vs:{disparity}_ratio``
    ``(..., groups, targets)``.
    """
    rates = groups.rates(counts)
    out: dict[str, np.ndarray] = dict(rates)
    if included is None:
        included = np.ones(counts.shape[-3], dtype=bool)
    for disparity, bases in DISPARITIES.items():
        spans = [groups.between_groups(np.moveaxis(np.where(included[:, None], rates[b], np.nan), -2, -1)) for b in bases]
        out[f"{disparity}_difference"] = _worst([s["difference"] for s in spans], np.maximum)
        out[f"{disparity}_ratio"] = _worst([s["ratio"] for s in spans], np.minimum)
        if reference is not None:
            out |= _against_reference(disparity, [rates[b] for b in bases], reference)
    return out


def top1_statistics(tables: np.ndarray) -> dict[str, np.ndarray]:
    """Top-1 accuracy and error rate of ``(..., groups, C, C)`` tables, ``(..., groups)``; NaN for an empty group."""
    hits = np.trace(tables, axis1=-2, axis2=-1)
    accuracy = stats.divide(hits, tables.sum(axis=(-2, -1)))
    return {"top1_accuracy": accuracy, "error_rate": 1 - accuracy}


def _statistics(tables: np.ndarray, grouping: Grouping, reference: int | None, included: np.ndarray,
                setting: "_Setting") -> dict[str, np.ndarray]:
    """Every statistic of one grouping from cell tables ``(..., cells, C, C)``: the point's and each replicate's."""
    by_group = groups.group_tables(tables, grouping)
    out = disparity_statistics(groups.one_vs_rest(by_group)[..., list(setting.targets), :], reference, included)
    return out | top1_statistics(by_group) if setting.multiclass else out


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
    min_denominator: int = 0
    small_groups: str = "include"
    missing: str = "group"

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
        min_denominator=config.min_denominator or config.min_group_size,
        small_groups=config.small_groups,
        missing=config.missing,
    )
    cells = groups.code_cells(data.sensitive)
    tables = groups.cell_tables(cells, data.labels, ctx.predictions.decisions, len(data.classes), data.weights)
    chosen = groups.groupings(cells, groups.crosses(cells.columns, config.intersections))
    references = [_reference_index(ctx, grouping) for grouping in chosen]
    included = [included_groups(grouping, _sizes(tables, grouping), setting) for grouping in chosen]
    replicates = _replicates(tables, chosen, references, included, setting, ctx)
    units = _score_units(ctx, cells)
    out: list[Measurement] = []
    for grouping, reference, kept, grouping_replicates in zip(chosen, references, included, replicates):
        counts = groups.one_vs_rest(groups.group_tables(tables, grouping))[..., list(setting.targets), :]
        point = _statistics(tables, grouping, reference, kept, setting)
        sizes = counts[:, 0, :].sum(axis=-1).astype(int)
        _warn_about_groups(ctx, grouping, sizes, setting.min_group_size)
        emit = _Emitter(grouping, point, grouping_replicates, sizes, reference, setting, counts, kept)
        out += emit.group_measurements() + emit.disparities()
        if units is not None:
            out += _group_scores(ctx, units, grouping, sizes, setting)
    return out


def _sizes(tables: np.ndarray, grouping: Grouping) -> np.ndarray:
    return groups.group_tables(tables, grouping).sum(axis=(-2, -1)).astype(int)


def included_groups(grouping: Grouping, sizes: np.ndarray, setting: _Setting) -> np.ndarray:
    """Which groups take part in the between-group disparities, under the spec's policy.

    ``small_groups: exclude`` leaves out groups below ``min_group_size``; ``missing: exclude``
    the ``(missing)`` group (any group with a missing value in one of its columns). Group
    sizes are fixed under the stratified bootstrap, so one mask serves every replicate.
    """
    keep = np.ones(grouping.size, dtype=bool)
    if setting.small_groups == "exclude":
        keep &= sizes >= setting.min_group_size
    if setting.missing == "exclude":
        keep &= np.array([MISSING_GROUP not in label.values() for label in grouping.labels])
    return keep


def _replicates(tables, chosen, references, included, setting, ctx) -> list[dict[str, np.ndarray]]:
    """Bootstrap replicates of every statistic of every grouping, from one stratified draw."""
    collected: list[dict[str, list[np.ndarray]]] = [{} for _ in chosen]
    rng = np.random.default_rng(ctx.seed)
    for chunk in groups.stratified_replicates(tables, ctx.config.statistics.bootstrap, rng):
        for store, grouping, reference, kept in zip(collected, chosen, references, included):
            for name, values in _statistics(chunk, grouping, reference, kept, setting).items():
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

    def __init__(self, grouping, point, replicates, sizes, reference, setting: _Setting, counts, included) -> None:
        self.grouping, self.point, self.replicates = grouping, point, replicates
        self.sizes, self.reference, self.setting = sizes, reference, setting
        self.parts = groups.rate_parts(counts)
        self.denominators = groups.denominators(counts)
        self.small = sizes < setting.min_group_size
        self.included = included
        # the one-vs-rest rates the catalogue names, in the engine's order: a new rate needs its entry only
        self.rates = [name for name in self.parts if name in _rate_entries()]

    def _ci(self, name: str, index: tuple) -> tuple[float, float] | None:
        if name not in self.replicates:
            return None
        low, high = stats.percentile_interval(self.replicates[name][(slice(None), *index)], self.setting.level)
        return None if np.isnan(low) else (low, high)

    def _few(self, rate: str, g: int, t: int) -> bool:
        """The rate's own denominator is below min_denominator (row-based rates: the group rule)."""
        return _rate_entries()[rate].denominator != "rows" and self.denominators[rate][g, t] < self.setting.min_denominator

    def _few_text(self, rate: str, g: int, t: int) -> str:
        count = int(self.denominators[rate][g, t])
        return f"{_label(self.grouping.labels[g])}: {rate} rests on {count} {_rate_entries()[rate].denominator}, fewer than {self.setting.min_denominator}"

    def group_measurements(self) -> list[Measurement]:
        out = []
        for g, label in enumerate(self.grouping.labels):
            status = "insufficient" if self.small[g] else None
            note = f"insufficient: {self.sizes[g]} rows, fewer than {self.setting.min_group_size}" if status else None
            out.append(Measurement(CHECK, "count", float(self.sizes[g]), group=label, n=int(self.sizes[g]), status=status, note=note,
                                   reason=small_group(status)))
            out += [self._top1(name, g, label, status, note) for name in TOP1 if name in self.point]
            for t, target in enumerate(self.setting.targets):
                out += [self._rate(rate, g, t, target, label, status, note) for rate in self.rates]
        return out

    def _rate(self, rate: str, g: int, t: int, target: int, label, status, note) -> Measurement:
        value = float(self.point[rate][g, t])
        params = self.setting.params(target)
        n = int(self.sizes[g])
        if np.isnan(value):
            why = f"undefined: {_rate_entries()[rate].undefined_reason}"
            return Measurement(CHECK, rate, None, group=label, n=n, params=params, note=why, status="undefined",
                               reason=Reason.NO_DENOMINATOR)
        ci, exact = self._rate_interval(rate, g, t)
        notes = [note] if note else []
        if self._few(rate, g, t) and not status:
            status = "insufficient"
            notes = [f"insufficient: {int(self.denominators[rate][g, t])} {_rate_entries()[rate].denominator}, fewer than {self.setting.min_denominator}"]
        if exact:
            notes.append(EXACT_NOTE)
        return Measurement(CHECK, rate, value, group=label, ci=ci, n=n, params=params, note="; ".join(notes) or None, status=status,
                           reason=small_group(status))

    def _top1(self, name: str, g: int, label: dict[str, str], status: str | None, note: str | None) -> Measurement:
        """A multiclass group's top-1 accuracy or error rate: no class, as it judges every class at once."""
        value, size = float(self.point[name][g]), float(self.sizes[g])
        ci, exact = stats.rate_interval(self._ci(name, (g,)), round(value * size), size, self.setting.level,
                                        min_trials=self.setting.min_denominator)
        notes = ([note] if note else []) + ([EXACT_NOTE] if exact else [])
        return Measurement(CHECK, name, value, group=label, ci=ci, n=int(size), note="; ".join(notes) or None,
                           status=status, reason=small_group(status))

    def _rate_interval(self, rate: str, g: int, t: int) -> tuple[tuple[float, float] | None, bool]:
        """The bootstrap interval, or the exact Clopper-Pearson one where the bootstrap says too much.

        A rate of 0 (or 1) stays 0 in every resample, so its bootstrap interval collapses to a
        point and claims a certainty the data do not give; a rate on a few rows has a
        percentile interval that undercovers. Both get the exact binomial interval.
        """
        top, bottom = (float(part[g, t]) for part in self.parts[rate])
        return stats.rate_interval(self._ci(rate, (g, t)), top, bottom, self.setting.level, min_trials=self.setting.min_denominator)

    def _exact(self, rate: str, g: int, t: int) -> tuple[float, float]:
        """The rate's exact binomial interval (a disparity is propagated from these)."""
        top, bottom = (float(part[g, t]) for part in self.parts[rate])
        low, high = stats.binomial_interval(np.array(top), np.array(bottom), self.setting.level)
        return (float(low), float(high))

    def disparities(self) -> list[Measurement]:
        out = []
        for disparity, bases in DISPARITIES.items():
            for t, target in enumerate(self.setting.targets):
                for kind in ("difference", "ratio"):
                    out.append(self._between(disparity, bases, kind, t, target))
                if self.reference is not None:
                    out += self._against_reference(disparity, bases, t, target)
        return out

    def _left_out(self) -> str | None:
        """The groups left out of the between-group disparities, by name and size."""
        names = [f"{_label(label)} (n={int(self.sizes[g])})" for g, label in enumerate(self.grouping.labels) if not self.included[g]]
        return "; ".join(names) or None

    def _between(self, disparity: str, bases: tuple[str, ...], kind: str, t: int, target: int) -> Measurement:
        name = f"{disparity}_{kind}"
        value = float(self.point[name][t])
        params = {"sensitive": self.grouping.name, "method": "between_groups"} | self.setting.params(target)
        params |= {"small_groups": self.setting.small_groups, "missing": self.setting.missing}  # the policy that chose the groups
        extremes = self._extremes(bases, t, kind)
        params |= {k: _label(self.grouping.labels[v]) for k, v in extremes.items()}
        left_out = self._left_out()
        if left_out:
            params["left_out"] = left_out
        total = int(self.sizes[self.included].sum())
        tail = f"; left out: {left_out}" if left_out else ""
        if np.isnan(value):
            reason, why = self._why_undefined(bases, t)
            return Measurement(CHECK, name, None, n=total, params=params, note=f"undefined: {why}{tail}", status="undefined",
                               reason=reason)
        pairs = self._pairs(bases, t)
        weak = sorted({_label(self.grouping.labels[g]) for _, high, low in pairs for g in (high, low) if self.small[g]})
        few = [self._few_text(base, g, t) for base, high, low in pairs for g in (high, low) if self._few(base, g, t)]
        notes = [f"rests on small group(s) {'; '.join(weak)}"] if weak else []
        notes += few
        ci = self._ci(name, (t,))
        if ci is not None and (few or ci[0] == ci[1]):
            ci = stats.hull(ci, self._between_bounds(kind, pairs, t))
        note = ("insufficient: " + "; ".join(notes) + tail) if notes else (left_out and f"left out: {left_out}")
        status = "insufficient" if notes else None
        return Measurement(CHECK, name, value, ci=ci, n=total, params=params, note=note or None, status=status,
                           reason=small_group(status))

    def _pairs(self, bases: tuple[str, ...], t: int) -> list[tuple[str, int, int]]:
        """For each rate of a disparity, its highest and lowest included group."""
        out = []
        for base in bases:
            _, _, high_at, low_at = groups.extremes(np.where(self.included, self.point[base][:, t], np.nan))
            if high_at >= 0:
                out.append((base, int(high_at), int(low_at)))
        return out

    def _between_bounds(self, kind: str, pairs, t: int) -> tuple[float, float]:
        """The disparity's bounds from its extreme groups' exact intervals (worst over its rates)."""
        bounds = []
        for base, high, low in pairs:
            top, bottom = self._exact(base, high, t), self._exact(base, low, t)
            if kind == "difference":
                low_end, high_end = stats.difference_bounds(top, bottom)
                bounds.append((max(0.0, low_end), high_end))
            else:
                low_end, high_end = stats.ratio_bounds(bottom, top)
                bounds.append((low_end, min(1.0, high_end)))
        pick = max if kind == "difference" else min
        return (pick(b[0] for b in bounds), pick(b[1] for b in bounds))

    def _why_undefined(self, bases: tuple[str, ...], t: int) -> tuple[Reason, str]:
        for base in bases:
            values = np.where(self.included, self.point[base][:, t], np.nan)
            if np.count_nonzero(~np.isnan(values)) < 2:
                return Reason.FEW_GROUPS, f"fewer than two groups of '{self.grouping.name}' have a defined {base}"
        return Reason.ZERO_OVER_ZERO, f"the highest {' or '.join(bases)} is 0, so the ratio is 0/0"

    def _extremes(self, bases: tuple[str, ...], t: int, kind: str) -> dict[str, int]:
        """The highest and lowest group of the rate that sets this disparity.

        For equalized odds that is the rate with the larger difference, or with the smaller
        ratio: the two can differ, so each kind names its own pair.
        """
        spans = []
        for base, high_at, low_at in self._pairs(bases, t):
            high, low = self.point[base][high_at, t], self.point[base][low_at, t]
            gap = high - low if kind == "difference" else -(low / high if high > 0 else np.inf)
            spans.append((gap, high_at, low_at))
        if not spans:
            return {}
        _, high_at, low_at = max(spans)
        return {"highest_group": high_at, "lowest_group": low_at}

    def _against_reference(self, disparity: str, bases: tuple[str, ...], t: int, target: int) -> list[Measurement]:
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
                    out.append(Measurement(CHECK, name, None, group=label, n=n, params=params, note=note, status="undefined",
                                               reason=Reason.NO_DENOMINATOR))
                    continue
                few = [self._few_text(base, h, t) for base in bases for h in (g, self.reference) if self._few(base, h, t)]
                notes = ["a group in this comparison is smaller than min_group_size"] if self.small[g] or self.small[self.reference] else []
                notes += few
                ci = self._ci(f"vs:{name}", (g, t))
                if ci is not None and (few or ci[0] == ci[1]):
                    ci = stats.hull(ci, self._reference_bounds(kind, bases, g, t))
                out.append(
                    Measurement(CHECK, name, value, group=label, ci=ci, n=n, params=params,
                                note=("insufficient: " + "; ".join(notes)) if notes else None,
                                status="insufficient" if notes else None,
                                reason=Reason.SMALL_GROUP if notes else None)
                )
        return out

    def _reference_bounds(self, kind: str, bases: tuple[str, ...], g: int, t: int) -> tuple[float, float] | None:
        """Bounds of a group-to-reference comparison from the two groups' exact intervals.

        One rate: the signed difference, the plain ratio. Several (equalized odds): the
        largest absolute difference and the ratio furthest below 1, as the point value.
        """
        bounds = []
        for base in bases:
            mine, theirs = self._exact(base, g, t), self._exact(base, self.reference, t)
            if kind == "difference":
                low, high = stats.difference_bounds(mine, theirs)
                bounds.append((low, high) if len(bases) == 1 else _absolute(low, high))
            else:
                low, high = stats.ratio_bounds(mine, theirs)
                bounds.append((low, high) if len(bases) == 1 else _below_one(low, high))
        if any(not np.isfinite(b[1]) for b in bounds):
            return None  # the reference's rate may be 0: no finite bound on the ratio
        pick = max if kind == "difference" else min
        return (pick(b[0] for b in bounds), pick(b[1] for b in bounds))


EXACT_NOTE = "interval: exact binomial (Clopper-Pearson), as the bootstrap interval was a point or the denominator small"


def _absolute(low: float, high: float) -> tuple[float, float]:
    """Bounds of |x| for x in [low, high]."""
    if low <= 0 <= high:
        return (0.0, max(-low, high))
    return (min(abs(low), abs(high)), max(abs(low), abs(high)))


def _below_one(low: float, high: float) -> tuple[float, float]:
    """Bounds of min(r, 1/r) for r in [low, high] (r > 0)."""
    if low <= 1 <= high:
        return (min(low, 1 / high if high > 0 else 0.0), 1.0)
    if high < 1:
        return (low, high)
    return (1 / high, 1 / low)


def _score_units(ctx: AuditContext, cells: groups.Cells) -> score_stats.Units | None:
    """Rows collapsed by (cell, score, label) after one sort; None when no group scores are wanted."""
    data, predictions = ctx.data, ctx.predictions
    if not (ctx.config.checks.fairness.group_scores and data.is_binary and predictions.scores is not None):
        return None
    losses = None
    if predictions.probabilities is not None:
        losses = stats.log_loss_terms(data.labels, predictions.probabilities)
    return score_stats.collapse(predictions.scores, data.labels == data.positive_index, cells.codes, losses, data.weights)


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
        reason = Reason.ONE_CLASS if metric == "roc_auc" else Reason.NO_DENOMINATOR
        return Measurement(CHECK, metric, None, group=label, n=size, note=f"undefined: {why}", status="undefined",
                           reason=reason)
    ci = found.interval(metric, g, setting.level) if with_intervals else None
    # a ranking metric rests on the rarer class: count it as the rates count their denominator
    rarer = int(min(found.positives[g], found.negatives[g]))
    if size < setting.min_group_size:
        note = f"insufficient: {size} rows, fewer than {setting.min_group_size}"
    elif metric in ("roc_auc", "average_precision") and rarer < setting.min_denominator:
        note = f"insufficient: {rarer} rows of the rarer class, fewer than {setting.min_denominator}"
    else:
        return Measurement(CHECK, metric, value, group=label, ci=ci, n=size, note=score_stats.INTERVAL_NOTE)
    return Measurement(CHECK, metric, value, group=label, ci=ci, n=size, note=note, status="insufficient",
                       reason=Reason.SMALL_GROUP)
