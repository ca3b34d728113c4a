"""A generated predictions-only decision log written whole and as shards, and specs reading it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audit.results import AuditResult


def decision_log(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows of (region, sex, age, label, decision, score); scores to 3 decimals, so many ties."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(18, 90, n)
    latent = rng.normal(0, 1, n) + 0.4 * (sex == "M") - 0.3 * (region == "west")
    label = (latent + rng.normal(0, 1, n) > 0.3).astype(int)
    score = np.round(1 / (1 + np.exp(-latent)), 3)
    return pd.DataFrame(
        {"region": region, "sex": sex, "age": age, "label": label, "approved": (score > 0.5).astype(int), "score": score}
    )


def split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """``parts`` consecutive slices of the rows."""
    edges = np.linspace(0, len(frame), parts + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(edges, edges[1:])]


def write_shards(frame: pd.DataFrame, root: Path, parts: int = 3) -> dict[str, str]:
    """The log as one CSV, a folder of Parquet files (several row groups each) and a CSV glob."""
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "log.csv", index=False)
    (root / "parquet").mkdir(exist_ok=True)
    (root / "csv").mkdir(exist_ok=True)
    for k, part in enumerate(split(frame, parts)):
        part.to_parquet(root / "parquet" / f"part-{k}.parquet", row_group_size=max(1, len(part) // 3 + 1))
        part.to_csv(root / "csv" / f"part-{k}.csv", index=False)
    return {"whole": "log.csv", "parquet": "parquet", "glob": "csv/part-*.csv"}


def spec(root: Path, path: str, *, engine: dict | None = None, name: str = "spec.yaml", bootstrap: int = 200) -> Path:
    raw = {
        "name": "decision log",
        "seed": 3,
        "data": {
            "kind": "tabular",
            "path": path,
            "filter": "age >= 21",
            "label": {"column": "label", "classes": [0, 1], "positive": 1},
            "sensitive": [
                {"column": "region", "reference": "north"},
                {"column": "sex", "reference": "M"},
                {"column": "age", "bins": [18, 30, 50, 120], "labels": ["<30", "30-49", "50+"]},
            ],
        },
        "model": {"kind": "predictions", "decision_column": "approved", "score_column": "score"},
        "checks": {"fairness": {"intersections": "pairs", "min_group_size": 20}},
        "statistics": {"bootstrap": bootstrap},
    }
    if engine is not None:
        raw["engine"] = engine
    out = root / name
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def numbers(result: AuditResult) -> dict[tuple, tuple]:
    """Every measurement's value, interval, size, note, status and reason, keyed by what it measures."""
    return {
        (m.check, m.metric, json.dumps(m.group, sort_keys=True), json.dumps(m.params, sort_keys=True, default=str)): (
            m.value,
            m.ci,
            m.n,
            m.note,
            m.status,
            m.reason,
        )
        for m in result.measurements
    }


def assert_same_numbers(expected: AuditResult, actual: AuditResult) -> None:
    """Counts equal to the last bit, floats to 1e-12: every measurement (value, interval, n, note,
    status), the figures beside them, the warnings, the findings and the verdict."""
    left, right = numbers(expected), numbers(actual)
    assert left.keys() == right.keys()
    assert len(left) == len(expected.measurements) == len(actual.measurements)  # no two share a key
    for key, (value, ci, n, *words) in left.items():
        other = right[key]
        assert n == other[2] and words == list(other[3:]), key
        _close(value, other[0], key)
        assert (ci is None) == (other[1] is None), key
        for a, b in zip(ci or (), other[1] or ()):
            _close(a, b, key)
    # the rest of result.json too (figures, findings, gate, warnings), but where the runs differ by design
    _same_tree(_comparable(expected), _comparable(actual), "result")
    assert expected.warnings == actual.warnings
    assert expected.gate == actual.gate


def _comparable(result: AuditResult) -> dict:
    """result.json without what says how and when it ran (provenance, the engine's data summary)."""
    out = json.loads(json.dumps(result.to_dict(), default=str))
    for key in ("provenance", "data"):
        out.pop(key, None)
    return out


def _same_tree(a, b, where: str) -> None:
    """Nested JSON equal, numbers to 1e-12."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _same_tree(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        _close(a, b, where)
    else:
        assert a == b, (where, a, b)


def _close(a, b, key) -> None:
    if a is None or b is None:
        assert a is b, key
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), key
    else:
        assert abs(a - b) <= 1e-12 * max(1.0, abs(a)), (key, a, b)
