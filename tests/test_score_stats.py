"""Per-group score statistics from one sort: values against scikit-learn, errors against
brute-force DeLong and a slow row bootstrap, coverage against a known population."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from audit import score_stats, stats

TOL = 1e-12


def scored(seed: int, n: int, cells: int = 6, decimals: int | None = 2):
    """Labels, scores (rounded to make ties), cells, and each row's log loss."""
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, cells, n)
    score = rng.beta(2, 3, n)
    if decimals is not None:
        score = np.round(score, decimals)
    positive = rng.random(n) < 0.1 + 0.8 * score
    losses = stats.log_loss_terms(positive.astype(int), np.stack([1 - score, score], axis=1))
    return positive, score, cell, losses


def sklearn_values(positive, score, bins):
    probabilities = np.stack([1 - score, score], axis=1)
    return {
        "roc_auc": roc_auc_score(positive, score),
        "average_precision": average_precision_score(positive, score),
        "log_loss": log_loss(positive, probabilities, labels=[0, 1]),
        "expected_calibration_error": _ece(positive, score, bins),
    }


def _ece(positive, score, bins):
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(positive, score, n_bins=bins, strategy="uniform")
    totals = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], score), minlength=bins)
    return float(np.sum(totals[totals > 0] / score.size * np.abs(observed - predicted)))


@pytest.mark.parametrize("decimals", [2, None])
@pytest.mark.parametrize("bins", [10, 7])
def test_every_group_equals_sklearn(decimals, bins):
    positive, score, cell, losses = scored(0, 3000, decimals=decimals)
    units = score_stats.collapse(score, positive, cell, losses)
    cell_to_group = np.array([2, 0, 0, 1, 2, 2])  # groups need not follow cell order
    found = score_stats.group_statistics(units, cell_to_group, 4, bins)  # group 3 is empty
    for g in range(3):
        rows = cell_to_group[cell] == g
        for metric, expected in sklearn_values(positive[rows], score[rows], bins).items():
            assert found.values[metric][g] == pytest.approx(expected, abs=TOL), (metric, g)
    assert all(np.isnan(found.values[m][3]) for m in score_stats.METRICS)
    assert units.count.sum() == 3000


def test_one_class_is_undefined_and_scores_without_probabilities():
    positive, score, cell, _ = scored(1, 500)
    positive[cell == 0] = True
    found = score_stats.group_statistics(score_stats.collapse(score, positive, cell), np.arange(6), 6, 10)
    assert np.isnan(found.values["roc_auc"][0]) and not np.isnan(found.values["roc_auc"][1:]).any()
    assert set(found.values) == {"roc_auc", "average_precision"}
    assert found.interval("roc_auc", 0, 0.95) is None


def delong_brute_force(positive, score):
    """DeLong's variance from placement values computed pair by pair."""
    pos, neg = score[positive], score[~positive]
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = wins.mean(axis=1), wins.mean(axis=0)
    return v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


def test_roc_auc_error_is_delongs_variance():
    positive, score, cell, losses = scored(2, 1200, cells=3)
    found = score_stats.group_statistics(score_stats.collapse(score, positive, cell, losses), np.arange(3), 3, 10)
    for g in range(3):
        rows = cell == g
        assert found.errors["roc_auc"][g] ** 2 == pytest.approx(delong_brute_force(positive[rows], score[rows]), rel=1e-9)


def test_log_loss_error_is_the_standard_error_of_the_mean():
    positive, score, cell, losses = scored(3, 900, cells=2)
    found = score_stats.group_statistics(score_stats.collapse(score, positive, cell, losses), np.arange(2), 2, 10)
    for g in range(2):
        terms = losses[cell == g]
        assert found.errors["log_loss"][g] == pytest.approx(terms.std(ddof=1) / np.sqrt(terms.size), rel=1e-9)


def row_bootstrap(positive, score, bins, replicates, rng):
    """The slow reference: resample rows, recompute every metric with scikit-learn."""
    values = {metric: [] for metric in score_stats.METRICS}
    for _ in range(replicates):
        rows = rng.integers(0, score.size, score.size)
        for metric, value in sklearn_values(positive[rows], score[rows], bins).items():
            values[metric].append(value)
    return {metric: np.array(v) for metric, v in values.items()}


