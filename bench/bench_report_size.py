"""Report size against rows: the same audit on 1,000 and 1,000,000 rows (target: within 1.1x).

A predictions-only audit (scores and decisions precomputed) over synthetic data with the same
groups at both sizes, all checks that apply, 200 bootstrap replicates (the size does not depend
on them). Also times both runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audit.config import load_config
from audit.report import html
from audit.runner import run_audit


def write_data(folder: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "sex": rng.choice(["F", "M"], rows),
        "race": rng.choice(["A", "B", "C", "D", "E"], rows, p=[0.5, 0.2, 0.15, 0.1, 0.05]),
        "age": rng.integers(18, 90, rows),
    })
    logit = rng.normal(0, 1.5, rows) + 0.4 * (frame.sex == "M")
    frame["score"] = 1 / (1 + np.exp(-logit))
    frame["label"] = (rng.uniform(size=rows) < frame.score).astype(int)
    path = folder / f"data_{rows}.parquet"
    frame.to_parquet(path)
    return path


def spec(folder: Path, data: Path) -> Path:
    raw = {
        "name": "report size benchmark",
        "data": {
            "kind": "tabular", "path": data.name,
            "label": {"column": "label", "classes": [0, 1], "positive": 1},
            "sensitive": [{"column": "sex", "reference": "M"}, {"column": "race", "reference": "A"},
                          {"column": "age", "bins": [0, 30, 50, 70, 120]}],
        },
        "model": {"kind": "predictions", "score_column": "score", "score_type": "probability"},
        "statistics": {"bootstrap": 200},
    }
    path = folder / f"{data.stem}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def main() -> None:
    rows_list = (1_000, 1_000_000)
    sizes, times = {}, {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for rows in rows_list:
            start = time.perf_counter()
            result = run_audit(load_config(spec(folder, write_data(folder, rows))))
            page = html.render(result)
            times[rows] = time.perf_counter() - start
            sizes[rows] = len(page.encode("utf-8"))
    ratio = sizes[rows_list[1]] / sizes[rows_list[0]]
    print("Report size against rows: the same predictions-only audit (3 sensitive columns, all crosses), target <= 1.1x\n")
    print("| rows | report.html (KiB) | audit + render (s) |\n|---|---|---|")
    for rows in rows_list:
        print(f"| {rows:,} | {sizes[rows] / 1024:.1f} | {times[rows]:.1f} |")
    print(f"\nRatio 1M / 1k: {ratio:.3f} ({'within' if ratio <= 1.1 else 'OVER'} the 1.1x target).")


if __name__ == "__main__":
    main()
