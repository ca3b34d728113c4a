"""Robust accuracy, attack success rate and median perturbation, with bootstrap intervals.

Every statistic of a sweep depends on the points only through the count of points in each
*state*: ``0`` for a point the model already gets wrong, ``k + 1`` for a point first broken at
epsilon index ``k``, ``K + 1`` for a point never broken (``K`` epsilons). Robust accuracy at
epsilon ``k`` is the share of points in states ``>= k + 2``; the attack success rate is the
share of clean-correct points (states ``>= 1``) in states ``1 .. k + 1``. Resampling points
with replacement is therefore exactly drawing the state counts from a multinomial
(:func:`audit.stats.bootstrap_counts`), overall, or within each cell of sensitive values for
the per-group intervals (:func:`audit.groups.stratified_replicates`, as the fairness check).

The median perturbation (of the clean-correct points: the smallest adversarial perturbation
the attack found for each, infinite where it found none) depends on the points only through
the count of each distinct perturbation size, so it is bootstrapped the same way.
"""

from __future__ import annotations

import numpy as np

from audit import groups, stats
from audit.groups import Cells, Grouping


def states(broken_at: np.ndarray) -> np.ndarray:
    return broken_at + 1


def state_counts(broken_at: np.ndarray, epsilons: int) -> np.ndarray:
    return np.bincount(states(broken_at), minlength=epsilons + 2)


def robust_accuracy(counts: np.ndarray) -> np.ndarray:
    """``(..., K + 2)`` state counts -> ``(..., K)`` robust accuracy at each epsilon."""
    above = np.flip(np.cumsum(np.flip(counts, axis=-1), axis=-1), axis=-1)  # points in state >= s
    return stats.divide(above[..., 2:], counts.sum(axis=-1, keepdims=True))


def success_rate(counts: np.ndarray) -> np.ndarray:
    """``(..., K + 2)`` state counts -> ``(..., K)`` share of clean-correct points broken by each epsilon."""
    broken = np.cumsum(counts[..., 1:-1], axis=-1)
    return stats.divide(broken, counts[..., 1:].sum(axis=-1, keepdims=True))


def curve(broken_at: np.ndarray, epsilons: int, replicates: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Overall robust accuracy and success rate at each epsilon; their replicates under ``"boot:"``."""
    counts = state_counts(broken_at, epsilons)
    out = {"robust_accuracy": robust_accuracy(counts), "attack_success_rate": success_rate(counts)}
    if replicates:
        chunks = list(stats.bootstrap_count_chunks(counts, replicates, rng))
        out["boot:robust_accuracy"] = np.concatenate([robust_accuracy(c) for c in chunks])
        out["boot:attack_success_rate"] = np.concatenate([success_rate(c) for c in chunks])
    return out


def group_curves(
    broken_at: np.ndarray, epsilons: int, cells: Cells, grouping: Grouping, replicates: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Robust accuracy ``(groups, K)`` per group, replicates ``(b, groups, K)``, group sizes."""
    tables = np.zeros((cells.count, epsilons + 2), dtype=np.int64)
    np.add.at(tables, (cells.codes, states(broken_at)), 1)
    membership = np.zeros((cells.count, grouping.size))
    membership[np.arange(cells.count), grouping.cell_to_group] = 1.0

    def by_group(cell_tables: np.ndarray) -> np.ndarray:
        return np.einsum("...cs,cg->...gs", cell_tables, membership)

    counts = by_group(tables)
    out = {"robust_accuracy": robust_accuracy(counts), "size": counts.sum(axis=-1).astype(int)}
    if replicates:
        chunks = [robust_accuracy(by_group(c)) for c in groups.stratified_replicates(tables, replicates, rng)]
        out["boot:robust_accuracy"] = np.concatenate(chunks)
    return out


def median(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of sorted distinct ``values`` repeated ``counts`` times (``(..., V)``), as ``np.median``.

    The mean of the two middle values for an even count; NaN for no points.
    """
    counts = np.asarray(counts)
    total = counts.sum(axis=-1, keepdims=True)
    running = np.cumsum(counts, axis=-1)
    low = np.argmax(running > (total - 1) // 2, axis=-1)
    high = np.argmax(running > total // 2, axis=-1)
    middle = (values[low] + values[high]) / 2  # inf where a middle point was never broken
    return np.where(total[..., 0] > 0, middle, np.nan)


def median_perturbation(distance: np.ndarray, replicates: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Median perturbation of the clean-correct points (``distance`` not NaN) and its replicates."""
    found = distance[~np.isnan(distance)]
    if found.size == 0:
        return float("nan"), np.full(replicates, np.nan)
    values, counts = np.unique(found, return_counts=True)
    point = float(median(values, counts))
    if not replicates:
        return point, np.zeros(0)
    boot = np.concatenate([median(values, c) for c in stats.bootstrap_count_chunks(counts, replicates, rng)])
    return point, boot


def gap(medians: np.ndarray, replicates: np.ndarray) -> tuple[float, np.ndarray, int, int]:
    """Largest minus smallest group median, its replicates, and which groups hold them.

    Only groups with a finite median count; NaN (and positions -1) with fewer than two. A
    replicate in which one of those groups has no finite median is NaN (skipped by the
    interval), as in the fairness check's disparities.
    """
    finite = np.isfinite(medians)
    if finite.sum() < 2:
        return float("nan"), np.full(replicates.shape[0], np.nan), -1, -1
    chosen = np.flatnonzero(finite)
    high, low = chosen[np.argmax(medians[chosen])], chosen[np.argmin(medians[chosen])]
    boot = replicates[:, chosen]
    ok = np.isfinite(boot).all(axis=1)
    spread = np.where(ok, np.where(ok[:, None], boot, 0).max(axis=1) - np.where(ok[:, None], boot, 0).min(axis=1), np.nan)
    return float(medians[high] - medians[low]), spread, int(high), int(low)
