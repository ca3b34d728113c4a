"""The performance check: how often and how confidently the model is right, with intervals.

Numbers follow scikit-learn's definitions and names (``accuracy``, ``f1_macro``,
``roc_auc``...), with one deliberate difference: a per-class value whose denominator is zero
is reported as undefined (value None and a note), never as a silent 0. Averages still count
it as 0, exactly as scikit-learn's ``zero_division=0`` does, so they match its numbers.

Every scalar carries a seeded interval. Confusion-matrix metrics resample the confusion table
itself (see :func:`audit.stats.bootstrap_counts`); binary ranking and probability metrics get
a normal interval without resampling (:mod:`audit.score_stats`); multiclass ones resample the
distinct (label, probabilities) rows by their counts, so the bootstrap never copies the data,
stays within a fixed memory budget, and is the same in a sharded run, which holds only those
counts. The data may come weighted (``AuditData.weights``: a sharded run's distinct rows and
their counts); every number here depends on the rows only through such counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit import groups, score_stats, stats
from audit.errors import CheckError
from audit.catalogue import Metric
from audit.results import Measurement

if TYPE_CHECKING:
    from audit.config import Statistics
    from audit.context import AuditContext

CHECK = "performance"
_AVERAGES = ("macro", "weighted")
_BY_CLASS = {
    "precision": "Of the examples predicted positive, the share that truly are.",
    "recall": "Of the truly positive examples, the share the model finds (true positive rate).",
    "f1": "Harmonic mean of precision and recall.",
}
_F1_DENOMINATOR = "actual or predicted positives"  # 2TP + FP + FN, as a group rate
CATALOGUE = (
    Metric("accuracy", "accuracy", "Share of all examples the model classifies correctly.", better="higher",
           denominator="rows", column=True),
    Metric("balanced_accuracy", "balanced accuracy",
           "Mean of the recall of each class, so a rare class counts as much as a common one.", better="higher"),
    *(Metric(name, name, text, better="higher", denominator=_F1_DENOMINATOR if name == "f1" else None)
      for name, text in _BY_CLASS.items()),
    *(Metric(f"{name}_{average}", f"{name} ({average} average)", better="higher")
      for average in _AVERAGES for name in _BY_CLASS),
    Metric("roc_auc", "ROC-AUC", "Chance that a random positive example gets a higher score than a random negative one.",
           better="higher", unit="score", short="AUC", column=True),
    Metric("average_precision", "average precision",
           "Area under the precision-recall curve, summarising precision over all thresholds.", better="higher"),
    Metric("log_loss", "log loss", "Mean negative log probability given to the true class; lower is better, "
           "punishes confident errors.", better="lower", unit="score"),
    Metric("expected_calibration_error", "expected calibration error",
           "Average gap between predicted probability and observed frequency; 0 is perfectly calibrated.", better="lower"),
    Metric("calibration_bin", "observed frequency in a calibration bin", describes=("mean_predicted",)),
    Metric("confusion_matrix", "confusion matrix cell", unit="count"),
)
METRICS = tuple(m.name for m in CATALOGUE)

# The per-class confusion-matrix metrics and why each one can be undefined.
_UNDEFINED_PER_CLASS = {
    "precision": "undefined: no examples predicted as class {name}",
    "recall": "undefined: no examples of class {name} in the labels",
    "f1": "undefined: class {name} is neither in the labels nor predicted",
}


@dataclass(frozen=True)
class _Inputs:
    """The arrays this check reads, validated and in the dtypes it computes with."""

    labels: np.ndarray
    decisions: np.ndarray
    classes: tuple[str, ...]
    positive_index: int | None
    probabilities: np.ndarray | None
    scores: np.ndarray | None
    weights: np.ndarray | None = None  # rows each entry stands for (a sharded run's summary); None: one each

    @property
    def n(self) -> int:
        return int(self.labels.shape[0]) if self.weights is None else int(self.weights.sum())


def run(ctx: AuditContext) -> list[Measurement]:
    """Measure accuracy, precision/recall/F1, ranking and calibration quality of the predictions.

    Returns the measurements in a fixed order: confusion-matrix metrics, the confusion matrix,
    then score and probability metrics (when the predictions have them) and the reliability
    diagram. Deterministic for a given ``ctx.seed``.
    """
    inputs = _inputs(ctx)
    statistics = ctx.config.statistics
    count_rng, score_rng = np.random.default_rng(ctx.seed).spawn(2)
    table = _confusion_table(inputs)
    measurements = _count_measurements(table, inputs, statistics, count_rng)
    measurements += _confusion_cells(table, inputs)
    bins = ctx.config.checks.performance.calibration_bins
    if inputs.positive_index is not None:
        measurements += _binary_score_measurements(inputs, bins, statistics, score_rng)
    else:
        measurements += _multiclass_score_measurements(inputs, bins, statistics, score_rng)
    return measurements


def _inputs(ctx: AuditContext) -> _Inputs:
    """Check shapes and ranges once, so every metric below can trust its arrays."""
    data, predictions = ctx.data, ctx.predictions
    n_classes = len(data.classes)
    labels = _class_indices(data.labels, n_classes, "labels")
    decisions = _class_indices(predictions.decisions, n_classes, "decisions")
    if labels.size == 0 or decisions.shape != labels.shape:
        raise CheckError(
            f"performance needs one decision per label; found {decisions.size} decisions for {labels.size} labels",
            hint="check that the data and the predictions have the same rows",
        )
    if n_classes == 2 and data.positive_index is None:
        raise CheckError("binary labels need a positive class", hint="set data.label.positive")
    probabilities = _optional_floats(predictions.probabilities, (labels.size, n_classes), "probabilities")
    scores = _optional_floats(predictions.scores, (labels.size,), "scores") if n_classes == 2 else None
    if scores is None and probabilities is not None and n_classes == 2:
        scores = probabilities[:, data.positive_index]
    if data.weights is not None and data.weights.shape != labels.shape:
        raise CheckError(f"performance needs one weight per label; found {data.weights.size} for {labels.size} labels")
    return _Inputs(
        labels=labels,
        decisions=decisions,
        classes=tuple(str(c) for c in data.classes),
        positive_index=data.positive_index if n_classes == 2 else None,
        probabilities=probabilities,
        scores=scores,
        weights=data.weights,
    )


def _class_indices(values: np.ndarray, n_classes: int, what: str) -> np.ndarray:
    values = np.asarray(values).ravel()
    if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= n_classes):
        raise CheckError(
            f"{what} must be class indices in 0..{n_classes - 1}",
            hint="map labels and decisions onto the declared classes",
        )
    return values.astype(np.int64)


def _optional_floats(values: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape or not np.isfinite(values).all():
        raise CheckError(f"{what} must be finite with shape {shape}; found shape {values.shape}")
    return values


def _confusion_table(inputs: _Inputs) -> np.ndarray:
    n_classes = len(inputs.classes)
    cells = groups.weighted_bincount(inputs.labels * n_classes + inputs.decisions, inputs.weights, n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


def table_metrics(table: np.ndarray) -> dict[str, np.ndarray]:
    """Every confusion-matrix metric of ``(..., C, C)`` tables (rows true, columns predicted).

    One function serves the point estimate and the bootstrap replicates, so they cannot
    drift apart. Per-class ``precision``, ``recall`` and ``f1`` have shape ``(..., C)`` and
    are NaN where undefined; the macro and weighted averages count those as 0 over all
    declared classes, as scikit-learn's ``zero_division=0`` with ``labels=range(C)`` does.
    ``balanced_accuracy`` averages recall over the classes present in the labels, as
    ``balanced_accuracy_score`` does.
    """
    table = np.asarray(table, dtype=np.float64)
    true = table.sum(axis=-1)
    predicted = table.sum(axis=-2)
    hits = np.diagonal(table, axis1=-2, axis2=-1)
    n = true.sum(axis=-1)
    present = true > 0
    per_class: dict[str, np.ndarray] = {
        "precision": stats.divide(hits, predicted),
        "recall": stats.divide(hits, true),
        "f1": stats.divide(2 * hits, true + predicted),
    }
    out = {
        "accuracy": stats.divide(hits.sum(axis=-1), n),
        "balanced_accuracy": stats.divide(
            np.where(present, per_class["recall"], 0.0).sum(axis=-1), present.sum(axis=-1)
        ),
        **per_class,
    }
    for name, values in per_class.items():
        zeroed = np.nan_to_num(values, nan=0.0)
        out[f"{name}_macro"] = zeroed.mean(axis=-1)
        out[f"{name}_weighted"] = stats.divide((zeroed * true).sum(axis=-1), n)
    return out


def _count_measurements(
    table: np.ndarray, inputs: _Inputs, statistics: Statistics, rng: np.random.Generator
) -> list[Measurement]:
    point = table_metrics(table)
    chunks = stats.bootstrap_count_chunks(table, statistics.bootstrap, rng)
    replicates = stats.replicate(table_metrics, chunks)
    scalar = _Scalars(point, replicates, inputs.n, statistics.ci_level)
    out = [scalar("accuracy"), scalar("balanced_accuracy")]
    if inputs.positive_index is not None:
        name = inputs.classes[inputs.positive_index]
        for metric in _UNDEFINED_PER_CLASS:
            out.append(scalar(metric, column=inputs.positive_index, params={"pos_label": name}, class_name=name))
        return [_exact_if_point(m, table, inputs.classes, statistics.ci_level) for m in out]
    for metric in _UNDEFINED_PER_CLASS:
        for index, name in enumerate(inputs.classes):
            out.append(scalar(metric, column=index, params={"class": name}, class_name=name))
    for average in ("macro", "weighted"):
        out += [scalar(f"{metric}_{average}") for metric in _UNDEFINED_PER_CLASS]
    return [_exact_if_point(m, table, inputs.classes, statistics.ci_level) for m in out]


def _exact_if_point(m: Measurement, table: np.ndarray, classes, level: float) -> Measurement:
    """A per-class precision or recall whose bootstrap interval is a point gets the exact binomial one.

    A class predicted 7 times, always rightly, has precision 1 in every resample; the data
    do not say it is 1 for certain (issue 12; :func:`audit.stats.rate_interval`).
    """
    if m.metric not in ("precision", "recall") or m.ci is None or m.ci[0] != m.ci[1]:
        return m
    index = list(classes).index(m.params.get("class", m.params.get("pos_label")))
    trials = table[:, index].sum() if m.metric == "precision" else table[index].sum()
    ci, _ = stats.rate_interval(m.ci, float(table[index, index]), float(trials), level, min_trials=0)
    return dataclasses.replace(m, ci=ci)


@dataclass(frozen=True)
class _Scalars:
    """Turns named point values and their replicates into Measurements.

    A value is undefined (None, with a note saying why) when the caller says so or when it
    came out NaN; otherwise it gets a percentile interval when there are replicates.
    """

    point: dict[str, np.ndarray]
    replicates: dict[str, np.ndarray]
    n: int
    level: float

    def __call__(
        self,
        metric: str,
        *,
        column: int | None = None,
        params: dict[str, Any] | None = None,
        class_name: str | None = None,
        undefined: str | None = None,
        note: str | None = None,
    ) -> Measurement:
        params = params or {}
        value = float(self.point[metric] if column is None else self.point[metric][column])
        if undefined is None and np.isnan(value):
            undefined = _UNDEFINED_PER_CLASS.get(metric, "undefined: {name}").format(name=class_name)
        if undefined is not None:
            return Measurement(CHECK, metric, None, n=self.n, params=params, note=undefined)
        ci = self._interval(metric, column)
        return Measurement(CHECK, metric, value, ci=ci, n=self.n, params=params, note=note)

    def _interval(self, metric: str, column: int | None) -> tuple[float, float] | None:
        if metric not in self.replicates:
            return None
        values = self.replicates[metric]
        low, high = stats.percentile_interval(values if column is None else values[:, column], self.level)
        return None if np.isnan(low) else (low, high)


def _confusion_cells(table: np.ndarray, inputs: _Inputs) -> list[Measurement]:
    n = inputs.n
    return [
        Measurement(CHECK, "confusion_matrix", int(table[t, p]), n=n, params={"true": true, "predicted": predicted})
        for t, true in enumerate(inputs.classes)
        for p, predicted in enumerate(inputs.classes)
    ]


def _binary_score_measurements(
    inputs: _Inputs, bins: int, statistics: Statistics, rng: np.random.Generator
) -> list[Measurement]:
    """ROC-AUC and average precision from the score; log loss and calibration from probabilities.

    One sort of the scores gives every value and its standard error (:mod:`audit.score_stats`):
    no resampling, so 1,000,000 rows cost about one sort. ``rng`` is unused and kept so the
    count metrics' intervals do not depend on whether scores exist.
    """
    if inputs.scores is None:
        return []
    units = _binary_units(inputs)
    found = score_stats.group_statistics(units, np.zeros(1, dtype=np.int64), 1, bins)
    undefined = _single_class_note(inputs)
    scalar = _Analytic(found, inputs.n, statistics.ci_level if statistics.bootstrap > 0 else None)
    out = [scalar("roc_auc", undefined=undefined), scalar("average_precision", undefined=undefined)]
    if not units.probabilities:
        return out
    out += [scalar("log_loss"), scalar("expected_calibration_error", params={"n_bins": bins, "strategy": "uniform"})]
    return out + _curve_measurements(stats.calibration(units.score, units.positive, bins), units.count)


def _binary_units(inputs: _Inputs) -> score_stats.Units:
    losses = None if inputs.probabilities is None else stats.log_loss_terms(inputs.labels, inputs.probabilities)
    return score_stats.collapse(inputs.scores, inputs.labels == inputs.positive_index, None, losses, inputs.weights)


@dataclass(frozen=True)
class _Analytic:
    """Measurements of one group's score statistics, with their normal intervals (``level`` None: none)."""

    found: score_stats.GroupScores
    n: int
    level: float | None

    def __call__(self, metric: str, *, params: dict[str, Any] | None = None, undefined: str | None = None) -> Measurement:
        value = float(self.found.values[metric][0])
        if undefined is None and np.isnan(value):
            undefined = "undefined: no positives in the labels"
        if undefined is not None:
            return Measurement(CHECK, metric, None, n=self.n, params=params or {}, note=undefined)
        ci = self.found.interval(metric, 0, self.level) if self.level is not None else None
        return Measurement(CHECK, metric, value, ci=ci, n=self.n, params=params or {},
                           note=score_stats.INTERVAL_NOTE if ci else None)


