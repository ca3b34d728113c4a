"""What the audit looked at: row count, class balance and the size of each sensitive group.

These are measurements too, so a threshold can require, say, at least 1000 rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.catalogue import Metric
from audit.context import AuditContext
from audit.groups import weighted_bincount
from audit.results import Measurement

CHECK = "data"
CATALOGUE = (
    Metric("row_count", "rows audited", unit="count"),
    Metric("class_share", "share of a class in the labels"),
    Metric("group_share", "share of a sensitive group in the data"),
)
METRICS = tuple(m.name for m in CATALOGUE)


def run(ctx: AuditContext) -> list[Measurement]:
    data = ctx.data
    n = data.n
    out = [Measurement("data", "row_count", float(n), n=n)]
    counts = weighted_bincount(data.labels, data.weights, len(data.classes))
    for name, count in zip(data.classes, counts):
        out.append(Measurement("data", "class_share", count / n, n=int(count), params={"class": name}))
    for column in data.sensitive.columns:
        shares = _group_counts(data.sensitive[column], data.weights)
        for value, count in shares.items():
            if count == 0:
                continue
            out.append(Measurement("data", "group_share", count / n, group={column: value}, n=int(count)))
    return out


def _group_counts(column: pd.Series, weights: np.ndarray | None) -> pd.Series:
    """Rows per group value: categories in their order (bins), other values sorted."""
    if weights is None:
        shares = column.value_counts(sort=False)
    else:  # each entry stands for weights[i] rows
        shares = pd.Series(weights, index=column.index).groupby(column, observed=False, sort=True).sum()
    if not isinstance(column.dtype, pd.CategoricalDtype):
        shares = shares.sort_index()
    return shares.astype(np.int64)
