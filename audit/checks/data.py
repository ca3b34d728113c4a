"""What the audit looked at: row count, class balance and the size of each sensitive group.

These are measurements too, so a threshold can require, say, at least 1000 rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.context import AuditContext
from audit.results import Measurement

METRICS = ("row_count", "class_share", "group_share")


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
