"""Model specs in the local streaming engine: tabular, image NPZ and text shards give the local run's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audit import feature_values, load_config, run_audit, sampling
from audit.cli import main
from audit.data import load_data
from audit.models import load_model
from audit.scale import engine
from tests.scale_models import COSTLY_ON, adult_shards, assert_same_audit, demo, digits_shards, dreaddit_shards


@pytest.fixture(scope="module")
def local_results():
    """Each demo audited locally, once for the module."""
    return {}


def _local(cache: dict, name: str):
    if name not in cache:
        cache[name] = run_audit(demo(name))
    return cache[name]


@pytest.mark.parametrize("name", ["adult", "digits", "dreaddit"])
def test_each_row_is_predicted_to_the_same_bits_however_the_rows_are_cut(name):
    config = demo(name)
    data, model = load_data(config), load_model(config)
    slots = config.model.batch_size
    whole = model.slot_outputs(data.features, data.row_ids, slots=slots)
    for cut in (1, 37, 500):
        parts = []
        for start in range(0, data.n, cut):
            features = data.features[start : start + cut]
            if name == "dreaddit":  # a shard's own tokenizer pass pads to that shard's longest text
                features = features[:, : int((features != model.pad_id).sum(dim=1).max())]
            parts.append(model.slot_outputs(features, data.row_ids[start : start + cut], slots=slots))
        assert np.array_equal(np.concatenate(parts), whole), cut


def test_outputs_depend_only_on_the_row_not_its_batch_neighbours():
    config = demo("digits")
    data, model = load_data(config), load_model(config)
    ids = data.row_ids[:40]
    first = model.slot_outputs(data.features[:40], ids, slots=64)
    noise = torch.rand_like(data.features[:40])
    # the same rows among other rows: only rows 0, 5, 9 kept, the others replaced by noise
    mixed = torch.where(torch.isin(torch.arange(40), torch.tensor([0, 5, 9]))[:, None, None, None], data.features[:40], noise)
    again = model.slot_outputs(mixed, ids, slots=64)
    assert np.array_equal(again[[0, 5, 9]], first[[0, 5, 9]])


@pytest.mark.parametrize("name", ["adult", "digits", "dreaddit"])
def test_demo_spec_streams_to_the_local_numbers(local_results, name):
    streamed = run_audit(demo(name, engine={"batch_rows": 97}))
    assert streamed.data["engine"] == "local streaming"
    assert streamed.data["rows_read"] == _local(local_results, name).data["rows_read"]
    assert_same_audit(_local(local_results, name), streamed)
    assert streamed.model["kind"] == _local(local_results, name).model["kind"]


@pytest.mark.parametrize("source", ["parquet", "glob"])
def test_adult_as_shards(tmp_path, local_results, source):
    paths = adult_shards(tmp_path, demo("adult"))
    csv = {"header": True, "skiprows": 0, "skipinitialspace": True, "keep_default_na": False}
    config = demo("adult", data={"path": paths[source], "format": None, "csv": csv}, engine={"batch_rows": 3000})
    result = run_audit(config)
    assert result.data["shards"] == (9 if source == "parquet" else 3)
    assert result.data["features"] == _local(local_results, "adult").data["features"]
    assert_same_audit(_local(local_results, "adult"), result)


@pytest.mark.parametrize("source", ["npz", "glob"])
@pytest.mark.parametrize("metadata", ["one", "per_shard"])
def test_digits_as_npz_shards(tmp_path, local_results, source, metadata):
    local = demo("digits")
    paths = digits_shards(tmp_path, local)
    meta = local.data.metadata if metadata == "one" else paths["meta"]
    result = run_audit(demo("digits", data={"path": paths[source], "metadata": meta}, engine={"batch_rows": 50}))
    assert result.data["shards"] == 4 and result.data["image_shape"] == [1, 8, 8]
    assert_same_audit(_local(local_results, "digits"), result)


@pytest.mark.parametrize("source", ["jsonl", "parquet"])
def test_dreaddit_as_text_shards(tmp_path, local_results, source):
    paths = dreaddit_shards(tmp_path, demo("dreaddit"))
    result = run_audit(demo("dreaddit", data={"path": paths[source]}, engine={"batch_rows": 100}))
    local = _local(local_results, "dreaddit")
    assert result.data["text"] == local.data["text"]
    assert_same_audit(local, result)


def test_the_row_view_holds_the_candidate_rows_of_the_whole_data():
    # the costly checks' rows: what the whole-data rule picks, with the local run's features and predictions
    config = demo("adult", checks={"explanations": {"enabled": True, "rows": 40, "local": {"ids": [7, 16000]}}})
    from audit.runner import build_context

    local = build_context(config)
    sharded = engine.build_context(config.replace(engine={"batch_rows": 1000}))
    view = sharded.row_view()
    assert local.row_view() is local and view is not sharded and sharded.data.features is None
    expected = np.flatnonzero(sampling.candidate_mask(config, local.data.row_ids, local.data.labels, local.predictions))
    np.testing.assert_array_equal(view.data.row_ids, local.data.row_ids[expected])
    assert {7, 16000} <= set(view.data.row_ids.tolist()) and len(expected) >= 40
    assert torch.equal(view.data.features, local.data.features[expected])
    np.testing.assert_array_equal(view.predictions.probabilities, local.predictions.probabilities[expected])
    np.testing.assert_array_equal(view.data.labels, local.data.labels[expected])
    assert view.data.sensitive.astype(str).equals(local.data.sensitive.iloc[expected].reset_index(drop=True).astype(str))
    view.warn("seen by the run")
    assert sharded.warnings[-1] == "seen by the run"


def test_image_shards_need_npz(tmp_path, capsys):
    np.save(tmp_path / "images.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    np.save(tmp_path / "labels.npy", np.zeros(4, dtype=np.int64))
    spec = tmp_path / "npy.yaml"
    text = Path("examples/digits_cnn.yaml").read_text().replace("../models/digits_cnn/eval.npz", str(tmp_path / "images.npy"))
    text = text.replace("  labels_key: labels\n", f"  labels_key: labels\n  labels_path: {tmp_path / 'labels.npy'}\n")
    text = text.replace("../models/", f"{Path.cwd() / 'models'}/")
    spec.write_text(text + "\nengine: {batch_rows: 100}\n")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "reads images from .npz files" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ["adult", "digits"])
def test_whole_data_feature_statistics_are_the_local_ones_to_the_bit(name):
    # baselines and attack domains read these: the sharded run merged them batch by batch
    config = demo(name, checks={"robustness": {"enabled": True}})
    from audit.runner import build_context

    local = build_context(config).feature_values()
    sharded = engine.build_context(config.replace(engine={"batch_rows": 61})).row_view().feature_values()
    for statistic in (feature_values.mean, feature_values.median, feature_values.moments):
        np.testing.assert_array_equal(np.asarray(statistic(local)), np.asarray(statistic(sharded)))


def test_feature_statistics_equal_numpy_and_torch():
    features = torch.from_numpy(np.random.default_rng(0).integers(0, 7, size=(1001, 3)).astype(np.float32) / 3)
    table = feature_values.of(features, "tabular")
    halves = feature_values.merge([feature_values.of(features[:400], "tabular"), feature_values.of(features[400:], "tabular")])
    assert all(np.array_equal(a, b) for a, b in zip(table.counts, halves.counts)) and table.n == 1001
    as64 = features.numpy().astype(np.float64)
    np.testing.assert_allclose(feature_values.mean(table), as64.mean(axis=0), rtol=1e-14)
    np.testing.assert_array_equal(feature_values.median(table), torch.median(features, dim=0).values.numpy())
    sd, low, high = feature_values.moments(table)
    np.testing.assert_allclose(sd, as64.std(axis=0), rtol=1e-13)
    np.testing.assert_array_equal(low, as64.min(axis=0))
    np.testing.assert_array_equal(high, as64.max(axis=0))
    images = feature_values.of(features.reshape(1001, 3, 1, 1), "image")  # per channel
    np.testing.assert_array_equal(feature_values.median(images), feature_values.median(table))


def test_counterfactual_swaps_on_text_shards_equal_the_local_run(tmp_path):
    # the row view keeps every text a swap rewrites, so the check scores the same texts in the same order
    config = demo("dreaddit", checks={"counterfactual": {"enabled": True}, "identity_bias": {"enabled": False}})
    local = run_audit(config)
    paths = dreaddit_shards(tmp_path, config)
    sharded = run_audit(config.replace(data={"path": paths["jsonl"]}, engine={"batch_rows": 150}))
    examples = [m for m in sharded.measurements if m.metric == "counterfactual_example"]
    assert examples and len(local.select(check="counterfactual")) > 10
    assert_same_audit(local, sharded)


@pytest.mark.parametrize("kind", ["torchscript", "export", "safetensors", "onnx"])
def test_every_model_format_streams_filtered_csv_shards_to_the_local_numbers(project, kind):
    # the filter leaves gaps in the row ids, so batches of slots are partly free
    for k, part in enumerate(np.array_split(np.arange(len(project.frame)), 3)):
        project.frame.iloc[part].to_csv(project.root / f"part-{k}.csv", index=False)
    model = project.model(kind) | {"batch_size": 16}
    off = {"explanations": {"enabled": False}, "robustness": {"enabled": False}}
    local = run_audit(load_config(project.spec("local.yaml", model=model, data={"filter": "age >= 30"}, checks=off)))
    sharded = run_audit(load_config(project.spec(
        "sharded.yaml", model=model, data={"filter": "age >= 30", "path": "part-*.csv"}, checks=off,
        engine={"batch_rows": 23})))
    assert sharded.data["rows_used"] == local.data["rows_used"] < 300
    assert_same_audit(local, sharded)


def test_a_truncated_shard_is_one_line_and_exit_2(tmp_path, capsys):
    paths = digits_shards(tmp_path, demo("digits"))
    shard = Path(paths["npz"]) / "digits-2.npz"
    shard.write_bytes(shard.read_bytes()[:300])
    spec = tmp_path / "spec.yaml"
    text = Path("examples/digits_cnn.yaml").read_text().replace("../models/digits_cnn/eval.npz", paths["npz"])
    spec.write_text(text.replace("../models/", f"{Path.cwd() / 'models'}/").replace(
        f"{Path.cwd() / 'models'}/digits_cnn/eval_metadata.csv", paths["meta"]) + "\nengine: {batch_rows: 50}\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "digits-2.npz" in err
    assert not (tmp_path / "out").exists()



@pytest.mark.parametrize("name", ["adult", "digits", "dreaddit"])
def test_costly_checks_on_shards_equal_the_local_run(name):
    # explanations and attacks read the row view: the same rows, features, predictions and whole-data statistics
    config = demo(name, checks=COSTLY_ON[name])
    local = run_audit(config)
    sharded = run_audit(config.replace(engine={"batch_rows": {"adult": 5000, "digits": 100, "dreaddit": 200}[name]}))
    costly = {m.check for m in sharded.measurements} - {"data", "performance", "fairness", "identity_bias"}
    assert costly == set(COSTLY_ON[name])
    assert_same_audit(local, sharded)