def _ranking_metrics(table: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "roc_auc": stats.roc_auc_from_table(*table),
        "average_precision": stats.average_precision_from_table(*table),
    }


def _single_class_note(inputs: _Inputs) -> str | None:
    present = np.unique(inputs.labels)
    if present.size == 1:
        return f"undefined: only class {inputs.classes[present[0]]} in the labels"
    return None


def _calibration_measurements(
    scalar: _Scalars, calibration: stats.Calibration, weights: np.ndarray, bins: int, params: dict[str, Any]
) -> list[Measurement]:
    out = [
        scalar("log_loss"),
        scalar("expected_calibration_error", params={"n_bins": bins, "strategy": "uniform", **params}),
    ]
    return out + _curve_measurements(calibration, weights)


def _curve_measurements(calibration: stats.Calibration, weights: np.ndarray) -> list[Measurement]:
    """The reliability diagram: one measurement per non-empty bin."""
    out = []
    curve = calibration.curve(weights)
    for k in range(curve["count"].size):
        bin_params = {
            "bin_lower": float(curve["lower"][k]),
            "bin_upper": float(curve["upper"][k]),
            "mean_predicted": float(curve["mean_predicted"][k]),
        }
        observed, count = float(curve["observed"][k]), int(curve["count"][k])
        out.append(Measurement(CHECK, "calibration_bin", observed, n=count, params=bin_params))
    return out


