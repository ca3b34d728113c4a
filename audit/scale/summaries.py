"""Exact, mergeable summaries of scored rows: the count of each distinct row.

Every statistic the fairness, performance and data checks compute depends on the rows only
through their values, never their order or identity: confusion counts through (cell, label,
decision); ROC-AUC and average precision through the positive and negative counts per distinct
score; log loss and calibration through the probabilities. So the multiset of rows (each
distinct (sensitive values, label, decision, score, probabilities) row with its count) holds
every number the local run computes, and two shards' multisets merge by adding counts: integers,
so the merge is exact and independent of the number or order of shards. Nothing is bucketed:
distinct scores stay distinct, which is why a score given to many decimals keeps as many
distinct rows as it has distinct values (the exactness costs that memory, never accuracy).

The merged summary is sorted by its key columns, so its distinct rows come in one canonical
order whatever the sharding. The checks read them directly, each with its count as a weight
(``AuditData.weights``): nothing is expanded back into rows, so the driver holds the distinct
rows, not the rows. The count-based bootstraps (cell tables, distinct score rows) do not
depend on row order at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit.context import Predictions

LABEL, DECISION, SCORE = "__label", "__decision", "__score"
COUNT = "__count"


def _probability(k: int) -> str:
    return f"__probability_{k}"


@dataclass(frozen=True)
class Summary:
    """Distinct scored rows and how many rows share each; added across shards.

    ``keys`` has the sensitive columns (group values as text), the label and decision class
    indices, and the score and class probabilities when the predictions have them.
    ``rows_read`` and ``rows_after_filter`` count the source rows before any row is dropped.
    """

    keys: pd.DataFrame
    counts: np.ndarray
    sensitive: tuple[str, ...]
    n_classes: int
    rows_read: int = 0
    rows_after_filter: int = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def summarize(
    sensitive: pd.DataFrame, labels: np.ndarray, predictions: Predictions, n_classes: int, *, rows_read: int
) -> Summary:
    """The summary of one batch of scored rows (``rows_read`` counts them before the filter)."""
    columns = {str(c): np.asarray(sensitive[c].astype(str), dtype=object) for c in sensitive.columns}
    columns[LABEL] = np.asarray(labels, dtype=np.int64)
    columns[DECISION] = np.asarray(predictions.decisions, dtype=np.int64)
    if predictions.scores is not None:
        columns[SCORE] = np.asarray(predictions.scores, dtype=np.float64)
    if predictions.probabilities is not None:
        for k in range(n_classes):
            columns[_probability(k)] = np.asarray(predictions.probabilities[:, k], dtype=np.float64)
    frame = pd.DataFrame(columns)
    frame[COUNT] = np.ones(len(frame), dtype=np.int64)
    return _reduced(frame, tuple(str(c) for c in sensitive.columns), n_classes, rows_read, len(labels))


def merge(summaries: Iterable[Summary]) -> Summary:
    """Add shard summaries: equal rows' counts are summed (exact integers), keys sorted."""
    parts = list(summaries)
    if not parts:
        raise ValueError("no summaries to merge")
    frame = pd.concat([part.keys.assign(**{COUNT: part.counts}) for part in parts], ignore_index=True)
    return _reduced(
        frame,
        parts[0].sensitive,
        parts[0].n_classes,
        sum(part.rows_read for part in parts),
        sum(part.rows_after_filter for part in parts),
    )


def merge_stream(summaries: Iterable[Summary], *, fan_in: int = 16) -> Summary:
    """Merge summaries as they come, holding at most ``fan_in`` of them at once.

    The same summary as :func:`merge` over all of them (integer counts, sorted keys), but the
    memory is bounded by ``fan_in`` times the distinct rows, never by the number of shards:
    what lets the local streaming engine hold one batch and the running summary.
    """
    pending: list[Summary] = []
    for part in summaries:
        pending.append(part)
        if len(pending) >= fan_in:
            pending = [merge(pending)]
    # one summary is already merged (reduced and sorted): regrouping it would only cost time
    return pending[0] if len(pending) == 1 else merge(pending)


def _reduced(frame: pd.DataFrame, sensitive: tuple[str, ...], n_classes: int, read: int, kept: int) -> Summary:
    keys = [c for c in frame.columns if c != COUNT]
    if len(frame) == 0:
        return Summary(frame[keys], np.zeros(0, dtype=np.int64), sensitive, n_classes, read, kept)
    summed = frame.groupby(keys, sort=True, dropna=False)[COUNT].sum().reset_index()
    return Summary(summed[keys], summed[COUNT].to_numpy(np.int64), sensitive, n_classes, read, kept)


# ---------------------------------------------------------------- entries for the checks


def entries(summary: Summary, sensitive: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray, Predictions]:
    """The distinct rows as the checks read them: sensitive values, labels, predictions.

    One entry per distinct row, in the summary's canonical order, each standing for
    ``summary.counts`` rows (``AuditData.weights``): the checks count with those weights, so
    every count-based statistic and bootstrap equals the local run's without repeating a row.
    ``sensitive`` (one row per distinct row, e.g. the group columns with their dtypes)
    replaces the summary's own text.
    """
    keys = summary.keys
    distinct = keys[list(summary.sensitive)] if sensitive is None else sensitive
    labels = keys[LABEL].to_numpy(np.int64)
    decisions = keys[DECISION].to_numpy(np.int64)
    scores = keys[SCORE].to_numpy(np.float64) if SCORE in keys else None
    probabilities = None
    if _probability(0) in keys:
        probabilities = np.column_stack([keys[_probability(k)].to_numpy(np.float64) for k in range(summary.n_classes)])
    return distinct.reset_index(drop=True), labels, Predictions(decisions=decisions, probabilities=probabilities, scores=scores)