def test_errors_match_a_slow_row_bootstrap():
    """Jackknife standard errors against the spread of 400 row-resampled replicates per group.

    Four hundred replicates estimate a standard deviation within about 7% (one sigma); the
    calibration error's |.| folds its bootstrap distribution, so ours is allowed to be wider.
    """
    positive, score, cell, losses = scored(4, 2400, cells=2, decimals=3)
    found = score_stats.group_statistics(score_stats.collapse(score, positive, cell, losses), np.arange(2), 2, 10)
    rng = np.random.default_rng(0)
    for g in range(2):
        rows = cell == g
        reference = row_bootstrap(positive[rows], score[rows], 10, 400, rng)
        for metric in ("roc_auc", "average_precision", "log_loss"):
            assert found.errors[metric][g] == pytest.approx(reference[metric].std(), rel=0.2), (metric, g)
        ratio = found.errors["expected_calibration_error"][g] / reference["expected_calibration_error"].std()
        assert 0.8 < ratio < 1.6


def test_coverage_of_roc_auc_average_precision_and_log_loss():
    """Draw 300 samples of 400 rows from a known population; about 95% of intervals hold the truth.

    Population: score ~ Beta(2, 3), label ~ Bernoulli(0.1 + 0.8 score). Truths from one
    sample of 2,000,000 rows (their own error is far below the intervals' widths).
    """
    positive, score, _, losses = scored(99, 2_000_000, cells=1, decimals=None)
    truth = score_stats.group_statistics(score_stats.collapse(score, positive, None, losses), np.zeros(1), 1, 10)
    hits = {metric: 0 for metric in ("roc_auc", "average_precision", "log_loss")}
    trials = 300
    for trial in range(trials):
        positive, score, _, losses = scored(1000 + trial, 400, cells=1, decimals=None)
        found = score_stats.group_statistics(score_stats.collapse(score, positive, None, losses), np.zeros(1), 1, 10)
        for metric in hits:
            low, high = found.interval(metric, 0, 0.95)
            hits[metric] += low <= truth.values[metric][0] <= high
    for metric, count in hits.items():
        # 95% nominal; 300 trials give a binomial sd of 1.3 points
        assert 0.91 <= count / trials <= 0.99, (metric, count / trials)


def test_perfect_ranking_keeps_a_binomial_interval():
    positive = np.array([True] * 40 + [False] * 60)
    score = np.linspace(1, 0, 100)
    found = score_stats.group_statistics(score_stats.collapse(score, positive), np.zeros(1), 1, 10)
    for metric in ("roc_auc", "average_precision"):
        assert found.values[metric][0] == 1.0 and found.errors[metric][0] == 0.0
        low, high = found.interval(metric, 0, 0.95)
        assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 40))


def test_interval_is_normal_and_clipped():
    positive, score, cell, losses = scored(5, 300, cells=1)
    found = score_stats.group_statistics(score_stats.collapse(score, positive, cell, losses), np.zeros(1), 1, 10)
    z = NormalDist().inv_cdf(0.975)
    value, error = found.values["roc_auc"][0], found.errors["roc_auc"][0]
    assert found.interval("roc_auc", 0, 0.95) == pytest.approx((value - z * error, min(1.0, value + z * error)))
    assert found.interval("log_loss", 0, 0.95)[0] >= 0


def test_a_single_positive_gets_the_whole_range():
    positive = np.zeros(200, dtype=bool)
    positive[7] = True
    score = np.linspace(0, 1, 200)
    found = score_stats.group_statistics(score_stats.collapse(score, positive), np.zeros(1), 1, 10)
    assert not np.isnan(found.values["roc_auc"][0])
    assert found.interval("roc_auc", 0, 0.95) == (0.0, 1.0)
    assert found.interval("average_precision", 0, 0.95) == (0.0, 1.0)