def _multiclass_score_measurements(
    inputs: _Inputs, bins: int, statistics: Statistics, rng: np.random.Generator
) -> list[Measurement]:
    """One-vs-rest macro ROC-AUC and average precision, log loss and top-label calibration.

    The bootstrap resamples the distinct (label, probabilities) rows by their counts: a
    Multinomial(n, counts / n) draw over the distinct rows is a row bootstrap (each of the n
    resampled rows lands on a distinct row with its share of the rows), and it depends on the
    rows only through that table, so a sharded run, which holds the distinct rows and their
    counts, draws the same replicates for the same seed as the local run.
    """
    if inputs.probabilities is None:
        return []
    present = np.unique(inputs.labels)
    labels, probabilities, counts = _distinct_scored_rows(inputs)
    statistic, calibration = _multiclass_score_statistic(labels, probabilities, bins, present)
    replicates = stats.replicate(statistic, stats.bootstrap_count_chunks(counts, statistics.bootstrap, rng))
    scalar = _Scalars(statistic(counts), replicates, inputs.n, statistics.ci_level)
    undefined, note = _single_class_note(inputs), _absent_classes_note(inputs, present)
    out = [
        scalar("roc_auc", params={"multi_class": "ovr", "average": "macro"}, undefined=undefined, note=note),
        scalar("average_precision", params={"average": "macro"}, undefined=undefined, note=note),
    ]
    return out + _calibration_measurements(scalar, calibration, counts, bins, {"confidence": "top_label"})


