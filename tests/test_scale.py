"""Exact mergeable summaries and the local streaming engine, against the local run and scikit-learn."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from audit import groups, load_config, run_audit, score_stats, stats
from audit.cli import main
from audit.context import Predictions
from audit.errors import ConfigError
from audit.scale import summaries
from tests.decision_log import assert_same_numbers, decision_log, spec, split, write_shards


def _summary(frame: pd.DataFrame) -> summaries.Summary:
    probabilities = np.column_stack([1 - frame.score, frame.score])
    predictions = Predictions(frame.approved.to_numpy(), probabilities, frame.score.to_numpy())
    return summaries.summarize(frame[["region", "sex"]], frame.label.to_numpy(), predictions, 2, rows_read=len(frame))


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return decision_log(4000, seed=1)


def test_merged_shards_equal_the_whole_in_any_order(log):
    whole = _summary(log)
    parts = [_summary(part) for part in split(log, 7)]
    for order in (parts, parts[::-1]):
        merged = summaries.merge(order)
        pd.testing.assert_frame_equal(merged.keys, whole.keys)
        np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.n == len(log) and merged.rows_read == len(log)


@pytest.mark.parametrize("fan_in", [2, 3, 100])
def test_a_running_merge_equals_the_merge_of_all(log, fan_in):
    parts = [_summary(part) for part in split(log, 7)]
    streamed, whole = summaries.merge_stream(iter(parts), fan_in=fan_in), summaries.merge(parts)
    pd.testing.assert_frame_equal(streamed.keys, whole.keys)
    np.testing.assert_array_equal(streamed.counts, whole.counts)
    assert streamed.rows_read == whole.rows_read == len(log)


def test_cell_tables_from_weighted_entries_equal_the_row_tables(log):
    merged = summaries.merge(_summary(part) for part in split(log, 5))
    sensitive, labels, predictions = summaries.entries(merged)
    coded = groups.code_cells(sensitive)
    tables = groups.cell_tables(coded, labels, predictions.decisions, 2, merged.counts)
    row_cells = groups.code_cells(log[["region", "sex"]].reset_index(drop=True))
    expected = groups.cell_tables(row_cells, log.label.to_numpy(), log.approved.to_numpy(), 2)
    pd.testing.assert_frame_equal(coded.values, row_cells.values)
    assert tables.dtype == np.int64
    np.testing.assert_array_equal(tables, expected)
    # a hand count of one cell
    north_f = log[(log.region == "north") & (log.sex == "F")]
    index = coded.values.index[(coded.values.region == "north") & (coded.values.sex == "F")][0]
    assert tables[index, 1, 1] == int(((north_f.label == 1) & (north_f.approved == 1)).sum())


def test_score_statistics_from_weighted_entries_equal_scikit_learn(log):
    merged = summaries.merge(_summary(part) for part in split(log, 4))
    sensitive, labels, predictions = summaries.entries(merged)
    west = (sensitive.region == "west").to_numpy().astype(np.int64)  # cell 1: west, cell 0: the rest
    losses = stats.log_loss_terms(labels, predictions.probabilities)
    units = score_stats.collapse(predictions.scores, labels == 1, west, losses, merged.counts)
    overall = score_stats.group_statistics(units, np.zeros(2, dtype=np.int64), 1, 10).values
    assert overall["roc_auc"][0] == pytest.approx(roc_auc_score(log.label, log.score), abs=1e-12)
    assert overall["average_precision"][0] == pytest.approx(average_precision_score(log.label, log.score), abs=1e-12)
    assert overall["log_loss"][0] == pytest.approx(log_loss(log.label, log.score), abs=1e-12)
    by_region = score_stats.group_statistics(units, np.array([0, 1]), 2, 10).values
    rows = log[log.region == "west"]
    assert by_region["roc_auc"][1] == pytest.approx(roc_auc_score(rows.label, rows.score), abs=1e-12)


def test_weighted_entries_are_the_same_multiset(log):
    merged = summaries.merge(_summary(p) for p in split(log, 3))
    sensitive, labels, predictions = summaries.entries(merged)
    assert len(labels) == merged.counts.size < len(log)  # one entry per distinct row, never expanded
    entries = pd.DataFrame({"region": sensitive.region, "sex": sensitive.sex, "label": labels, "approved": predictions.decisions, "score": predictions.scores})
    rebuilt = entries.loc[entries.index.repeat(merged.counts)]  # the test repeats them, the engine never does
    columns = ["region", "sex", "label", "approved", "score"]
    expected = log[columns].sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(rebuilt.sort_values(columns).reset_index(drop=True), expected, check_dtype=False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, log):
    root = tmp_path_factory.mktemp("log")
    return root, write_shards(log, root)


@pytest.fixture(scope="module")
def local_result(shards):
    root, paths = shards
    return run_audit(load_config(spec(root, paths["whole"], name="local.yaml")))


@pytest.mark.parametrize("source", ["parquet", "glob", "whole"])
@pytest.mark.parametrize("batch_rows", [97, 5000])
def test_streaming_equals_the_local_run(shards, local_result, source, batch_rows):
    root, paths = shards
    config = load_config(spec(root, paths[source], engine={"batch_rows": batch_rows}, name=f"s-{source}-{batch_rows}.yaml"))
    result = run_audit(config)
    assert_same_numbers(local_result, result)
    assert result.data["rows_read"] == local_result.data["rows_read"] == 4000
    assert result.data["rows_used"] == local_result.data["rows_used"]
    assert result.data["engine"] == "local streaming"


def multiclass_spec(root, path: str, *, engine: dict | None = None, name: str = "multi.yaml"):
    """The decision log as a three-class grading: a 'grade' decision column against a 'truth' label."""
    raw = yaml.safe_load(spec(root, path, engine=engine, name=name).read_text())
    raw["data"]["label"] = {"column": "truth", "classes": ["low", "mid", "high"]}
    raw["model"] = {"kind": "predictions", "decision_column": "grade"}
    (root / name).write_text(yaml.safe_dump(raw, sort_keys=False))
    return root / name


def graded(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    grade = np.select([frame.score > 0.7, frame.score > 0.4], ["high", "mid"], "low")
    truth = np.where(rng.random(len(frame)) < 0.7, grade, rng.choice(["low", "mid", "high"], len(frame)))
    return frame.assign(grade=grade, truth=truth)


def test_streaming_multiclass_equals_the_local_run(tmp_path):
    paths = write_shards(graded(decision_log(3000, seed=5), 5), tmp_path)
    local = run_audit(load_config(multiclass_spec(tmp_path, paths["whole"], name="local.yaml")))
    streamed = run_audit(load_config(multiclass_spec(tmp_path, paths["parquet"], engine={"batch_rows": 300})))
    assert_same_numbers(local, streamed)
    per_class = [m for m in streamed.measurements if m.check == "fairness" and m.params.get("class") == "mid"]
    assert per_class and any(m.ci is not None for m in per_class)


def test_one_label_class_warns_as_the_local_run_does(shards):
    root, paths = shards
    results = []
    for name, path, engine in (("one-local.yaml", paths["whole"], None), ("one-stream.yaml", paths["parquet"], {"batch_rows": 500})):
        target = spec(root, path, engine=engine, name=name)
        target.write_text(target.read_text().replace("filter: age >= 21", "filter: label == 1"))
        results.append(run_audit(load_config(target)))
    assert any("every label is class '1'" in w for w in results[1].warnings)
    assert_same_numbers(*results)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"kind": "ray", "address": "localhost:6379"}, "engine.address must be 'auto' or 'ray://host:port'"),
        ({"workers": 2}, "need engine.kind: ray"),
        ({"kind": "ray", "workers": 0}, "workers"),
        ({"kind": "spark"}, "engine.kind"),
        ({"batch_rows": 0}, "batch_rows"),
        ({"kind": "ray", "threads": 2}, "threads"),
    ],
)
def test_engine_section_is_validated(tmp_path, engine, message, capsys):
    path = spec(tmp_path, _one_file(tmp_path), engine=engine)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_shards_need_a_sharded_engine_and_no_sample(tmp_path, shards, capsys):
    root, paths = shards
    assert main(["validate", str(spec(root, paths["parquet"], name="folder.yaml"))]) == 2
    assert "folder of shards" in capsys.readouterr().err
    path = spec(root, paths["glob"], engine={"kind": "ray"}, name="sampled.yaml")
    text = path.read_text().replace("  filter: age >= 21\n", "  sample: {n: 10}\n")
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert "data.sample cannot be sharded" in capsys.readouterr().err


def test_missing_ray_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    path = spec(tmp_path, _one_file(tmp_path), engine={"kind": "ray"})
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray, which is not installed" in err[0] and "rai-audit[ray]" in err[0]
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(ConfigError):
        run_audit(load_config(path))


def _one_file(root) -> str:
    decision_log(200).to_csv(root / "one.csv", index=False)
    return "one.csv"
