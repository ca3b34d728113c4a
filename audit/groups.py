"""The fairness engine: per-group confusion counts in one pass, every rate derived from them.

Rows are coded once by their combination of sensitive values (the *cells*: the finest cross
of every sensitive column). One ``bincount`` over ``cell * C * C + label * C + decision``
gives a ``(cells, C, C)`` confusion table; any grouping (one column, or a cross of several) is
a sum of cells, and every count-based metric of every group follows from its table. Nothing
is recomputed from rows, so 1M rows with hundreds of groups cost one pass.

Bootstrap, stratified by cell: a replicate resamples each cell's rows with replacement, keeping
its size. For a statistic that depends on the rows only through the cell's confusion counts,
resampling ``n_g`` rows is exactly drawing those counts from Multinomial(n_g, p_g), where
``p_g`` are the cell's observed (label, decision) proportions: each resampled row is an
independent draw from the empirical distribution of the cell's rows, and only its
(label, decision) pair is counted. So one multinomial draw per cell replaces copying the data,
and a coarser group's replicate is the sum of its cells' replicates (stratifying by the finest
cells keeps every coarser group's size fixed too).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit import stats

RATES = (
    "base_rate", "selection_rate", "accuracy", "true_positive_rate", "false_positive_rate",
    "false_negative_rate", "true_negative_rate", "positive_predictive_value",
    "negative_predictive_value", "f1",
)


@dataclass(frozen=True)
class Cells:
    """Rows coded by their combination of sensitive values."""

    columns: tuple[str, ...]
    codes: np.ndarray  # (n,) cell of each row
    values: pd.DataFrame  # one row per cell: its value in each column
    levels: dict[str, tuple[str, ...]]  # each column's values in display order (bin order when binned)

    @property
    def count(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Grouping:
    """One way of grouping rows: a sensitive column, or a cross of several."""

    columns: tuple[str, ...]
    cell_to_group: np.ndarray  # (cells,) group index of each cell
    labels: tuple[dict[str, str], ...]  # the group of each index, {column: value}

    @property
    def name(self) -> str:
        return "+".join(self.columns)

    @property
    def size(self) -> int:
        return len(self.labels)


def code_cells(sensitive: pd.DataFrame) -> Cells:
    """Code each row by its combination of sensitive values."""
    columns = tuple(str(c) for c in sensitive.columns)
    uniques, coded = [], []
    for column in columns:
        codes, values = pd.factorize(sensitive[column], sort=True)
        coded.append(codes)
        uniques.append(np.asarray(values, dtype=object))
    # unique rows of codes, not one mixed-radix integer: eight wide columns would overflow int64
    matrix = np.stack(coded, axis=1) if coded else np.zeros((len(sensitive), 0), dtype=np.int64)
    observed, cell_codes = np.unique(matrix, axis=0, return_inverse=True)
    cell_codes = cell_codes.reshape(-1)
    digits = {column: values[observed[:, j]].astype(str) for j, (column, values) in enumerate(zip(columns, uniques))}
    return Cells(
        columns,
        cell_codes.astype(np.int64),
        pd.DataFrame({c: digits[c] for c in columns}),
        {c: tuple(str(v) for v in values) for c, values in zip(columns, uniques)},
    )


def groupings(cells: Cells, crosses: list[tuple[str, ...]]) -> list[Grouping]:
    """Each sensitive column alone, then each requested cross of columns."""
    chosen = [(c,) for c in cells.columns] + [tuple(c) for c in crosses]
    out = []
    for columns in chosen:
        keys = cells.values[list(columns)].apply(tuple, axis=1)
        positions = {c: {v: i for i, v in enumerate(cells.levels[c])} for c in columns}
        order = sorted(set(keys), key=lambda key: tuple(positions[c][v] for c, v in zip(columns, key)))
        index = {key: i for i, key in enumerate(order)}
        out.append(
            Grouping(
                columns=columns,
                cell_to_group=np.array([index[k] for k in keys], dtype=np.int64),
                labels=tuple(dict(zip(columns, key)) for key in order),
            )
        )
    return out


def crosses(columns: tuple[str, ...], setting: str | list[list[str]]) -> list[tuple[str, ...]]:
    if isinstance(setting, list):
        return [tuple(c) for c in setting]
    if setting == "none" or len(columns) < 2:
        return []
    largest = 2 if setting == "pairs" else len(columns)
    return [combo for size in range(2, largest + 1) for combo in itertools.combinations(columns, size)]


def cell_tables(cells: Cells, labels: np.ndarray, decisions: np.ndarray, n_classes: int,
                weights: np.ndarray | None = None) -> np.ndarray:
    """(cells, C, C) confusion counts, rows true class, columns predicted: one bincount.

    ``weights``: how many rows each entry stands for (a merged summary's counts), or None.
    """
    square = n_classes * n_classes
    index = cells.codes * square + labels * n_classes + decisions
    return weighted_bincount(index, weights, cells.count * square).reshape(cells.count, n_classes, n_classes)


def weighted_bincount(index: np.ndarray, weights: np.ndarray | None, length: int) -> np.ndarray:
    """``np.bincount`` with integer weights, exact: int64 counts whatever the weights.

    numpy sums weights in float64; integer weights are summed exactly up to 2**53 rows, so the
    float sums are rounded back to the integers they are.
    """
    if weights is None:
        return np.bincount(index, minlength=length)
    if weights.sum() >= 2**53:
        raise ValueError("more than 2**53 rows: integer counts would lose precision in float64")
    return np.rint(np.bincount(index, weights=weights, minlength=length)).astype(np.int64)


def group_tables(tables: np.ndarray, grouping: Grouping) -> np.ndarray:
    """Sum cell tables ``(..., cells, C, C)`` into group tables ``(..., groups, C, C)``.

    Cells sorted by group and summed run by run: linear in cells, where a cells x groups
    membership matrix is quadratic (10,000 groups ran past 300 s).
    """
    order = np.argsort(grouping.cell_to_group, kind="stable")
    sorted_groups = grouping.cell_to_group[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    # every group holds at least one cell (groups are built from observed cells)
    return np.add.reduceat(tables[..., order, :, :].astype(np.float64), starts, axis=-3)


def one_vs_rest(tables: np.ndarray) -> np.ndarray:
    """(..., C, C) tables -> (..., C, 4) counts [TP, FP, FN, TN] with each class as positive."""
    hits = np.diagonal(tables, axis1=-2, axis2=-1)
    predicted = tables.sum(axis=-2)
    actual = tables.sum(axis=-1)
    total = actual.sum(axis=-1, keepdims=True)
    return np.stack([hits, predicted - hits, actual - hits, total - predicted - actual + hits], axis=-1)


def rate_parts(counts: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Numerator and denominator of every rate of ``(..., 4)`` counts [TP, FP, FN, TN]."""
    tp, fp, fn, tn = (counts[..., i].astype(np.float64) for i in range(4))
    n = tp + fp + fn + tn
    return {
        "base_rate": (tp + fn, n),
        "selection_rate": (tp + fp, n),
        "accuracy": (tp + tn, n),
        "true_positive_rate": (tp, tp + fn),
        "false_positive_rate": (fp, fp + tn),
        "false_negative_rate": (fn, tp + fn),
        "true_negative_rate": (tn, fp + tn),
        "positive_predictive_value": (tp, tp + fp),
        "negative_predictive_value": (tn, tn + fn),
        "f1": (2 * tp, 2 * tp + fp + fn),
    }


def denominators(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each rate's denominator as a count of rows (what the fairness catalogue names); F1's is TP + FP + FN."""
    out = {name: bottom for name, (_, bottom) in rate_parts(counts).items()}
    out["f1"] = out["f1"] - counts[..., 0]
    return out


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every rate of ``(..., 4)`` counts [TP, FP, FN, TN]; NaN where a denominator is zero."""
    return {name: stats.divide(top, bottom) for name, (top, bottom) in rate_parts(counts).items()}


def stratified_replicates(
    tables: np.ndarray, replicates: int, rng: np.random.Generator, *, max_bytes: int = stats.MAX_CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """Chunks of bootstrap replicates of cell tables, ``(b, cells, C, C)``, stratified by cell.

    Each cell's counts are drawn from Multinomial(n_cell, observed proportions): exactly the
    distribution of its confusion counts when its rows are resampled (module docstring).
    """
    cells = tables.shape[0]
    flat = tables.reshape(cells, -1)
    sizes = flat.sum(axis=1)
    proportions = flat / np.maximum(sizes, 1)[:, None]
    per_replicate = flat.size * 8
    chunk = max(1, min(replicates, max_bytes // max(per_replicate, 1)))
    done = 0
    while done < replicates:
        size = min(chunk, replicates - done)
        draws = rng.multinomial(sizes, proportions, size=(size, cells))
        yield draws.reshape(size, *tables.shape)
        done += size


# ---------------------------------------------------------------- disparities


def extremes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max, min and their positions over the last axis, skipping NaN (undefined groups).

    Returns NaN (and position -1) where fewer than two groups are defined: a disparity needs
    two groups to compare, and a single group would read as "no disparity".
    """
    defined = ~np.isnan(values)
    high_at = np.where(defined, values, -np.inf).argmax(axis=-1)
    low_at = np.where(defined, values, np.inf).argmin(axis=-1)
    high = np.take_along_axis(values, high_at[..., None], axis=-1)[..., 0]
    low = np.take_along_axis(values, low_at[..., None], axis=-1)[..., 0]
    some = defined.sum(axis=-1) >= 2
    return (
        np.where(some, high, np.nan),
        np.where(some, low, np.nan),
        np.where(some, high_at, -1),
        np.where(some, low_at, -1),
    )


def between_groups(values: np.ndarray) -> dict[str, np.ndarray]:
    """fairlearn's ``between_groups`` difference (max - min) and ratio (min / max)."""
    high, low, _, _ = extremes(values)
    return {"difference": high - low, "ratio": stats.divide(low, high)}
