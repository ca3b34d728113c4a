"""Bias AUCs of Borkan et al. 2019 ("Nuanced Metrics for Measuring Unintended Bias with Real
Data for Text Classification"), as the Jigsaw Unintended Bias benchmark computes them.

For an identity subgroup ``g`` (texts mentioning one of its terms), with the positive class's
score ranking the texts:

- subgroup AUC: the AUC over texts in ``g`` only;
- BPSN AUC (background positive, subgroup negative): over positives outside ``g`` and
  negatives inside it; low when the model scores the subgroup's negatives too high;
- BNSP AUC (background negative, subgroup positive): over negatives outside ``g`` and
  positives inside it; low when it scores the subgroup's positives too low.

Each metric is summarised over the subgroups by the generalized power mean
``M_p = (mean_g m_g ** p) ** (1 / p)`` with ``p = -5`` (close to the minimum, so the worst
subgroup dominates), and the final score is ``w0 * overall AUC + sum_a w_a * M_p(m_a)`` with
every weight 1/4 in the benchmark. Vectorised over bootstrap weight matrices: a subset's AUC is
the AUC with every row outside the subset weighted 0.
"""

from __future__ import annotations

import numpy as np

from audit import stats

BIAS_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def subset_masks(positive: np.ndarray, subgroup: np.ndarray) -> dict[str, np.ndarray]:
    """Rows each bias AUC of one subgroup is computed on (boolean, one per row)."""
    positive = np.asarray(positive, dtype=bool)
    subgroup = np.asarray(subgroup, dtype=bool)
    return {
        "subgroup_auc": subgroup,
        "bpsn_auc": (~subgroup & positive) | (subgroup & ~positive),
        "bnsp_auc": (~subgroup & ~positive) | (subgroup & positive),
    }


def bias_aucs(ranking: stats.Ranking, positive: np.ndarray, subgroup: np.ndarray,
              weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The three AUCs of one subgroup; NaN where a subset lacks positives or negatives.

    ``weights``: None, or ``(b, n)`` bootstrap row weights (one replicate per row).
    """
    base = np.ones(ranking.n, dtype=np.int64) if weights is None else weights
    return {name: ranking.roc_auc(base * mask) for name, mask in subset_masks(positive, subgroup).items()}


def power_mean(values: np.ndarray, p: float) -> np.ndarray:
    """Generalized mean over the last axis; NaN when any value is NaN (an undefined subgroup AUC)."""
    values = np.asarray(values, dtype=np.float64)
    if p == 0:
        return np.exp(np.mean(np.log(values), axis=-1))
    with np.errstate(divide="ignore"):
        return np.power(np.mean(np.power(values, p), axis=-1), 1.0 / p)


def final_score(overall_auc: np.ndarray, means: dict[str, np.ndarray], overall_weight: float) -> np.ndarray:
    """``w0 * overall AUC + (1 - w0) / 3 * (sum of the three power means)``; w0 = 1/4 in Jigsaw."""
    share = (1.0 - overall_weight) / len(BIAS_METRICS)
    return overall_weight * overall_auc + share * sum(means[name] for name in BIAS_METRICS)


def bias_statistics(ranking: stats.Ranking, positive: np.ndarray, subgroups: dict[str, np.ndarray],
                    *, power: float, overall_weight: float,
                    weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every number of the benchmark at once: keys ``METRIC:GROUP``, ``METRIC:power_mean``,
    ``overall_auc`` and ``final_score``; one function for the point and the replicates."""
    out: dict[str, np.ndarray] = {"overall_auc": ranking.roc_auc(weights)}
    per_metric: dict[str, list[np.ndarray]] = {name: [] for name in BIAS_METRICS}
    for group, mask in subgroups.items():
        for name, value in bias_aucs(ranking, positive, mask, weights).items():
            out[f"{name}:{group}"] = value
            per_metric[name].append(value)
    means = {name: power_mean(np.stack(values, axis=-1), power) for name, values in per_metric.items()}
    out |= {f"{name}:power_mean": value for name, value in means.items()}
    out["final_score"] = final_score(out["overall_auc"], means, overall_weight)
    return out
