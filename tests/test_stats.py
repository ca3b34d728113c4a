"""audit.stats against scikit-learn and against plain row resampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from audit import stats

SEEDS = [0, 1, 2, 3, 4]


def _binary_data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = rng.normal(y * 0.8, 1.0)
    if ties:
        score = np.round(score * 2) / 2
    return y, score


def _probabilities(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    logits = rng.normal(size=(n, n_classes))
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


# --- weighted metrics equal scikit-learn ----------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_unweighted_ranking_metrics_equal_sklearn(seed, ties):
    y, score = _binary_data(seed, ties=ties)
    assert float(stats.roc_auc(y, score)) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert float(stats.average_precision(y, score)) == pytest.approx(average_precision_score(y, score), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_weighted_ranking_metrics_equal_sklearn(seed, ties):
    y, score = _binary_data(seed, ties=ties)
    weights = np.random.default_rng(seed + 100).integers(0, 4, size=(6, y.size))
    auc = stats.roc_auc(y, score, weights)
    ap = stats.average_precision(y, score, weights)
    assert auc.shape == ap.shape == (6,)
    for row, w in enumerate(weights):
        assert auc[row] == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
        assert ap[row] == pytest.approx(average_precision_score(y, score, sample_weight=w), abs=1e-12)


def test_float_weights_equal_sklearn():
    y, score = _binary_data(7, ties=True)
    w = np.random.default_rng(7).random(y.size)
    assert float(stats.roc_auc(y, score, w)) == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
    ap = float(stats.average_precision(y, score, w))
    assert ap == pytest.approx(average_precision_score(y, score, sample_weight=w), abs=1e-12)


def test_all_scores_tied():
    y = np.array([0, 1, 0, 1, 1])
    score = np.zeros(5)
    assert float(stats.roc_auc(y, score)) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert float(stats.average_precision(y, score)) == pytest.approx(average_precision_score(y, score), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", [2, 5])
def test_vectorised_weighted_log_loss_equals_sklearn(seed, n_classes):
    rng = np.random.default_rng(seed)
    p = _probabilities(rng, 250, n_classes)
    p[:3] = np.eye(n_classes)[(np.arange(3) + 1) % n_classes]  # confident mistakes: clipping
    y = rng.integers(0, n_classes, 250)
    y[:3] = np.arange(3) % n_classes
    labels = list(range(n_classes))
    assert float(stats.log_loss(y, p)) == pytest.approx(log_loss(y, p, labels=labels), abs=1e-12)
    weights = rng.integers(0, 4, size=(5, y.size))
    values = stats.log_loss(y, p, weights)
    for row, w in enumerate(weights):
        assert values[row] == pytest.approx(log_loss(y, p, sample_weight=w, labels=labels), abs=1e-12)


def test_single_class_is_nan_not_an_error():
    y = np.zeros(10, dtype=int)
    score = np.linspace(0, 1, 10)
    assert math.isnan(float(stats.roc_auc(y, score)))
    assert math.isnan(float(stats.average_precision(y, score)))
    assert math.isnan(float(stats.roc_auc(1 - y, score)))


def test_ranking_of_sorted_rows_needs_no_gather():
    assert stats.ranking(np.array([1, 0, 1]), np.array([3.0, 2.0, 2.0])).order is None
    assert stats.ranking(np.array([1, 0, 1]), np.array([1.0, 2.0, 3.0])).order is not None


def test_ranking_rejects_non_finite_scores():
    with pytest.raises(ValueError, match="finite"):
        stats.ranking(np.array([0, 1]), np.array([0.5, np.nan]))


def test_integer_cumsum_of_stacked_rows():
    values = np.random.default_rng(0).integers(0, 9, size=(3, 4, 50))
    assert np.array_equal(stats._cumsum(values), np.cumsum(values, axis=-1))


# --- calibration ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_calibration_curve_and_ece_equal_sklearn_bins(seed, n_bins):
    rng = np.random.default_rng(seed)
    p = rng.random(400)
    p[:20] = np.round(p[:20] * n_bins) / n_bins  # values on bin edges
    y = (rng.random(400) < p**1.5).astype(int)
    cal = stats.calibration(p, y, n_bins)
    curve = cal.curve()
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    np.testing.assert_allclose(curve["observed"], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve["mean_predicted"], prob_pred, rtol=0, atol=1e-12)
    # bin totals as calibration_curve computes them (sklearn/calibration.py)
    totals = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p), minlength=n_bins)
    np.testing.assert_array_equal(curve["count"], totals[totals > 0])
    expected = np.sum(totals[totals > 0] / p.size * np.abs(prob_true - prob_pred))
    assert float(cal.expected_calibration_error()) == pytest.approx(expected, abs=1e-12)


def test_weighted_ece_equals_repeated_rows():
    rng = np.random.default_rng(3)
    p = rng.random(60)
    y = (rng.random(60) < p).astype(int)
    weights = rng.integers(0, 4, size=(4, 60))
    cal = stats.calibration(p, y, 10)
    values = cal.expected_calibration_error(weights)
    for row, w in enumerate(weights):
        repeated = stats.calibration(np.repeat(p, w), np.repeat(y, w), 10)
        assert values[row] == pytest.approx(float(repeated.expected_calibration_error()), abs=1e-12)


# --- bootstrap draws --------------------------------------------------------------------------


def test_bootstrap_counts_shape_totals_and_empty_cells():
    table = np.array([[40, 0], [7, 53]])
    draws = stats.bootstrap_counts(table, 50, np.random.default_rng(0))
    assert draws.shape == (50, 2, 2)
    assert draws.dtype == np.int64
    assert (draws.sum(axis=(1, 2)) == 100).all()
    assert (draws[:, 0, 1] == 0).all()


def test_bootstrap_counts_reject_bad_tables():
    with pytest.raises(ValueError, match="negative"):
        stats.bootstrap_counts(np.array([3, -1]), 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap_counts(np.zeros(3, dtype=int), 5, np.random.default_rng(0))


@pytest.mark.parametrize("table", [np.array([[50, 7], [12, 31]]), np.array([1, 2, 1, 1, 3, 1, 1])])
def test_chunks_are_bounded_and_do_not_change_the_draws(table):
    whole = stats.bootstrap_counts(table, 25, np.random.default_rng(9))
    chunks = list(stats.bootstrap_count_chunks(table, 25, np.random.default_rng(9), max_bytes=8 * table.size * 4))
    assert all(chunk.nbytes <= 8 * table.size * 4 for chunk in chunks)
    assert sum(chunk.shape[0] for chunk in chunks) == 25
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_weight_chunks_are_row_multiplicities():
    chunks = list(stats.bootstrap_weights_chunks(1000, 10, np.random.default_rng(0), max_bytes=32_000))
    assert [chunk.shape for chunk in chunks] == [(4, 1000), (4, 1000), (2, 1000)]
    weights = np.concatenate(chunks)
    assert (weights.sum(axis=1) == 1000).all()
    assert weights.min() >= 0


def test_draws_are_deterministic_under_a_seed():
    table = np.array([[30, 5], [9, 56]])
    first = stats.bootstrap_counts(table, 20, np.random.default_rng(42))
    again = stats.bootstrap_counts(table, 20, np.random.default_rng(42))
    other = stats.bootstrap_counts(table, 20, np.random.default_rng(43))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_zero_replicates_give_nothing():
    assert stats.bootstrap_counts(np.array([3, 4]), 0, np.random.default_rng(0)).shape == (0, 2)
    assert stats.replicate(lambda chunk: {"x": chunk}, iter([])) == {}


# --- the count-table bootstrap is row resampling --------------------------------------------

N_ROWS = 200
N_REPLICATES = 4000


def _accuracy_replicates_by_rows(labels, decisions, rng):
    rows = rng.integers(0, labels.size, size=(N_REPLICATES, labels.size))
    return (labels[rows] == decisions[rows]).mean(axis=1)


def _same_distribution(a: np.ndarray, b: np.ndarray) -> bool:
    """Means and standard deviations agree within 5 standard errors of their difference."""
    sd = max(a.std(), b.std())
    mean_error = sd * math.sqrt(2 / N_REPLICATES)
    sd_error = sd * math.sqrt(2 / (2 * (N_REPLICATES - 1)))
    return abs(a.mean() - b.mean()) < 5 * mean_error and abs(a.std() - b.std()) < 5 * sd_error


def _skewed_predictions():
    rng = np.random.default_rng(11)
    labels = (rng.random(N_ROWS) < 0.3).astype(int)
    decisions = np.where(rng.random(N_ROWS) < 0.85, labels, 1 - labels)
    table = np.bincount(labels * 2 + decisions, minlength=4).reshape(2, 2)
    return labels, decisions, table


def test_count_table_bootstrap_matches_row_resampling():
    labels, decisions, table = _skewed_predictions()
    by_rows = _accuracy_replicates_by_rows(labels, decisions, np.random.default_rng(1))
    draws = stats.bootstrap_counts(table, N_REPLICATES, np.random.default_rng(2))
    by_counts = np.trace(draws, axis1=1, axis2=2) / N_ROWS
    assert _same_distribution(by_counts, by_rows)


def test_the_comparison_catches_a_wrong_resampling():
    labels, decisions, table = _skewed_predictions()
    by_rows = _accuracy_replicates_by_rows(labels, decisions, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    uniform_cells = rng.multinomial(N_ROWS, np.full(4, 0.25), size=N_REPLICATES).reshape(-1, 2, 2)
    assert not _same_distribution(np.trace(uniform_cells, axis1=1, axis2=2) / N_ROWS, by_rows)
    # right centre, wrong spread: resampling half as many rows
    half = rng.multinomial(N_ROWS // 2, table.ravel() / N_ROWS, size=N_REPLICATES).reshape(-1, 2, 2)
    assert not _same_distribution(np.trace(half, axis1=1, axis2=2) / (N_ROWS // 2), by_rows)


@pytest.mark.parametrize(
    "counts",
    [
        np.array([120, 30, 45, 5]),  # few cells: drawn by numpy's multinomial
        np.random.default_rng(4).integers(1, 9, size=60),  # many cells: drawn through rows
    ],
)
def test_both_routes_of_count_bootstrap_match_row_resampling(counts):
    values = np.random.default_rng(5).normal(size=counts.size) ** 2  # a skewed per-cell value
    rows = np.repeat(values, counts)
    picks = np.random.default_rng(1).integers(0, rows.size, size=(N_REPLICATES, rows.size))
    by_rows = rows[picks].mean(axis=1)
    draws = stats.bootstrap_counts(counts, N_REPLICATES, np.random.default_rng(2))
    assert _same_distribution(draws @ values / counts.sum(), by_rows)
    # and a draw that ignores how many rows each cell holds is caught
    flat = np.random.default_rng(2).multinomial(counts.sum(), np.full(counts.size, 1 / counts.size), size=N_REPLICATES)
    assert not _same_distribution(flat @ values / counts.sum(), by_rows)


def test_weight_bootstrap_matches_row_resampling_for_auc():
    y, score = _binary_data(5, n=N_ROWS)
    rows = np.random.default_rng(1).integers(0, N_ROWS, size=(N_REPLICATES, N_ROWS))
    by_rows = np.array([roc_auc_score(y[r], score[r]) for r in rows[:1000]])
    weights = np.concatenate(list(stats.bootstrap_weights_chunks(N_ROWS, 1000, np.random.default_rng(2))))
    by_weights = stats.roc_auc(y, score, weights)
    sd = max(by_rows.std(), by_weights.std())
    assert abs(by_rows.mean() - by_weights.mean()) < 5 * sd * math.sqrt(2 / 1000)
    assert abs(by_rows.std() - by_weights.std()) < 5 * sd * math.sqrt(1 / 999)


def test_distinct_rows_with_counts_reproduce_the_rows():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 100).astype(float)
    y = rng.integers(0, 2, 100)
    first, counts = stats.distinct_rows([-score, y])
    assert counts.sum() == 100 and first.size == len({(s, t) for s, t in zip(score, y)})
    assert np.all(np.diff(-score[first]) >= 0)
    assert float(stats.roc_auc(y[first], score[first], counts)) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


# --- intervals -----------------------------------------------------------------------------


def test_percentile_interval_skips_nan_and_reports_none_defined():
    assert stats.percentile_interval(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), 0.5) == (1.75, 3.25)
    low, high = stats.percentile_interval(np.full(5, np.nan), 0.9)
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="level"):
        stats.percentile_interval(np.ones(3), 1.0)


def test_interval_contains_the_point_estimate():
    labels, decisions, table = _skewed_predictions()
    accuracy = np.trace(table) / N_ROWS
    draws = stats.bootstrap_counts(table, 1000, np.random.default_rng(0))
    low, high = stats.percentile_interval(np.trace(draws, axis1=1, axis2=2) / N_ROWS, 0.95)
    assert low < accuracy < high
    assert high - low < 0.2


def test_coverage_of_a_bernoulli_proportion():
    rng = np.random.default_rng(2024)
    p, n, covered = 0.3, 120, 0
    for _ in range(400):
        positives = int((rng.random(n) < p).sum())
        draws = stats.bootstrap_counts(np.array([n - positives, positives]), 1000, rng)
        low, high = stats.percentile_interval(draws[:, 1] / n, 0.95)
        covered += low <= p <= high
    assert 0.90 <= covered / 400 <= 0.99
