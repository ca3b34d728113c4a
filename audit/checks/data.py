"""What the audit looked at: row count, class balance and the size of each sensitive group.

These are measurements too, so a threshold can require, say, at least 1000 rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.catalogue import Metric
from audit.context import AuditContext
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
    counts = np.bincount(data.labels, minlength=len(data.classes))
    for name, count in zip(data.classes, counts):
        out.append(Measurement("data", "class_share", count / n, n=int(count), params={"class": name}))
    for column in data.sensitive.columns:
        shares = data.sensitive[column].value_counts(sort=False)
        if not isinstance(data.sensitive[column].dtype, pd.CategoricalDtype):
            shares = shares.sort_index()
        for value, count in shares.items():
            if count == 0:
                continue
            out.append(Measurement("data", "group_share", count / n, group={column: value}, n=int(count)))
    return out