def _distinct_scored_rows(inputs: _Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (label, probabilities) rows, sorted by their values, and how many rows each stands for."""
    probabilities = inputs.probabilities
    columns = [inputs.labels, *(probabilities[:, k] for k in range(probabilities.shape[1]))]
    first, counts = stats.distinct_rows(columns, inputs.weights)
    return inputs.labels[first], probabilities[first], counts


def _multiclass_score_statistic(
    labels: np.ndarray, probabilities: np.ndarray, bins: int, present: np.ndarray
) -> tuple[Callable[[np.ndarray | None], dict[str, np.ndarray]], stats.Calibration]:
    """The vectorised statistic over row weights, and the top-label calibration bins.

    Classes absent from the labels have neither a one-vs-rest AUC nor an average precision;
    the macro averages run over the classes present (scikit-learn would return NaN, or count
    them as 0). Top-label calibration: the largest probability against whether its class is
    the label.
    """
    rankings = [stats.ranking(labels == c, probabilities[:, c]) for c in present]
    losses = stats.log_loss_terms(labels, probabilities)
    correct = probabilities.argmax(axis=1) == labels
    calibration = stats.calibration(probabilities.max(axis=1), correct, bins)

    def statistic(weights: np.ndarray | None) -> dict[str, np.ndarray]:
        per_class = [_ranking_metrics(r.table(weights)) for r in rankings]
        return {
            "roc_auc": _mean_defined([m["roc_auc"] for m in per_class]),
            "average_precision": _mean_defined([m["average_precision"] for m in per_class]),
            "log_loss": stats.weighted_mean(losses, weights),
            "expected_calibration_error": calibration.expected_calibration_error(weights),
        }

    return statistic, calibration


def _mean_defined(per_class: list[np.ndarray]) -> np.ndarray:
    """Mean over the classes defined in each replicate (NaN where none is), without warnings."""
    values = np.stack(per_class, axis=-1)
    defined = ~np.isnan(values)
    return stats.divide(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))


def _absent_classes_note(inputs: _Inputs, present: np.ndarray) -> str | None:
    seen = set(present.tolist())
    absent = [name for index, name in enumerate(inputs.classes) if index not in seen]
    if not absent:
        return None
    return f"macro average over the {present.size} classes present in the labels; absent: {', '.join(absent)}"
