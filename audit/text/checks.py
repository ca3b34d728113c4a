"""The text checks, registered in :mod:`audit.checks` and run only on text data.

``identity_bias``: Borkan et al. 2019 bias AUCs per identity-mention subgroup, their
generalized power means and the Jigsaw final score, with bootstrap intervals.
``counterfactual``: identity-term swaps (:mod:`audit.text.counterfactual`).
``token_attributions`` and ``text_robustness``: :mod:`audit.text.attributions`,
:mod:`audit.text.attacks`.
"""

from __future__ import annotations

import numpy as np

from audit import stats
from audit.context import AuditContext
from audit.errors import CheckError
from audit.results import Measurement
from audit.text import bias
from audit.text.identity import MENTIONS_PREFIX, YES

IDENTITY_BIAS_METRICS = (
    *bias.BIAS_METRICS, *(f"{name}_power_mean" for name in bias.BIAS_METRICS), "overall_auc", "bias_score",
)
# which of the subgroup's classes each AUC compares against the background: the rate's denominator
SUBGROUP_CLASSES = {"subgroup_auc": (True, False), "bpsn_auc": (False,), "bnsp_auc": (True,)}


def identity_subgroups(ctx: AuditContext) -> dict[str, np.ndarray]:
    """Identity group -> boolean mask of the texts mentioning it (groups with no mention are absent)."""
    frame = ctx.data.sensitive
    return {
        column[len(MENTIONS_PREFIX):]: (frame[column] == YES).to_numpy()
        for column in frame.columns
        if str(column).startswith(MENTIONS_PREFIX)
    }


def binary_scores(ctx: AuditContext, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not ctx.data.is_binary or ctx.predictions.scores is None:
        raise CheckError(f"{what} needs a binary classifier with scores", hint=f"disable checks.{what} for this model")
    return ctx.data.labels == ctx.data.positive_index, ctx.predictions.scores


def run_identity_bias(ctx: AuditContext) -> list[Measurement]:
    positive, scores = binary_scores(ctx, "identity_bias")
    subgroups = identity_subgroups(ctx)
    if not subgroups:
        ctx.warn("identity_bias: no identity group of data.identity is mentioned in the texts; no bias AUCs")
        return []
    section = ctx.config.checks.identity_bias
    ranking = stats.ranking(positive, scores)

    def statistic(weights):
        return bias.bias_statistics(ranking, positive, subgroups, power=section.power,
                                    overall_weight=section.overall_weight, weights=weights)

    point = statistic(None)
    settings = ctx.config.statistics
    chunks = stats.bootstrap_weights_chunks(len(positive), settings.bootstrap, np.random.default_rng(ctx.seed))
    replicates = stats.replicate(statistic, chunks)
    minimum = ctx.config.checks.fairness.min_group_size

    def interval(key):
        if key not in replicates:
            return None
        low, high = stats.percentile_interval(replicates[key], settings.ci_level)
        return None if np.isnan(low) else (low, high)

    out = []
    for group, mask in subgroups.items():
        for name in bias.BIAS_METRICS:
            out.append(_bias_measurement(name, group, float(point[f"{name}:{group}"]), interval(f"{name}:{group}"),
                                         mask, positive, minimum))
    params = {"p": section.power}
    for name in bias.BIAS_METRICS:
        key = f"{name}:power_mean"
        out.append(_summary(f"{name}_power_mean", point[key], interval(key), len(positive), params))
    out.append(_summary("overall_auc", point["overall_auc"], interval("overall_auc"), len(positive), {}))
    out.append(_summary("bias_score", point["final_score"], interval("final_score"), len(positive),
                        params | {"overall_weight": section.overall_weight}))
    return out


def _bias_measurement(name, group, value, ci, mask, positive, minimum) -> Measurement:
    sizes = [int((mask & (positive == cls)).sum()) for cls in SUBGROUP_CLASSES[name]]
    if np.isnan(value):
        return Measurement("identity_bias", name, None, group={"identity": group}, n=int(mask.sum()),
                           status="undefined", note="the subset lacks positives or negatives")
    small = min(sizes) < minimum
    note = f"insufficient: the subgroup has {min(sizes)} texts of the class compared, fewer than {minimum}" if small else None
    return Measurement("identity_bias", name, value, group={"identity": group}, ci=ci, n=int(mask.sum()),
                       status="insufficient" if small else None, note=note)


def _summary(metric: str, value, ci, n: int, params: dict) -> Measurement:
    value = float(value)
    if np.isnan(value):
        return Measurement("identity_bias", metric, None, n=n, params=params, status="undefined",
                           note="a subgroup's AUC is undefined")
    return Measurement("identity_bias", metric, value, ci=ci, n=n, params=params)
