"""Every model format gives the same predictions; inference runs once; black boxes refuse gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audit.config import load_config
from audit.data import load_data
from audit.errors import ConfigError, ModelError
from audit.models import load_model, predictions_from_outputs
from audit.runner import build_context, run_audit

KINDS = ["torchscript", "export", "safetensors", "state_pt", "pickle", "onnx"]


def _reference_probabilities(project) -> np.ndarray:
    data = load_data(load_config(project.spec("ref.yaml")))
    with torch.no_grad():
        logits = project.network(data.features).double()
    return torch.softmax(logits, dim=1).numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_predicts_like_the_network(project, kind):
    config = load_config(project.spec(model=project.model(kind)))
    context = build_context(config)
    expected = _reference_probabilities(project)
    np.testing.assert_allclose(context.predictions.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(context.predictions.decisions, (expected[:, 1] >= 0.5).astype(int))
    assert context.model.differentiable == (kind != "onnx")


def test_inference_runs_once_in_batches(project, monkeypatch):
    """Count forward calls of the real module with a hook over a whole audit."""
    # explanations and attacks run the model on inputs of their own (perturbed, interpolated,
    # adversarial): those are not predictions, so the count covers the other checks
    own_inputs = {"explanations": {"enabled": False}, "robustness": {"enabled": False}}
    config = load_config(project.spec(model=project.model("safetensors") | {"batch_size": 64}, checks=own_inputs))
    calls = []
    original = load_model

    def hooked(config):
        adapter = original(config)
        adapter.module.register_forward_hook(lambda *args: calls.append(args[1][0].shape[0]))
        return adapter

    monkeypatch.setattr("audit.runner.load_model", hooked)
    result = run_audit(config)
    # every batch has batch_size slots (the last one's free slots hold copies): a row's output
    # must not depend on the size of the batch it falls in (see ModelAdapter.slot_outputs)
    assert calls == [64] * math.ceil(300 / 64)
    assert result.model["forward_batches"] == math.ceil(300 / 64)


def test_static_batch_export_is_padded(project):
    program = torch.export.export(project.network, (torch.zeros(7, 6),))
    torch.export.save(program, str(project.root / "static.pt2"))
    config = load_config(project.spec(model={"kind": "export", "path": "static.pt2"}))
    context = build_context(config)
    assert context.model.static_batch == 7
    np.testing.assert_allclose(context.predictions.probabilities, _reference_probabilities(project), atol=1e-6)


def test_fixed_batch_export_is_explained_and_attacked_like_the_same_network(project):
    """Explanations and attacks call the model through the adapter, which pads to the graph's batch size.

    Before, gradient methods called the exported module directly and failed with
    "Guard failed: input.size()[0] == 7" on any other number of rows.
    """
    program = torch.export.export(project.network, (torch.zeros(7, 6),))
    torch.export.save(program, str(project.root / "static.pt2"))
    checks = {"explanations": {"methods": ["IntegratedGradients", "GradientShap"], "rows": 23},
              "robustness": {"attacks": ["FGSM", "PGD"], "rows": 23, "epsilons": [0.1, 0.3]}}
    fixed = run_audit(load_config(project.spec(model={"kind": "export", "path": "static.pt2"}, checks=checks)))
    assert fixed.failures == ()
    dynamic = run_audit(load_config(project.spec(model=project.model("export"), checks=checks)))
    for metric in ("feature_importance", "robust_accuracy", "attack_success_rate"):
        ours, theirs = fixed.select(metric=metric), dynamic.select(metric=metric)
        assert ours and [m.params for m in ours] == [m.params for m in theirs]
        np.testing.assert_allclose([m.value for m in ours], [m.value for m in theirs], atol=1e-5)


def test_onnx_refuses_gradients_naming_alternatives(project):
    adapter = load_model(load_config(project.spec(model=project.model("onnx"))))
    with pytest.raises(ModelError, match="black box.*Square"):
        adapter.require_gradients("PGD", alternatives="Square")


def test_pickled_module_refused_as_state_dict(project):
    project.model("pickle")
    config = load_config(project.spec(model={"kind": "state_dict", "path": "whole.pt", "factory": "arch.py:build"}))
    with pytest.raises(ModelError, match="pickled object.*allow_pickle"):
        load_model(config)


def test_pickle_kind_needs_opt_in(project):
    project.model("pickle")
    with pytest.raises(ConfigError, match="allow_pickle"):
        load_config(project.spec(model={"kind": "pickle", "path": "whole.pt"}))


def test_factory_by_module_name_resolves_beside_spec(project):
    project.model("safetensors")
    config = load_config(project.spec(model={"kind": "state_dict", "path": "weights.safetensors", "factory": "arch:build"}))
    assert load_model(config).differentiable


def test_factory_arguments_reach_the_factory(project):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    wide = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    save_file(wide.state_dict(), str(project.root / "wide.safetensors"))
    model = {"kind": "state_dict", "path": "wide.safetensors", "factory": "arch.py:build", "factory_args": {"hidden": 5}}
    assert load_model(load_config(project.spec(model=model))).module[0].out_features == 5


# ---------------------------------------------------------------- outputs to predictions


def _data(project, **label):
    spec = project.spec(data={"label": {"column": "label", "classes": [0, 1]} | label})
    return load_data(load_config(spec)), load_config(spec).model


def test_single_logit_and_two_logits_agree(project):
    data, spec = _data(project)
    rng = np.random.default_rng(0)
    logit = rng.normal(size=data.n)
    one = predictions_from_outputs(logit[:, None], data, spec)
    two = predictions_from_outputs(np.stack([np.zeros(data.n), logit], axis=1), data, spec)
    np.testing.assert_allclose(one.probabilities, two.probabilities, atol=1e-12)
    np.testing.assert_array_equal(one.decisions, two.decisions)


def test_single_output_refers_to_declared_positive_class(project):
    data, spec = _data(project, positive=0)
    outputs = np.full(data.n, 0.9)
    spec = spec.model_copy(update={"output": "probabilities"})
    predictions = predictions_from_outputs(outputs, data, spec)
    assert np.all(predictions.probabilities[:, 0] == 0.9)
    assert np.all(predictions.decisions == 0)
    np.testing.assert_allclose(predictions.scores, 0.9)


def test_threshold_decides(project):
    data, spec = _data(project)
    spec = spec.model_copy(update={"output": "probabilities", "threshold": 0.7})
    decisions = predictions_from_outputs(np.array([0.69, 0.7, 0.71] * 100), data, spec).decisions
    np.testing.assert_array_equal(decisions[:3], [0, 1, 1])


def test_declared_probabilities_must_be_probabilities(project):
    data, spec = _data(project)
    spec = spec.model_copy(update={"output": "probabilities"})
    with pytest.raises(ModelError, match="output: logits"):
        predictions_from_outputs(np.full((data.n, 2), 0.7), data, spec)


def test_non_finite_outputs_are_a_model_error(project):
    data, spec = _data(project)
    outputs = np.zeros((data.n, 2))
    outputs[3, 1] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        predictions_from_outputs(outputs, data, spec)


def test_onnx_load_failure_keeps_the_whole_onnxruntime_message(project, capsys):
    from audit.cli import main

    (project.root / "broken.onnx").write_bytes(b"not a protobuf at all")
    spec = project.spec(model={"kind": "onnx", "path": "broken.onnx"})
    code = main(["run", str(spec), "--out", str(project.root / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    import onnxruntime

    try:
        onnxruntime.InferenceSession(str(project.root / "broken.onnx"), providers=["CPUExecutionProvider"])
    except Exception as exc:
        expected = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    assert expected in err


def test_small_onnx_models_run_on_one_thread(project):
    adapter = load_model(load_config(project.spec(model=project.model("onnx"))))
    session = adapter.forward.__closure__
    found = [c.cell_contents for c in session if type(c.cell_contents).__name__ == "InferenceSession"]
    assert found and found[0].get_session_options().intra_op_num_threads == 1
