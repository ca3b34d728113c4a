"""The costly sub-context of a sharded run: the rows explanations and attacks may pick, kept whole.

A sharded run's summary holds no features, but explanations and attacks need the rows they
explain or attack. Which rows those are is fixed by :func:`audit.sampling.candidate_mask` (
the k smallest seeded hashes of the row ids per sampling stream, the top-k rows by margin, the
requested ids): each is an order statistic, so the candidates of the whole data are among the
union of every batch's candidates, and applying the mask again to that union (the re-trim)
leaves exactly the rows the whole-data plan picks. Each batch keeps its candidates with their
features, labels, sensitive values, source rows and predictions; the driver merges them in
row-id order and builds the row view (:meth:`audit.context.AuditContext.row_view`). Text runs
with the counterfactual check or token attributions also keep every text a swap rewrites (both
read them all).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from audit import sampling
from audit.config import AuditConfig
from audit.context import AuditContext, AuditData, Predictions


@dataclass(frozen=True)
class Candidates:
    """Some rows of the data, whole: features and source rows too, in row-id order."""

    data: AuditData
    predictions: Predictions


def wanted(config: AuditConfig) -> bool:
    """Whether any check that reads the row view will run (then batches keep their candidates)."""
    checks = config.checks
    if config.model.kind == "predictions":
        return False
    if config.data.kind == "text":
        return any(section.enabled for section in (checks.counterfactual, checks.token_attributions, checks.text_robustness))
    return checks.explanations.enabled or checks.robustness.enabled


def keep(config: AuditConfig, data: AuditData, predictions: Predictions) -> Candidates | None:
    """The batch's rows that the costly checks may pick (None when no such check runs)."""
    if not wanted(config) or data.n == 0:
        return None
    return _take(data, predictions, np.flatnonzero(_mask(config, data, predictions)))


def merge(config: AuditConfig, parts: Iterable[Candidates | None]) -> Candidates | None:
    """Every batch's candidates in row-id order, trimmed again to the whole data's candidates."""
    found = [part for part in parts if part is not None]
    if not found:
        return None
    data = AuditData(
        labels=np.concatenate([p.data.labels for p in found]),
        classes=found[0].data.classes,
        positive_index=found[0].data.positive_index,
        sensitive=pd.concat([p.data.sensitive for p in found], ignore_index=True),
        features=_cat([p.data.features for p in found]),
        columns=found[0].data.columns,
        frame=pd.concat([p.data.frame for p in found], ignore_index=True),
        row_ids=np.concatenate([p.data.row_ids for p in found]),
    )
    predictions = Predictions(
        decisions=np.concatenate([p.predictions.decisions for p in found]),
        probabilities=_stack([p.predictions.probabilities for p in found]),
        scores=_stack([p.predictions.scores for p in found]),
    )
    order = np.argsort(data.row_ids, kind="stable")
    merged = _take(data, predictions, order)
    return _take(merged.data, merged.predictions, np.flatnonzero(_mask(config, merged.data, merged.predictions)))


def view(ctx: AuditContext, candidates: Candidates) -> AuditContext:
    """The row view: the candidates as an ordinary context sharing the run's warnings and artefacts."""
    data = replace(candidates.data, summary=ctx.data.summary)
    return AuditContext(config=ctx.config, data=data, predictions=candidates.predictions, model=ctx.model,
                        warnings=ctx.warnings, artefacts=ctx.artefacts, skipped=ctx.skipped, seconds=ctx.seconds,
                        feature_table=ctx.feature_table)


# ---------------------------------------------------------------- which rows


def _mask(config: AuditConfig, data: AuditData, predictions: Predictions) -> np.ndarray:
    mask = sampling.candidate_mask(config, data.row_ids, data.labels, predictions)
    checks = config.checks
    if config.data.kind == "text" and (checks.counterfactual.enabled or checks.token_attributions.enabled):
        mask = mask | _swapped_texts(config, data.frame[config.data.text_column].tolist())
    return mask


def _swapped_texts(config: AuditConfig, texts: list[str]) -> np.ndarray:
    """Texts some swap rewrites: the counterfactual check scores every one of them, and the token
    attributions highlight those whose score moved most (audit.text.checks.swap_outcomes)."""
    from audit.text.counterfactual import directions

    patterns = [d.pattern for spec in config.checks.counterfactual.swaps.values() for d in directions(spec)]
    return np.array([any(p.search(text) is not None for p in patterns) for text in texts], dtype=bool)


# ---------------------------------------------------------------- rows of rows


def _take(data: AuditData, predictions: Predictions, rows: np.ndarray) -> Candidates:
    import torch

    picked = replace(
        data,
        labels=data.labels[rows],
        sensitive=data.sensitive.iloc[rows].reset_index(drop=True),
        features=data.features[torch.from_numpy(rows)] if data.features is not None else None,
        frame=data.frame.iloc[rows].reset_index(drop=True) if data.frame is not None else None,
        row_ids=data.row_ids[rows],
    )
    return Candidates(picked, Predictions(
        decisions=predictions.decisions[rows],
        probabilities=None if predictions.probabilities is None else predictions.probabilities[rows],
        scores=None if predictions.scores is None else predictions.scores[rows],
    ))


def _cat(tensors: list):
    import torch

    return None if any(t is None for t in tensors) else torch.cat(tensors)


def _stack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(a is None for a in arrays) else np.concatenate(arrays)
