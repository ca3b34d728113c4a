"""Bootstrap intervals and weighted, replicate-vectorised metrics shared by every check.

Why weights: resampling ``n`` rows with replacement is the same as giving each row a
multiplicity drawn from Multinomial(n, 1/n, ..., 1/n). A metric that accepts integer row
weights therefore evaluates a bootstrap replicate without copying the data, and a metric that
accepts a ``(b, n)`` weight matrix evaluates ``b`` replicates in one vectorised pass. The
generators below yield such matrices in chunks of at most ``max_bytes`` so that memory stays
bounded whatever the number of rows or replicates.

Why counts: a statistic that depends on the rows only through a table of counts (a confusion
matrix; ROC-AUC through the positive and negative counts per distinct score) can skip the
rows altogether. :func:`bootstrap_counts` explains why that is exact.

Every weighted metric returns an array shaped like the weights without their last axis: a 0-d
array for one weight vector (or none), shape ``(b,)`` for ``b`` replicates. Undefined values
(a zero denominator in a replicate) are NaN, and :func:`percentile_interval` skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

MAX_CHUNK_BYTES = 32 * 2**20
"""Default size of one chunk of bootstrap counts or weights (int64), in bytes."""

# Drawing one cell with numpy's multinomial costs about ten times drawing one row, so the
# multinomial is used when the table has fewer than a tenth as many occupied cells as rows.
_ROWS_PER_CELL_FOR_MULTINOMIAL = 10


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval of one statistic, skipping NaN replicates.

    A replicate is NaN when the resample leaves the statistic undefined (no positives, say);
    the interval then describes the replicates where it is defined. Returns ``(nan, nan)``
    when no replicate is defined.

    Examples
    --------
    >>> percentile_interval(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), 0.5)
    (1.75, 3.25)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); found {level}")
    values = np.asarray(replicates, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return (float(low), float(high))


def bootstrap_counts(counts: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of a table of counts, shape ``(replicates, *counts.shape)``.

    Resampling the ``n`` rows behind a table with replacement gives each of the ``n`` draws
    independently to cell ``k`` with probability ``counts[k] / n``; the resampled table is
    therefore Multinomial(n, counts / n), whatever the order or content of the rows. For a
    statistic that depends on the rows only through the table (every confusion-matrix
    metric; ROC-AUC and average precision through positives and negatives per distinct score)
    drawing the table directly is exactly row resampling. A table with few occupied cells
    costs one binomial draw per cell instead of one draw per row; a table with many is drawn
    through its rows, each cell owning ``counts[k]`` of them. Empty cells stay empty.

    Examples
    --------
    >>> table = bootstrap_counts(np.array([[5, 1], [2, 12]]), 3, np.random.default_rng(0))
    >>> table.shape, table.sum(axis=(1, 2)).tolist()
    ((3, 2, 2), [20, 20, 20])
    """
    chunks = list(bootstrap_count_chunks(counts, replicates, rng, max_bytes=2**62))
    if not chunks:
        return np.zeros((0, *np.shape(counts)), dtype=np.int64)
    return np.concatenate(chunks)


