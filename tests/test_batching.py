"""model.batching: exact (slot by row id, the default) against fast (plain batches; text sorted by length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audit.cli import main
from audit.data import load_data
from audit.models import load_model, predict
from tests.scale_models import demo


def _widths_and_probabilities(batching: str) -> tuple[set[int], np.ndarray, object, object]:
    config = demo("dreaddit")
    config = config.replace(model=config.model.model_copy(update={"batching": batching}))
    data, model = load_data(config), load_model(config)
    widths: set[int] = set()
    hook = model.module.register_forward_pre_hook(
        lambda _, args, kwargs: widths.add(int((kwargs.get("input_ids") if "input_ids" in kwargs else args[0]).shape[1])),
        with_kwargs=True)
    try:
        probabilities = predict(model, data, config.model).probabilities
    finally:
        hook.remove()
    return widths, probabilities, data, model


def _one_text_at_a_time(model, data, rows) -> np.ndarray:
    """The transformer called on each text alone, cut to its own length: no padding, no neighbours."""
    out = []
    with torch.no_grad():
        for r in rows:
            ids = data.features[r : r + 1]
            ids = ids[:, : int((ids != model.pad_id).sum())]
            out.append(torch.softmax(model.module(input_ids=ids).logits.double(), dim=-1)[0].numpy())
    return np.array(out)


@pytest.mark.parametrize("batching", ["exact", "fast"])
def test_text_batching_modes_predict_what_the_model_says_for_each_text_alone(batching):
    widths, probabilities, data, model = _widths_and_probabilities(batching)
    if batching == "exact":
        assert widths == {demo("dreaddit").data.tokenizer.max_length}  # every batch padded to max_length: a row's width never depends on others
    else:
        assert min(widths) < max(widths)  # batches cut to their longest text, sorted by length
    rows = np.linspace(0, data.n - 1, 25).astype(int)
    np.testing.assert_allclose(probabilities[rows], _one_text_at_a_time(model, data, rows), atol=1e-5)


def test_a_sharded_run_refuses_fast_batching(tmp_path, capsys):
    example = Path("examples/adult_mlp.yaml").resolve()
    raw = yaml.safe_load(example.read_text())
    raw["data"]["features_file"] = str(example.parent / raw["data"]["features_file"])
    raw["model"]["path"] = str(example.parent / raw["model"]["path"])
    raw["model"]["batching"] = "fast"
    raw["engine"] = {"kind": "local", "batch_rows": 4096}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.batching: exact" in err[0], err
    raw["model"]["batching"] = "exact"
    spec.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(spec)]) == 0
