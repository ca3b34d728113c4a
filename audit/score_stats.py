"""ROC-AUC, average precision, log loss and calibration error of many groups, from one sort.

Why not resample rows: a bootstrap costs (replicates x rows) for every group of every
grouping, which at 1,000,000 rows is minutes, while every one of these statistics depends on
the rows only through how many rows of each label sit at each distinct score. So:

1. **One sort.** :func:`collapse` sorts the scores once (decreasing, stable, as scikit-learn
   ranks them) and collapses the rows into *units*: rows with the same cell (combination of
   sensitive values), the same score and the same label. Rows of a unit are interchangeable
   for every statistic here (the loss and the calibration bin follow from score and label).
2. **Counts per group.** A grouping maps cells to groups; :func:`group_statistics` orders the
   units by group (a radix sort of small integers, linear) keeping the score order inside
   each group, so each group's positives and negatives per distinct score, cumulative sums and
   calibration bins come from flat, segment-wise sums over the units: every group of a
   grouping in one vectorised pass, no loop over groups or rows.
3. **Intervals without resampling.** The standard error is the infinitesimal jackknife (the
   delta method on the row weights: ``var = n / (n - 1) * sum_i (d stat / d w_i)^2``), which is
   what a row bootstrap's variance converges to, and each unit's derivative has a closed form
   from the same cumulative sums. For ROC-AUC this is DeLong's variance (placement values,
   with the usual ``n - 1`` per class). The interval is the normal one, clipped to the
   metric's range. Tests compare the coverage with a slow row bootstrap.

With a single positive or negative (or row) there is no spread to estimate and the interval
is the whole range [0, 1]. A statistic that does not vary under small reweighting (ROC-AUC or average precision of 1: all
positives above all negatives) would get a zero-width interval; it gets instead the exact
one-sided binomial bound on ``min(positives, negatives)`` independent pairs, as the rates do
for 0 and 1, because the data do not make perfection certain.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from audit import stats

METRICS = ("roc_auc", "average_precision", "log_loss", "expected_calibration_error")
INTERVAL_NOTE = "interval: normal, infinitesimal-jackknife standard error (DeLong for ROC-AUC), no resampling"


@dataclass(frozen=True)
class Units:
    """Rows collapsed by (cell, score, label), in decreasing score order (ties by cell, label).

    ``rank`` is the position of the unit's score among the distinct scores (0 = highest).
    ``loss`` (per row of the unit) and ``confidence`` are None when the scores are not
    probabilities.
    """

    rank: np.ndarray
    cell: np.ndarray
    positive: np.ndarray  # bool
    count: np.ndarray  # rows in the unit, int64
    score: np.ndarray
    loss: np.ndarray | None

    @property
    def probabilities(self) -> bool:
        return self.loss is not None


def collapse(scores: np.ndarray, positive: np.ndarray, cells: np.ndarray | None = None,
             losses: np.ndarray | None = None, weights: np.ndarray | None = None) -> Units:
    """Sort the rows by decreasing score once and collapse equal (cell, score, label) rows.

    ``losses``: each row's log loss when ``scores`` are positive-class probabilities (then they
    are the calibration confidence too); None otherwise. ``cells``: small non-negative integers,
    or None for one group. ``weights``: how many rows each entry stands for (a merged summary's
    counts; None: one each). The units, and so every statistic, do not depend on the order of
    the entries, nor on whether equal rows come one by one or as one weighted entry.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive).ravel().astype(bool)
    cells = np.zeros(scores.size, dtype=np.int64) if cells is None else np.asarray(cells, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    rank = np.concatenate([[0], np.cumsum(ranked[1:] != ranked[:-1])]) if ranked.size else ranked.astype(np.int64)
    width = int(cells.max()) + 1 if cells.size else 1
    # rows are already in rank order: ordering by (rank, cell, label) only sorts within ties
    key = (rank * width + cells[order]) * 2 + positive[order]
    within = np.argsort(key, kind="stable")
    key = key[within]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else np.zeros(0, np.int64)
    first = order[within[starts]]
    if weights is None:
        count = np.diff(np.append(starts, key.size)).astype(np.int64)
    else:
        count = np.add.reduceat(np.asarray(weights, dtype=np.int64)[order[within]], starts) if key.size else np.zeros(0, np.int64)
    return Units(
        rank=rank[within[starts]],
        cell=cells[first],
        positive=positive[first],
        count=count,
        score=scores[first],
        loss=None if losses is None else np.asarray(losses, dtype=np.float64)[first],
    )


@dataclass(frozen=True)
class GroupScores:
    """Per group of one grouping: each metric's value and standard error, and the counts."""

    values: dict[str, np.ndarray]  # metric -> (groups,), NaN where undefined
    errors: dict[str, np.ndarray]  # metric -> (groups,) standard error
    positives: np.ndarray
    negatives: np.ndarray

    def interval(self, metric: str, group: int, level: float) -> tuple[float, float] | None:
        """Normal interval clipped to the metric's range; the binomial bound where it would be a point."""
        value, error = float(self.values[metric][group]), float(self.errors[metric][group])
        high_end = np.inf if metric == "log_loss" else 1.0
        if np.isnan(value) or (np.isnan(error) and metric == "log_loss"):
            return None
        ranking = metric in ("roc_auc", "average_precision")
        if np.isnan(error) or (ranking and min(self.positives[group], self.negatives[group]) < 2):
            return (0.0, 1.0)  # one positive (or negative, or row): no spread to estimate
        if error == 0.0 and ranking and value in (0.0, 1.0):
            pairs = int(min(self.positives[group], self.negatives[group]))
            bound = ((1 - level) / 2) ** (1 / max(pairs, 1))
            return (bound, 1.0) if value == 1.0 else (0.0, 1 - bound)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return (max(0.0, value - z * error), min(high_end, value + z * error))


def group_statistics(units: Units, cell_to_group: np.ndarray, groups: int, bins: int) -> GroupScores:
    """Every metric of every group of one grouping, with standard errors (module docstring)."""
    group = np.asarray(cell_to_group, dtype=np.int64)[units.cell]
    order = np.argsort(group.astype(_small_int(groups)), kind="stable")  # radix: linear, keeps score order
    view = _Sorted(group[order], units.rank[order], units.positive[order], units.count[order].astype(np.float64))
    values, errors = _ranking(view)
    if units.probabilities:
        values["log_loss"], errors["log_loss"] = _log_loss(view, units.loss[order])
        ece = _calibration(view, units.score[order], bins)
        values["expected_calibration_error"], errors["expected_calibration_error"] = ece
    return GroupScores(
        {name: view.spread(v, groups, np.nan) for name, v in values.items()},
        {name: view.spread(v, groups, np.nan) for name, v in errors.items()},
        view.spread(view.group_sum(view.pos_count), groups, 0.0),
        view.spread(view.group_sum(view.neg_count), groups, 0.0),
    )


def _small_int(groups: int) -> type:
    return np.uint8 if groups <= 2**8 else np.uint16 if groups <= 2**16 else np.int64


class _Sorted:
    """Units ordered by group, then decreasing score: sums per group and per score level.

    Groups and levels (a group's rows at one distinct score) are contiguous runs, so every sum
    is one ``reduceat`` and every cumulative sum one ``cumsum`` less each group's offset. Only
    groups with rows appear (``present``); :meth:`spread` puts them back in place.
    """

    def __init__(self, group, rank, positive, count):
        self.positive, self.count = positive, count
        self.pos_count = np.where(positive, count, 0.0)
        self.neg_count = count - self.pos_count
        new_group = np.ones(group.size, dtype=bool)
        new_group[1:] = group[1:] != group[:-1]
        new_level = new_group.copy()
        new_level[1:] |= rank[1:] != rank[:-1]
        self.present = group[new_group]
        self.unit_group = np.cumsum(new_group) - 1  # index into present, per unit
        self.level = np.cumsum(new_level) - 1  # level of each unit
        self.level_starts = np.flatnonzero(new_level)
        self.level_group = self.unit_group[self.level_starts]
        self.group_level_starts = np.flatnonzero(new_group[self.level_starts])
        self.group_starts = np.flatnonzero(new_group)
        self.n = self.group_sum(count)

    def spread(self, values: np.ndarray, groups: int, fill: float) -> np.ndarray:
        out = np.full(groups, fill)
        out[self.present] = values
        return out

    def group_sum(self, per_unit: np.ndarray) -> np.ndarray:
        return np.add.reduceat(per_unit, self.group_starts) if per_unit.size else np.zeros(0)

    def level_sum(self, per_unit: np.ndarray) -> np.ndarray:
        return np.add.reduceat(per_unit, self.level_starts) if per_unit.size else np.zeros(0)

    def level_totals(self, per_level: np.ndarray) -> np.ndarray:
        """Each level's group total."""
        return np.add.reduceat(per_level, self.group_level_starts)[self.level_group]

    def cumulative(self, per_level: np.ndarray) -> np.ndarray:
        """Inclusive cumulative sum over the levels of each group, in score order."""
        total = np.cumsum(per_level)
        before = np.concatenate([[0.0], total])[self.group_level_starts]
        return total - before[self.level_group]

    def variance(self, gradient: np.ndarray) -> np.ndarray:
        """Infinitesimal jackknife variance per group from each unit's per-row derivative."""
        squares = self.group_sum(self.count * gradient**2)
        mean = stats.divide(self.group_sum(self.count * gradient), self.n)
        return stats.divide((squares - self.n * mean**2) * self.n, self.n - 1)


def _ranking(view: _Sorted) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """ROC-AUC (Mann-Whitney, ties 1/2) and average precision, with DeLong / jackknife errors."""
    pos, neg = view.level_sum(view.pos_count), view.level_sum(view.neg_count)
    cum_pos, cum_neg = view.cumulative(pos), view.cumulative(neg)
    total_pos, total_neg = view.group_sum(view.pos_count), view.group_sum(view.neg_count)
    tp, tn = total_pos[view.level_group], total_neg[view.level_group]
    # placement values: a positive's share of negatives below it, a negative's of positives above
    below = stats.divide(tn - cum_neg + neg / 2, tn)
    above = stats.divide(cum_pos - pos / 2, tp)
    by_group = view.group_level_starts
    auc = stats.divide(np.add.reduceat(pos * below, by_group), total_pos)
    auc[(total_pos == 0) | (total_neg == 0)] = np.nan
    auc_at = auc[view.level_group]
    spread_pos = np.add.reduceat(pos * (below - auc_at) ** 2, by_group)
    spread_neg = np.add.reduceat(neg * (above - auc_at) ** 2, by_group)
    delong = stats.divide(spread_pos, total_pos * (total_pos - 1)) + stats.divide(spread_neg, total_neg * (total_neg - 1))

    joint = cum_pos + cum_neg  # every level holds a row: never 0
    precision = cum_pos / joint
    ap = stats.divide(np.add.reduceat(pos * precision, by_group), total_pos)
    # derivatives of A = sum_k P_k prec_k: a positive at level m adds prec_m and raises T_k
    # for k >= m; a negative raises F_k for k >= m (T, F: cumulative positives, negatives)
    weight = pos / joint**2
    after_pos = _suffix(view, weight * cum_neg)
    after_neg = _suffix(view, weight * cum_pos)
    per_unit = view.level
    tp_unit = tp[per_unit]
    gradient = np.where(
        view.positive,
        stats.divide((precision + after_pos)[per_unit] - ap[view.unit_group], tp_unit),
        stats.divide(-after_neg[per_unit], tp_unit),
    )
    errors = {"roc_auc": np.sqrt(delong), "average_precision": np.sqrt(view.variance(gradient))}
    return {"roc_auc": auc, "average_precision": ap}, errors


def _suffix(view: _Sorted, per_level: np.ndarray) -> np.ndarray:
    """Sum over levels k >= m of the same group, for each level m."""
    return view.level_totals(per_level) - view.cumulative(per_level) + per_level


def _log_loss(view: _Sorted, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    value = stats.divide(view.group_sum(view.count * loss), view.n)
    gradient = (loss - value[view.unit_group]) / view.n[view.unit_group]
    return value, np.sqrt(view.variance(gradient))


def _calibration(view: _Sorted, confidence: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``sum_b |sum_{i in b} (y_i - p_i)| / n`` per group, as the performance check computes it."""
    gap = view.positive.astype(np.float64) - confidence
    cell = view.unit_group * bins + stats.calibration_bin_ids(confidence, bins)
    per_bin = np.bincount(cell, weights=view.count * gap, minlength=view.present.size * bins)
    value = np.abs(per_bin).reshape(-1, bins).sum(axis=1) / view.n
    gradient = (np.sign(per_bin[cell]) * gap - value[view.unit_group]) / view.n[view.unit_group]
    return value, np.sqrt(view.variance(gradient))
