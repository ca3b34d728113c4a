"""Whole-data feature statistics that a sharded run computes to the same bits as a local run.

Explanation baselines (the mean or median input) and the tabular attack domain (each column's
standard deviation, minimum and maximum) read the whole data, but a sharded run's driver holds
only the rows the costly checks picked. Both runs therefore compute these statistics from one
exact, mergeable summary: for each tabular column (each image channel) its distinct values and
their counts. Counts are integers, so shards merge by adding them; the statistics are then one
deterministic function of that table (``math.fsum`` over value x count products, exact for
float32 values), never of the row order, so the local and the sharded run agree to the last bit.
The price is memory for distinct values: one-hot, ordinal and integer columns and image pixels
hold few; a continuous column holds up to one entry per distinct value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class FeatureValues:
    """Per column (tabular) or channel (images): sorted distinct float32 values and their counts."""

    values: tuple[np.ndarray, ...]
    counts: tuple[np.ndarray, ...]

    @property
    def n(self) -> int:
        return int(self.counts[0].sum()) if self.counts else 0


def of(features: "torch.Tensor", data_kind: str) -> FeatureValues | None:
    """The table of one batch (or the whole data); None for token ids, which have no such statistics."""
    if data_kind == "text" or features is None:
        return None
    array = features.numpy()
    if data_kind == "image":  # per channel: every pixel of the channel
        groups = [array[:, c].reshape(-1) for c in range(array.shape[1])]
    else:
        groups = [array[:, k] for k in range(array.shape[1])]
    found = [np.unique(np.asarray(g, dtype=np.float32), return_counts=True) for g in groups]
    return FeatureValues(tuple(v for v, _ in found), tuple(c.astype(np.int64) for _, c in found))


def merge(parts: Iterable[FeatureValues | None]) -> FeatureValues | None:
    """Tables added: equal values' counts summed (integers, exact in any order)."""
    found = [p for p in parts if p is not None]
    if not found:
        return None
    values, counts = [], []
    for k in range(len(found[0].values)):
        every = np.concatenate([p.values[k] for p in found])
        unique, index = np.unique(every, return_inverse=True)
        values.append(unique)
        counts.append(_summed(index, np.concatenate([p.counts[k] for p in found]), len(unique)))
    return FeatureValues(tuple(values), tuple(counts))


def _summed(index: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, index, counts)
    return out


def mean(table: FeatureValues) -> np.ndarray:
    """Each column's mean: the correctly rounded sum of value x count (exact products), over n."""
    return np.array([math.fsum(v.astype(np.float64) * c) / c.sum() for v, c in zip(table.values, table.counts)])


def median(table: FeatureValues) -> np.ndarray:
    """Each column's lower median, as ``torch.median`` picks it: the value at sorted position (n - 1) // 2."""
    out = []
    for values, counts in zip(table.values, table.counts):
        position = (int(counts.sum()) - 1) // 2
        out.append(float(values[np.searchsorted(np.cumsum(counts), position, side="right")]))
    return np.array(out)


def moments(table: FeatureValues) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Population standard deviation, minimum and maximum of each column, in float64."""
    centre = mean(table)
    sd = [math.sqrt(math.fsum(c * np.square(v.astype(np.float64) - m)) / c.sum())
          for v, c, m in zip(table.values, table.counts, centre)]
    return np.array(sd), np.array([float(v[0]) for v in table.values]), np.array([float(v[-1]) for v in table.values])
