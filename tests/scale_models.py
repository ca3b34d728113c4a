"""Model specs for the sharded-engine tests: the demo specs, their data cut into shards, and a strict comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from audit import load_config
from audit.config import AuditConfig
from audit.results import AuditResult
from tests.decision_log import _close

DEMOS = {
    "adult": "examples/adult_mlp.yaml",
    "digits": "examples/digits_cnn.yaml",
    "dreaddit": "examples/dreaddit_transformer.yaml",
}
COSTLY_OFF = {
    "explanations": {"enabled": False},
    "robustness": {"enabled": False},
    "counterfactual": {"enabled": False},
    "token_attributions": {"enabled": False},
    "text_robustness": {"enabled": False},
}

COSTLY_ON = {
    "adult": {"explanations": {"enabled": True, "rows": 40}, "robustness": {"enabled": True, "rows": 40}},
    "digits": {"explanations": {"enabled": True, "rows": 40}, "robustness": {"enabled": True, "rows": 40}},
    "dreaddit": {"token_attributions": {"enabled": True, "rows": 8}, "text_robustness": {"enabled": True, "rows": 8},
                 "counterfactual": {"enabled": True}},
}
"""The costly checks of each demo, on few rows."""

def demo(name: str, **changes) -> AuditConfig:
    """A demo spec without the costly checks, its thresholds or a long bootstrap (the numbers stay the audit's)."""
    config = load_config(DEMOS[name]).replace(checks=COSTLY_OFF, statistics={"bootstrap": 200}, thresholds=[])
    return config.replace(**changes) if changes else config


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def numbers(result: AuditResult) -> dict[tuple, tuple]:
    """Measurements keyed by what they measure (float params, such as a calibration bin's mean, to 12 digits)."""
    return {
        (m.check, m.metric, json.dumps(m.group, sort_keys=True), json.dumps(_rounded(m.params), sort_keys=True, default=str)):
        (m.value, m.ci, m.n, m.note, m.status)
        for m in result.measurements
    }


def assert_same_audit(expected: AuditResult, actual: AuditResult) -> None:
    """Counts to the last bit, floats to 1e-12 (relative above 1), the same warnings, failures and verdict."""
    left, right = numbers(expected), numbers(actual)
    assert left.keys() == right.keys()
    for key, (value, ci, n, note, status) in left.items():
        other = right[key]
        assert (n, note, status) == other[2:], key
        _close(value, other[0], key)
        assert (ci is None) == (other[1] is None), key
        for a, b in zip(ci or (), other[1] or ()):
            _close(a, b, key)
    assert expected.warnings == actual.warnings
    assert [f.message for f in expected.failures] == [f.message for f in actual.failures] == []
    assert expected.gate == actual.gate


# ---------------------------------------------------------------- the demo data as shards


def adult_shards(root: Path, config: AuditConfig) -> dict[str, str]:
    """Adult's evaluation rows as Parquet files of several row groups, and as a CSV glob."""
    from audit.data import read_table

    frame = read_table(config.data)
    (root / "parquet").mkdir(parents=True)
    (root / "csv").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        rows = frame.iloc[part].reset_index(drop=True)
        rows.to_parquet(root / "parquet" / f"part-{k}.parquet", row_group_size=2000)
        rows.to_csv(root / "csv" / f"part-{k}.csv", index=False)
    return {"parquet": str(root / "parquet"), "glob": str(root / "csv" / "part-*.csv")}


def digits_shards(root: Path, config: AuditConfig) -> dict[str, str]:
    """The digits as four .npz files, with one metadata CSV for all and one per shard."""
    with np.load(config.data.path) as archive:
        images, labels = archive["images"], archive["labels"]
    metadata = pd.read_csv(config.data.metadata)
    (root / "npz").mkdir(parents=True)
    (root / "meta").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(labels)), 4)):
        np.savez(root / "npz" / f"digits-{k}.npz", images=images[part], labels=labels[part])
        metadata.iloc[part].to_csv(root / "meta" / f"digits-{k}.csv", index=False)
    return {"npz": str(root / "npz"), "glob": str(root / "npz" / "digits-*.npz"), "meta": str(root / "meta")}


def dreaddit_shards(root: Path, config: AuditConfig) -> dict[str, str]:
    """The Dreaddit posts as JSON Lines files and as Parquet files (two row groups each)."""
    frame = pd.read_csv(config.data.path)
    (root / "jsonl").mkdir(parents=True)
    (root / "parquet").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        rows = frame.iloc[part].reset_index(drop=True)
        rows.to_json(root / "jsonl" / f"posts-{k}.jsonl", orient="records", lines=True)
        rows.to_parquet(root / "parquet" / f"posts-{k}.parquet", row_group_size=len(rows) // 2 + 1)
    return {"jsonl": str(root / "jsonl" / "posts-*.jsonl"), "parquet": str(root / "parquet")}
