"""From per-row attributions to the figures a reader sees, with bootstrap intervals over rows.

Every figure here is a mean over the explained rows (or a ratio of two means), so one
resampling scheme serves all: row weights from :func:`audit.stats.bootstrap_weights_chunks`,
``b`` replicates at a time, each mean a matrix product. Groups are resampled within the group
(their size stays fixed), independently of each other, so a difference between two groups
takes the difference of their replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit import stats


@dataclass(frozen=True)
class Estimate:
    """Point values and percentile intervals of K statistics (NaN bounds: no interval)."""

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int

    def interval(self, k: int) -> tuple[float, float] | None:
        low, high = float(self.low[k]), float(self.high[k])
        return None if np.isnan(low) or np.isnan(high) else (low, high)


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: replicates, level and a seeded generator (consumed in order)."""

    replicates: int
    level: float
    rng: np.random.Generator

    def means(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column means ``(K,)`` and their replicates ``(b, K)`` (``(0, K)`` without bootstrap)."""
        columns = np.asarray(columns, dtype=np.float64)
        n = columns.shape[0]
        if n == 0:
            return np.full(columns.shape[1], np.nan), np.zeros((0, columns.shape[1]))
        point = columns.mean(axis=0)
        parts = [w @ columns / n for w in stats.bootstrap_weights_chunks(n, self.replicates, self.rng)]
        return point, (np.concatenate(parts) if parts else np.zeros((0, columns.shape[1])))

    def estimate(self, point: np.ndarray, replicates: np.ndarray, n: int) -> Estimate:
        bounds = [stats.percentile_interval(replicates[:, k], self.level) if replicates.shape[0] else (np.nan, np.nan)
                  for k in range(point.shape[0])]
        low, high = (np.array(side, dtype=np.float64).reshape(-1) for side in zip(*bounds)) if bounds else (point, point)
        return Estimate(np.asarray(point, dtype=np.float64), low, high, n)

    def mean(self, columns: np.ndarray) -> Estimate:
        point, replicates = self.means(columns)
        return self.estimate(point, replicates, columns.shape[0])

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
        """``sum(numerator) / sum(denominator)`` per column, resampled as a ratio of means."""
        point, replicates = self.means(np.column_stack([numerator, denominator]))
        k = point.shape[0] // 2
        return self.estimate(stats.divide(point[:k], point[k:]), stats.divide(replicates[:, :k], replicates[:, k:]),
                             len(numerator))


def importance(features: np.ndarray, bootstrap: Bootstrap) -> Estimate:
    """Mean absolute attribution of each feature over the rows."""
    return bootstrap.mean(np.abs(features))


def shares(features: np.ndarray, columns: list[int], bootstrap: Bootstrap) -> Estimate:
    """Share of all absolute attribution that goes to ``columns`` (each, then all of them together)."""
    magnitude = np.abs(features)
    total = magnitude.sum(axis=1)
    chosen = np.column_stack([magnitude[:, columns], magnitude[:, columns].sum(axis=1)])
    return bootstrap.ratio(chosen, np.repeat(total[:, None], chosen.shape[1], axis=1))


@dataclass(frozen=True)
class GroupFigures:
    """One sensitive column's groups: mean |attribution| and mean signed attribution per feature.

    ``differences`` compare each group with ``reference`` (its replicates minus the
    reference's): of the absolute means, and of the signed means toward the positive class.
    """

    labels: tuple[str, ...]
    sizes: np.ndarray
    reference: int
    importance: tuple[Estimate, ...]
    importance_differences: tuple[Estimate | None, ...]
    signed_differences: tuple[Estimate | None, ...]


def by_group(features: np.ndarray, toward_positive: np.ndarray | None, codes: np.ndarray, labels: tuple[str, ...],
             reference: int, bootstrap: Bootstrap) -> GroupFigures:
    """Per-group figures of ``(n, F)`` feature attributions; ``codes[i]`` is row i's group."""
    columns = features.shape[1]
    signed = toward_positive if toward_positive is not None else np.zeros_like(features)
    stacked = np.column_stack([np.abs(features), signed])
    draws = [bootstrap.means(stacked[codes == g]) for g in range(len(labels))]
    sizes = np.bincount(codes, minlength=len(labels))
    importance = tuple(bootstrap.estimate(p[:columns], r[:, :columns], int(s)) for (p, r), s in zip(draws, sizes))
    base_point, base_reps = draws[reference]
    abs_diff, signed_diff = [], []
    for g, (point, reps) in enumerate(draws):
        if g == reference or sizes[g] == 0 or sizes[reference] == 0:
            abs_diff.append(None)
            signed_diff.append(None)
            continue
        b = min(reps.shape[0], base_reps.shape[0])
        delta, delta_reps = point - base_point, reps[:b] - base_reps[:b]
        n = int(sizes[g] + sizes[reference])
        abs_diff.append(bootstrap.estimate(delta[:columns], delta_reps[:, :columns], n))
        signed_diff.append(bootstrap.estimate(delta[columns:], delta_reps[:, columns:], n) if toward_positive is not None else None)
    return GroupFigures(labels, sizes, reference, importance, tuple(abs_diff), tuple(signed_diff))


def compact_map(values: np.ndarray, *, largest: int = 32, levels: int = 99) -> tuple[list[int], list[int], float]:
    """An image-shaped array ``(C, H, W)`` summed over channels, block-summed to at most
    ``largest`` pixels a side, and quantised to integers in ``[-levels, levels]``.

    Returns the shape ``[h, w]``, the integers row by row, and the scale (the largest
    absolute value): a heatmap of any image costs at most ``largest**2`` small numbers.
    """
    plane = np.asarray(values, dtype=np.float64).reshape(values.shape[0] if values.ndim == 3 else 1, *values.shape[-2:]).sum(axis=0)
    plane = _block_sum(plane, largest)
    scale = float(np.abs(plane).max())
    quantised = np.zeros(plane.shape, dtype=np.int64) if scale == 0 else np.rint(plane / scale * levels).astype(np.int64)
    return list(plane.shape), quantised.ravel().tolist(), scale


def _block_sum(plane: np.ndarray, largest: int) -> np.ndarray:
    height, width = plane.shape
    step = max(1, -(-max(height, width) // largest))
    if step == 1:
        return plane
    padded = np.zeros((-(-height // step) * step, -(-width // step) * step))
    padded[:height, :width] = plane
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).sum(axis=(1, 3))


def grey_image(image: np.ndarray, value_range: tuple[float, float], *, largest: int = 32) -> list[int]:
    """An image ``(C, H, W)`` as grey levels 0..255, channel mean, block-averaged like :func:`compact_map`."""
    low, high = value_range
    plane = np.asarray(image, dtype=np.float64).mean(axis=0)
    step = max(1, -(-max(plane.shape) // largest))
    summed = _block_sum(plane, largest)
    counts = _block_sum(np.ones_like(plane), largest)
    scaled = (summed / np.maximum(counts, 1) - low) / (high - low) if step > 1 else (plane - low) / (high - low)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.int64).ravel().tolist()
