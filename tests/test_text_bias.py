"""Bias AUCs (Borkan et al. 2019) against scikit-learn's roc_auc_score on the defined subsets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from audit import stats
from audit.text import bias


def _data(seed: int, n: int = 400, ties: bool = False):
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.4
    scores = np.clip(rng.normal(0.5 + 0.2 * positive, 0.2), 0, 1)
    if ties:
        scores = np.round(scores, 1)
    groups = {"female": rng.random(n) < 0.2, "male": rng.random(n) < 0.3, "other": rng.random(n) < 0.1}
    return positive, scores, groups


def _sklearn(positive, scores, subgroup):
    bg = ~subgroup
    return {
        "subgroup_auc": roc_auc_score(positive[subgroup], scores[subgroup]),
        "bpsn_auc": roc_auc_score(
            np.r_[positive[bg & positive], positive[subgroup & ~positive]],
            np.r_[scores[bg & positive], scores[subgroup & ~positive]],
        ),
        "bnsp_auc": roc_auc_score(
            np.r_[positive[bg & ~positive], positive[subgroup & positive]],
            np.r_[scores[bg & ~positive], scores[subgroup & positive]],
        ),
    }


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, False), (3, True)])
def test_bias_aucs_match_sklearn_on_the_defined_subsets(seed, ties):
    positive, scores, groups = _data(seed, ties=ties)
    ranking = stats.ranking(positive, scores)
    for mask in groups.values():
        ours = bias.bias_aucs(ranking, positive, mask)
        for name, expected in _sklearn(positive, scores, mask).items():
            assert abs(float(ours[name]) - expected) <= 1e-12, name


def test_power_mean_and_final_score_as_the_jigsaw_benchmark():
    positive, scores, groups = _data(5)
    found = bias.bias_statistics(stats.ranking(positive, scores), positive, groups, power=-5, overall_weight=0.25)
    means = {}
    for name in bias.BIAS_METRICS:
        values = np.array([_sklearn(positive, scores, mask)[name] for mask in groups.values()])
        means[name] = np.mean(values ** -5.0) ** (1 / -5.0)  # the benchmark notebook's power_mean
        assert abs(float(found[f"{name}:power_mean"]) - means[name]) <= 1e-12
    overall = roc_auc_score(positive, scores)
    expected = 0.25 * overall + 0.25 * sum(means.values())
    assert abs(float(found["final_score"]) - expected) <= 1e-12
    # p = -5 sits between the minimum and the arithmetic mean
    values = np.array([_sklearn(positive, scores, mask)["bpsn_auc"] for mask in groups.values()])
    assert values.min() <= float(found["bpsn_auc:power_mean"]) <= values.mean()


def test_bootstrap_weights_give_each_replicates_subset_auc():
    positive, scores, groups = _data(7, n=120, ties=True)
    weights = next(stats.bootstrap_weights_chunks(len(positive), 5, np.random.default_rng(0)))
    ranking = stats.ranking(positive, scores)
    found = bias.bias_aucs(ranking, positive, groups["male"], weights)
    for row, w in enumerate(weights):
        expected = _sklearn(np.repeat(positive, w), np.repeat(scores, w), np.repeat(groups["male"], w))
        for name, value in expected.items():
            assert abs(float(found[name][row]) - value) <= 1e-12


def test_a_subgroup_without_negatives_is_undefined_not_zero():
    positive = np.array([True, True, False, False, True])
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.7])
    subgroup = np.array([True, True, False, False, False])
    found = bias.bias_aucs(stats.ranking(positive, scores), positive, subgroup)
    assert np.isnan(found["subgroup_auc"]) and np.isnan(found["bpsn_auc"])
    assert float(found["bnsp_auc"]) == roc_auc_score([False, False, True, True], [0.3, 0.2, 0.9, 0.8])
