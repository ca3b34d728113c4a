"""How strongly each model input is associated with a sensitive column: candidate proxies.

A model that never sees sex can still rely on it through a column that tracks it (marital
status, relationship). Association is measured on the whole evaluation data, between 0 (none)
and 1 (one column determines the other):

* categorical input: Cramér's V of the contingency table (``scipy.stats.contingency.association``);
* numeric input: the correlation ratio eta, the share of the input's spread explained by the
  sensitive groups (``sqrt(between-group sum of squares / total sum of squares)``), which
  Cramér's V would miss by treating every distinct number as a category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CRAMERS_V, CORRELATION_RATIO = "cramers_v", "correlation_ratio"


@dataclass(frozen=True)
class Association:
    feature: str
    value: float
    measure: str


def cramers_v(feature: pd.Series, groups: pd.Series) -> float:
    """Cramér's V of two categorical columns (0 when either takes a single value)."""
    rows, row_values = pd.factorize(feature.astype(str))
    columns, column_values = pd.factorize(groups.astype(str))
    width = len(column_values)
    table = np.bincount(rows * width + columns, minlength=len(row_values) * width).reshape(len(row_values), width)
    if min(table.shape) < 2:
        return 0.0
    from scipy.stats.contingency import association  # scipy.stats takes half a second to import

    return float(association(table, method="cramer"))


def correlation_ratio(values: np.ndarray, groups: pd.Series) -> float:
    """eta: how much of a numeric column's spread lies between the groups (0 to 1)."""
    values = np.asarray(values, dtype=np.float64)
    codes, _ = pd.factorize(groups.astype(str), sort=True)
    total = ((values - values.mean()) ** 2).sum()
    if total == 0 or codes.max() < 1:
        return 0.0
    counts = np.bincount(codes)
    means = np.bincount(codes, weights=values) / counts
    between = (counts * (means - values.mean()) ** 2).sum()
    return float(np.sqrt(between / total))


def associations(frame: pd.DataFrame, sensitive: pd.Series, features: list[tuple[str, bool]]) -> list[Association]:
    """Association of each ``(feature, is_categorical)`` with the sensitive column, strongest first."""
    groups = sensitive.reset_index(drop=True)
    out = []
    for name, categorical in features:
        column = frame[name].reset_index(drop=True)
        numbers = None if categorical else pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        if numbers is None or not np.isfinite(numbers).all():  # an ordinal column of category names
            out.append(Association(name, cramers_v(column, groups), CRAMERS_V))
        else:
            out.append(Association(name, correlation_ratio(numbers, groups), CORRELATION_RATIO))
    return sorted(out, key=lambda a: -a.value)
