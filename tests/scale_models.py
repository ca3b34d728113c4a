"""Model specs for the sharded-engine tests: the demo specs, their data cut into shards, and a strict comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from audit import load_config
from audit.config import AuditConfig
from audit.results import AuditResult
from tests.decision_log import assert_same_numbers

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


def assert_same_audit(expected: AuditResult, actual: AuditResult) -> None:
    """The whole result.json equal (counts to the last bit, floats to 1e-12), no check failed.

    ``model.forward_batches`` is left out: it counts the batches this run's model calls made
    (each shard's own), like the provenance and the data summary the comparison leaves out.
    """
    assert [f.message for f in expected.failures] == [f.message for f in actual.failures] == []
    assert_same_numbers(_without_batch_count(expected), _without_batch_count(actual))


def _without_batch_count(result: AuditResult) -> AuditResult:
    return dataclasses.replace(result, model={k: v for k, v in result.model.items() if k != "forward_batches"})


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