def bootstrap_count_chunks(
    counts: np.ndarray, replicates: int, rng: np.random.Generator, *, max_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """Yield :func:`bootstrap_counts` replicates in chunks of at most ``max_bytes`` (at least one).

    The chunk size changes memory use only: the draws are the same for any ``max_bytes``.

    Examples
    --------
    >>> chunks = bootstrap_count_chunks(np.ones(1000, int), 10, np.random.default_rng(0), max_bytes=32_000)
    >>> [chunk.shape for chunk in chunks]
    [(4, 1000), (4, 1000), (2, 1000)]
    """
    flat = _validated_counts(counts)
    occupied = np.flatnonzero(flat)
    cell_counts = flat[occupied]
    total = int(cell_counts.sum())
    per_chunk = max(1, int(max_bytes) // (8 * max(flat.size, 1)))
    for start in range(0, replicates, per_chunk):
        size = min(per_chunk, replicates - start)
        drawn = _draw_cells(cell_counts, total, size, rng)
        if occupied.size < flat.size:
            full = np.zeros((size, flat.size), dtype=np.int64)
            full[:, occupied] = drawn
            drawn = full
        yield drawn.reshape((size, *np.shape(counts)))


def bootstrap_weights_chunks(
    n: int, replicates: int, rng: np.random.Generator, *, max_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """Yield ``(b, n)`` integer row weights, one row per replicate, chunk by chunk.

    Each row is Multinomial(n, 1/n): the multiplicity of every row in one resample. Pass a
    chunk as ``sample_weight`` to the metrics here to evaluate ``b`` replicates at once.

    Examples
    --------
    >>> next(bootstrap_weights_chunks(5, 2, np.random.default_rng(0))).sum(axis=1).tolist()
    [5, 5]
    """
    return bootstrap_count_chunks(np.ones(n, dtype=np.int64), replicates, rng, max_bytes=max_bytes)


def replicate(
    statistic: Callable[[np.ndarray], Mapping[str, np.ndarray]], chunks: Iterator[np.ndarray]
) -> dict[str, np.ndarray]:
    """Evaluate a vectorised statistic on every chunk and join the replicates per name.

    ``statistic`` maps a chunk of counts or weights (replicates on the first axis) to named
    arrays with replicates on their first axis. No chunks (zero replicates) gives ``{}``.
    """
    parts = [statistic(chunk) for chunk in chunks]
    if not parts:
        return {}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _validated_counts(counts: np.ndarray) -> np.ndarray:
    flat = np.asarray(counts).ravel()
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        if not np.array_equal(flat, np.round(flat)):
            raise ValueError("counts must be whole numbers")
    flat = flat.astype(np.int64)
    if (flat < 0).any():
        raise ValueError("counts must not be negative")
    if flat.sum() == 0:
        raise ValueError("cannot resample an empty table (all counts are zero)")
    return flat


def _draw_cells(cell_counts: np.ndarray, total: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial(total, cell_counts / total) draws, shape (size, cells), by the cheaper route."""
    if cell_counts.size * _ROWS_PER_CELL_FOR_MULTINOMIAL <= total:
        return rng.multinomial(total, cell_counts / total, size=size).astype(np.int64, copy=False)
    # Many cells: draw rows uniformly, each cell owning a contiguous run of `count` rows.
    # One bincount over the whole chunk: row r's draws are offset by r * total.
    drawn = rng.integers(0, total, size=(size, total))
    drawn += (np.arange(size, dtype=np.int64) * total)[:, None]
    per_row = np.bincount(drawn.ravel(), minlength=size * total).reshape(size, total)
    return per_row if cell_counts.size == total else _group_sums(per_row, np.cumsum(cell_counts) - 1)


def _weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=np.int64)
    weights = np.asarray(sample_weight)
    if weights.shape[-1:] != (n,) or weights.ndim > 2:
        raise ValueError(f"sample_weight must have shape ({n},) or (b, {n}); found {weights.shape}")
    return weights


def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` in float64, NaN where the denominator is zero, never a warning.

    Metrics mark "undefined" as NaN so that a replicate can carry it and the caller can turn
    it into a None with a note; numpy's own division would warn (an error under pytest here).

    Examples
    --------
    >>> divide(np.array([1, 2]), np.array([2, 0])).tolist()
    [0.5, nan]
    """
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


@dataclass(frozen=True)
class Ranking:
    """Binary labels sorted once by decreasing score, with their groups of tied scores.

    ROC-AUC and average precision depend on the rows only through the positive and negative
    weight of each distinct score, in score order (:meth:`table`). Sorting is the only
    ``O(n log n)`` step, so a :class:`Ranking` built once serves every bootstrap chunk. Build
    it with :func:`ranking`. ``order`` is None when the rows were already in that order;
    ``ends`` is the last position of each group of tied scores.
    """

    order: np.ndarray | None
    positive: np.ndarray
    ends: np.ndarray

    @property
    def n(self) -> int:
        return int(self.positive.shape[0])

    def table(self, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative weight per distinct score, highest score first: shape (..., G).

        Integer weights stay integers, so the metrics below are exact sums.
        """
        weights = _weights(sample_weight, self.n)
        if self.order is not None:
            weights = np.take(weights, self.order, axis=-1)
        positives = weights * self.positive
        if self.ends.size == self.n:
            return positives, weights - positives
        positives = _group_sums(positives, self.ends)
        return positives, _group_sums(weights, self.ends) - positives

    def roc_auc(self, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """Weighted ROC-AUC, as :func:`roc_auc`."""
        return roc_auc_from_table(*self.table(sample_weight))

    def average_precision(self, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """Weighted average precision, as :func:`average_precision`."""
        return average_precision_from_table(*self.table(sample_weight))


def ranking(y_true: np.ndarray, y_score: np.ndarray) -> Ranking:
    """Sort rows by decreasing score (stable, as scikit-learn) and find the tied scores.

    ``y_true`` is boolean or 0/1 (1 = positive). Scores must be finite.
    """
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=np.float64).ravel()
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true and y_score differ in length: {y_true.shape[0]} and {y_score.shape[0]}")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score must be finite (no NaN or infinity)")
    order = np.argsort(-y_score, kind="stable")
    ranked = y_score[order]
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    in_order = bool(np.all(order == np.arange(order.size)))
    return Ranking(
        order=None if in_order else order,
        positive=(y_true[order] == 1).astype(np.int64),
        ends=ends,
    )


def roc_auc_from_table(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """ROC-AUC from positive and negative weight per distinct score, highest score first.

    The Mann-Whitney form: the share of (positive, negative) pairs ranked correctly, a tie
    counting 1/2; equal to the area under scikit-learn's ROC curve. NaN without positives or
    without negatives. Leading axes are replicates.

    Written as ``2 P N - 2 sum_g P_g N_{<=g} + sum_g P_g N_g`` over ``2 P N`` (``N_{<=g}``:
    negatives scored at least as high as group ``g``): one cumulative sum and two dot
    products, in exact integer arithmetic for integer weights.
    """
    positives, negatives = np.asarray(positives), np.asarray(negatives)
    negatives_above = _cumsum(negatives)
    pairs = positives.sum(axis=-1) * negatives_above[..., -1]
    twice_concordant = 2 * pairs - 2 * _rowwise_dot(positives, negatives_above) + _rowwise_dot(positives, negatives)
    return divide(twice_concordant, 2 * pairs)


def average_precision_from_table(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Average precision from positive and negative weight per distinct score, highest first.

    scikit-learn's definition: ``sum_k (R_k - R_{k-1}) P_k`` over distinct thresholds, no
    interpolation. Only thresholds that add positives contribute, and there the precision's
    denominator is positive. NaN without positives. Leading axes are replicates.
    """
    positives = np.asarray(positives)
    true_positives = _cumsum(positives)
    predicted = true_positives + _cumsum(negatives)
    # where nothing is predicted positive yet, true_positives is 0 too: 0 / tiny = 0
    precision = true_positives / np.maximum(predicted, np.finfo(np.float64).tiny)
    return divide(_rowwise_dot(positives, precision), true_positives[..., -1])


def _rowwise_dot(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", left, right)


def _cumsum(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis.

    numpy vectorises the cumulative sum of a flat integer array but not the one along an axis
    of a 2-D array (about ten times slower), so integer tables are summed flat and each row's
    offset taken back out.
    """
    values = np.asarray(values)
    if values.ndim < 2 or not np.issubdtype(values.dtype, np.integer):
        return np.cumsum(values, axis=-1)
    flat = np.cumsum(values, axis=None).reshape(values.shape)
    rows = flat.reshape(-1, values.shape[-1])
    rows[1:] -= rows[:-1, -1:].copy()
    return flat


def _group_sums(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums over consecutive groups that end at ``ends``, along the last axis."""
    totals = np.take(_cumsum(values), ends, axis=-1)
    return np.diff(totals, axis=-1, prepend=np.zeros_like(totals[..., :1]))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted ROC-AUC, vectorised over rows of ``sample_weight``; NaN for a single class.

    Equals ``sklearn.metrics.roc_auc_score(y_true, y_score, sample_weight=w)``.

    Examples
    --------
    >>> float(roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])))
    0.75
    >>> weights = np.array([[1, 1, 1, 1], [0, 2, 1, 1]])
    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), weights).tolist()
    [0.75, 0.5]
    """
    return ranking(y_true, y_score).roc_auc(sample_weight)


def average_precision(y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted average precision, vectorised over rows of ``sample_weight``; NaN without positives.

    Equals ``sklearn.metrics.average_precision_score(y_true, y_score, sample_weight=w)``.

    Examples
    --------
    >>> round(float(average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))), 4)
    0.8333
    """
    return ranking(y_true, y_score).average_precision(sample_weight)


def log_loss_terms(y_true: np.ndarray, y_prob: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy ``-log p[i, y_i]``, probabilities clipped as scikit-learn does.

    ``y_true`` holds class indices into the columns of ``y_prob`` (shape (n, classes)).
    Computed in float64; clipping to ``[eps, 1 - eps]`` keeps a confident mistake finite.
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim != 2 or y_prob.shape[0] != y_true.shape[0]:
        raise ValueError(f"y_prob must have shape ({y_true.shape[0]}, classes); found {y_prob.shape}")
    eps = np.finfo(np.float64).eps
    chosen = np.take_along_axis(y_prob, y_true[:, None], axis=1)[:, 0]
    return -np.log(np.clip(chosen, eps, 1 - eps))


def weighted_mean(values: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Mean of per-row values under row weights, vectorised over rows of ``sample_weight``."""
    values = np.asarray(values, dtype=np.float64)
    weights = _weights(sample_weight, values.shape[0])
    return divide(weights @ values, weights.sum(axis=-1))


def log_loss(y_true: np.ndarray, y_prob: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted log loss, vectorised over rows of ``sample_weight``.

    Equals ``sklearn.metrics.log_loss(y_true, y_prob, sample_weight=w, labels=range(classes))``.

    Examples
    --------
    >>> round(float(log_loss(np.array([1, 0]), np.array([[0.2, 0.8], [0.6, 0.4]]))), 6)
    0.366985
    """
    return weighted_mean(log_loss_terms(y_true, y_prob), sample_weight)


def calibration_bin_ids(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each probability, as ``sklearn.calibration.calibration_curve``.

    Bin ``k`` holds ``(k / n_bins, (k + 1) / n_bins]``; the first bin also holds 0.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(confidence, dtype=np.float64))


@dataclass(frozen=True)
class Calibration:
    """Rows grouped by equal-width probability bin, ready to weigh: built by :func:`calibration`.

    ``order`` lines the rows up so that each non-empty bin is one contiguous run (None when
    they already are: rows sorted by probability); ``ends`` is where each run ends, ``bins``
    which bin it is. Per-bin sums then take one pass over the weights.
    """

    n_bins: int
    order: np.ndarray | None
    ends: np.ndarray
    bins: np.ndarray
    confidence: np.ndarray
    outcome: np.ndarray

    def expected_calibration_error(self, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """``sum_b (n_b / n) |mean(outcome in b) - mean(confidence in b)|`` per weight row.

        Written as ``sum_b |sum_{i in b} w_i (outcome_i - confidence_i)| / sum_i w_i``: the
        same number without a division per bin, and empty bins drop out by themselves.
        """
        weights = self._lined_up(sample_weight)
        per_bin = self._bin_sums(weights * (self.outcome - self.confidence))
        return divide(np.abs(per_bin).sum(axis=-1), weights.sum(axis=-1))

    def curve(self, sample_weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The reliability diagram, one entry per non-empty bin, as ``calibration_curve``.

        ``observed`` is the mean outcome, ``mean_predicted`` the mean confidence in the bin.
        """
        weights = self._lined_up(sample_weight)
        if weights.ndim != 1:
            raise ValueError("curve takes one weight per row")
        count = self._bin_sums(weights)
        hits = self._bin_sums(weights * self.outcome)
        mass = self._bin_sums(weights * self.confidence)
        keep = np.flatnonzero(count > 0)
        keep = keep[np.argsort(self.bins[keep], kind="stable")]
        return {
            "lower": self.bins[keep] / self.n_bins,
            "upper": (self.bins[keep] + 1) / self.n_bins,
            "count": count[keep],
            "observed": hits[keep] / count[keep],
            "mean_predicted": mass[keep] / count[keep],
        }

    def _bin_sums(self, values: np.ndarray) -> np.ndarray:
        # at most n_bins long runs: reduceat sums each run in one vectorised pass
        return np.add.reduceat(values, np.append(0, self.ends[:-1] + 1), axis=-1)

    def _lined_up(self, sample_weight: np.ndarray | None) -> np.ndarray:
        weights = _weights(sample_weight, self.confidence.shape[0])
        return weights if self.order is None else np.take(weights, self.order, axis=-1)


def calibration(confidence: np.ndarray, outcome: np.ndarray, n_bins: int) -> Calibration:
    """Bin predicted probabilities of an outcome (1 = it happened) into ``n_bins`` equal widths.

    Binary: confidence = positive-class probability, outcome = label is positive (the bins of
    ``calibration_curve(strategy="uniform")``). Multiclass top-label: confidence = largest
    probability, outcome = that class is the label.

    Examples
    --------
    >>> cal = calibration(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 1, 1]), 2)
    >>> round(float(cal.expected_calibration_error()), 6)
    0.25
    """
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    outcome = np.asarray(outcome, dtype=np.float64).ravel()
    if confidence.shape != outcome.shape:
        raise ValueError(f"confidence and outcome differ in length: {confidence.size} and {outcome.size}")
    if confidence.size == 0 or confidence.min() < 0 or confidence.max() > 1:
        raise ValueError("confidence must be a non-empty array of probabilities in [0, 1]")
    bin_ids = calibration_bin_ids(confidence, n_bins)
    ends = np.flatnonzero(np.append(bin_ids[1:] != bin_ids[:-1], True))
    order = None
    if ends.size != np.unique(bin_ids).size:
        order = np.argsort(bin_ids, kind="stable")
        bin_ids, confidence, outcome = bin_ids[order], confidence[order], outcome[order]
        ends = np.flatnonzero(np.append(bin_ids[1:] != bin_ids[:-1], True))
    return Calibration(
        n_bins=n_bins, order=order, ends=ends, bins=bin_ids[ends], confidence=confidence, outcome=outcome
    )


def distinct_rows(columns: list[np.ndarray], weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group equal rows: the first index of each distinct row and how many rows share it.

    Sorted by the first column, then the next, and so on. A statistic that depends on the
    rows only through their values can run on the distinct rows weighted by their counts,
    and be bootstrapped by :func:`bootstrap_count_chunks` on those counts: few distinct rows
    (decile scores) make the bootstrap cheap, and sorting by score first saves a sort per
    chunk in :class:`Ranking`. ``weights`` (integers): how many rows each entry already
    stands for; the counts are then their sums, so rows given one by one or already counted
    give the same distinct rows and counts, in the same order.
    """
    order = np.lexsort(tuple(np.asarray(column) for column in reversed(columns)))
    change = np.zeros(order.size, dtype=bool)
    change[:1] = True
    for column in columns:
        ranked = np.asarray(column)[order]
        change[1:] |= ranked[1:] != ranked[:-1]
    starts = np.flatnonzero(change)
    if weights is None:
        counts = np.diff(np.append(starts, order.size))
    else:
        counts = np.add.reduceat(np.asarray(weights, dtype=np.int64)[order], starts) if order.size else np.zeros(0, np.int64)
    return order[starts], counts


def weighted_median(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """``np.median`` of the rows, where entry ``i`` stands for ``weights[i]`` rows (None: one each).

    The middle row (or the mean of the two middle rows) of the sorted rows, found on the
    cumulative weights without repeating any entry.

    Examples
    --------
    >>> weighted_median(np.array([3.0, 1.0, 2.0]), np.array([1, 2, 1]))
    1.5
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is None:
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    ends = np.cumsum(np.asarray(weights, dtype=np.int64)[order])
    n = int(ends[-1])
    low = values[order[np.searchsorted(ends, (n - 1) // 2, side="right")]]
    high = values[order[np.searchsorted(ends, n // 2, side="right")]]
    return float(np.mean([low, high]))


def binomial_interval(successes: np.ndarray, trials: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval of a binomial proportion, vectorised; NaN for 0 trials.

    Never narrower than ``level`` coverage for any true proportion, and never a point: for
    ``x = 0`` of ``d`` it is ``[0, 1 - (alpha/2)^(1/d)]``.

    Examples
    --------
    >>> low, high = binomial_interval(np.array([0, 3]), np.array([3, 3]), 0.95)
    >>> [round(float(v), 4) for v in (low[0], high[0], low[1], high[1])]
    [0.0, 0.7076, 0.2924, 1.0]
    """
    from scipy.stats import beta

    x = np.asarray(successes, dtype=np.float64)
    d = np.asarray(trials, dtype=np.float64)
    tail = (1.0 - level) / 2.0
    safe = np.maximum(d, 1.0)
    low = np.where(x > 0, beta.ppf(tail, np.maximum(x, 1e-300), safe - x + 1), 0.0)
    high = np.where(x < d, beta.ppf(1 - tail, x + 1, np.maximum(safe - x, 1e-300)), 1.0)
    empty = d <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def rate_interval(
    bootstrap: tuple[float, float] | None, successes: float, trials: float, level: float, *, min_trials: int
) -> tuple[tuple[float, float] | None, bool]:
    """The interval of one rate, and whether it is the exact binomial one.

    The bootstrap percentile interval, unless it says more than the data can: when it is a
    point (a rate of 0 or 1, or a denominator too small to vary) or the denominator is below
    ``min_trials``, the exact Clopper-Pearson interval, which keeps its coverage there.
    No bootstrap interval (none asked for) gives none.
    """
    if trials <= 0 or bootstrap is None:  # no replicates asked for (or none defined): no interval
        return bootstrap, False
    if bootstrap is not None and bootstrap[0] != bootstrap[1] and trials >= min_trials:
        return bootstrap, False
    low, high = binomial_interval(np.array(successes), np.array(trials), level)
    return (float(low), float(high)), True


def hull(*intervals: tuple[float, float] | None) -> tuple[float, float] | None:
    """The smallest interval holding every given one (None ones skipped)."""
    given = [i for i in intervals if i is not None]
    if not given:
        return None
    return (min(i[0] for i in given), max(i[1] for i in given))


def difference_bounds(high: tuple[float, float], low: tuple[float, float]) -> tuple[float, float]:
    """Bounds of ``a - b`` from intervals of ``a`` and ``b``: ``[a_lo - b_hi, a_hi - b_lo]``."""
    return (high[0] - low[1], high[1] - low[0])


def ratio_bounds(top: tuple[float, float], bottom: tuple[float, float]) -> tuple[float, float]:
    """Bounds of ``a / b`` (``a, b >= 0``) from their intervals; ``inf`` where ``b`` may be 0."""
    upper = top[1] / bottom[0] if bottom[0] > 0 else np.inf
    lower = top[0] / bottom[1] if bottom[1] > 0 else 0.0
    return (float(lower), float(upper))
