"""Text models as black boxes (ONNX) and the position limit of every text model kind.

The tiny BERT of ``text_fixtures`` is exported with ``torch.onnx.export`` (dynamo, dynamic
batch and length) and audited as ``model.kind: onnx``: its predictions must equal the torch
model's, its black-box attributions must equal the same methods run on the torch model, and
gradient methods are refused at validate.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from audit import load_config, run_audit
from audit.cli import main
from audit.runner import build_context
from tests.text_fixtures import make_project, write_spec


class _Logits(torch.nn.Module):
    """A transformers classifier as ``module(ids, mask) -> logits``, the form an exporter takes."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask).logits


def export_onnx(module: torch.nn.Module, path, *, length: int | None = None, batch: int | None = None) -> None:
    """Export ``module(ids, mask)``; dynamic batch and length unless ``batch`` or ``length`` fixes them."""
    ids = torch.randint(4, 20, (batch or 2, length or 7))
    axes = {**({} if batch else {0: "batch"}), **({} if length else {1: "length"})}
    dynamic = {"input_ids": axes, "attention_mask": axes} if axes else None
    with warnings.catch_warnings():  # the exporter's own deprecation notes are not ours to fail on
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (ids, torch.ones_like(ids)), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=dynamic, dynamo=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from transformers import BertForSequenceClassification

    root = tmp_path_factory.mktemp("text_onnx")
    make_project(root)
    model = BertForSequenceClassification.from_pretrained(root / "model", local_files_only=True)
    export_onnx(_Logits(model), root / "model.onnx")
    return root


def onnx_spec(root, name: str = "onnx.yaml", **changes):
    changes.setdefault("data__tokenizer", {"path": str(root / "model" / "tokenizer.json"), "max_length": 10})
    changes.setdefault("model", {"kind": "onnx", "path": "model.onnx", "batch_size": 16})
    return write_spec(root, name, **changes)


@pytest.fixture(scope="module")
def contexts(project):
    return build_context(load_config(project / "spec.yaml")), build_context(load_config(onnx_spec(project)))


def test_onnx_text_model_predicts_as_the_torch_model(contexts):
    torch_ctx, onnx_ctx = contexts
    assert onnx_ctx.model.kind == "onnx" and not onnx_ctx.model.differentiable
    np.testing.assert_allclose(onnx_ctx.predictions.probabilities, torch_ctx.predictions.probabilities, atol=1e-5)
    assert (onnx_ctx.predictions.decisions == torch_ctx.predictions.decisions).all()


def test_onnx_counterfactual_swaps_score_as_the_torch_model(contexts):
    from audit.text.checks import swap_outcomes

    torch_swaps, onnx_swaps = (swap_outcomes(ctx)["gender"] for ctx in contexts)
    assert [o.direction for o in onnx_swaps] == [o.direction for o in torch_swaps] and onnx_swaps
    for ours, reference in zip(onnx_swaps, torch_swaps):
        assert ours.rewritten == reference.rewritten
        np.testing.assert_allclose(ours.change, reference.change, atol=1e-5)
        assert (ours.flips == reference.flips).all()


def test_black_box_attributions_equal_the_same_methods_on_the_torch_model(contexts):
    from audit.text import attributions

    torch_ctx, onnx_ctx = contexts
    rows = np.array([1, 2])
    texts = [torch_ctx.data.frame["text"][r] for r in rows]
    targets = torch_ctx.predictions.decisions[rows]
    for name in ("Partition", "LIME"):
        found = [attributions.explain(ctx.model, name, attributions.text_batch(ctx.model, texts, rows, targets),
                                      steps=8, seed=0) for ctx in contexts]
        np.testing.assert_allclose(found[1].values, found[0].values, atol=1e-5, err_msg=name)
    assert attributions.defaults(onnx_ctx.model) == ["Partition", "LIME"]
    assert attributions.defaults(torch_ctx.model) == ["LayerIntegratedGradients"]


def test_an_onnx_text_audit_runs_black_box_checks_and_says_why_the_word_attack_did_not(project):
    spec = onnx_spec(project, "audit.yaml", checks__token_attributions={"rows": 6, "costly_rows": 3, "examples": 1})
    result = run_audit(load_config(spec))
    assert not result.failures, result.failures
    assert {"performance", "fairness", "identity_bias", "counterfactual", "token_attributions",
            "text_robustness"} <= set(result.checks_run)
    explained = {m.params["method"] for m in result.select("token_attributions", "texts_explained")}
    assert explained == {"Partition", "LIME"}
    char = [m for m in result.select("text_robustness", "robust_accuracy") if m.params["attack"] == "char" and not m.group]
    assert char and all(m.value is not None for m in char)
    word = [m for m in result.select("text_robustness", "robust_accuracy") if m.params["attack"] == "word"]
    assert word and all(m.value is None and m.reason == "no_embeddings" for m in word)
    assert any("word attack" in w and "embedding" in w for w in result.warnings)


def test_gradient_method_on_an_onnx_text_model_is_refused_at_validate(project, tmp_path, capsys):
    spec = onnx_spec(project, "ig.yaml", checks__token_attributions={"methods": ["Partition", "LayerIntegratedGradients"]})
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "LayerIntegratedGradients" in err and "black box" in err and "LIME, Partition" in err


def _refused(spec, out, capsys, *words) -> None:
    capsys.readouterr()  # what the test's own set-up printed (transformers' loading bar)
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists() or not any(out.iterdir()), f"files left in {out}"


def test_onnx_with_a_fixed_length_pads_to_it_and_refuses_longer_texts(project, contexts, tmp_path, capsys):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(project / "model", local_files_only=True)
    export_onnx(_Logits(model), project / "fixed.onnx", length=12)
    export_onnx(_Logits(model), project / "fixed_batch.onnx", length=12, batch=4)  # 90 texts: the last batch padded
    for name in ("fixed", "fixed_batch"):
        fixed = onnx_spec(project, f"{name}.yaml", model={"kind": "onnx", "path": f"{name}.onnx", "batch_size": 16})
        ctx = build_context(load_config(fixed))
        np.testing.assert_allclose(ctx.predictions.probabilities, contexts[0].predictions.probabilities, atol=1e-5)
        assert (ctx.predictions.decisions == contexts[0].predictions.decisions).all()
    longer = onnx_spec(project, "fixed16.yaml", model={"kind": "onnx", "path": "fixed.onnx"},
                       data__tokenizer={"path": str(project / "model" / "tokenizer.json"), "max_length": 16})
    _refused(longer, tmp_path / "out", capsys, "max_length 16", "12 positions", "fixed input length")


def test_onnx_position_table_limits_max_length(project, tmp_path, capsys):
    spec = onnx_spec(project, "long.yaml",
                     data__tokenizer={"path": str(project / "model" / "tokenizer.json"), "max_length": 40})
    _refused(spec, tmp_path / "out", capsys, "max_length 40", "32 positions", "position_embeddings")


POSITIONAL_SOURCE = '''
import torch


class Positional(torch.nn.Module):
    def __init__(self, vocab=40, width=8, positions=8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.pos = torch.nn.Embedding(positions, width)
        self.out = torch.nn.Linear(width, 2)

    def forward(self, ids, mask):
        where = torch.arange(ids.shape[1], device=ids.device)
        vectors = (self.embed(ids) + self.pos(where)) * mask.unsqueeze(-1)
        return self.out(vectors.sum(1) / mask.sum(1, keepdim=True))


def build():
    torch.manual_seed(0)
    return Positional()
'''


def _positional(root):
    (root / "positional.py").write_text(POSITIONAL_SOURCE)
    return _positional_module(root)


def _positional_module(root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("positional_for_test", root / "positional.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build().eval()


@pytest.mark.parametrize("kind", ["state_dict", "torchscript", "export", "onnx"])
def test_texts_longer_than_a_module_position_table_are_refused(project, tmp_path, capsys, kind):
    from safetensors.torch import save_file

    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    module = _positional(tmp_path)
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    if kind == "state_dict":
        save_file(module.state_dict(), str(tmp_path / "m.safetensors"))
        model = {"kind": "state_dict", "path": "m.safetensors", "factory": "positional.py:build"}
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(module), str(tmp_path / "m.pt"))
        model = {"kind": "torchscript", "path": "m.pt"}
    elif kind == "export":
        axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("length", max=8)}
        program = torch.export.export(module, (ids, torch.ones_like(ids)), dynamic_shapes=(axes, axes))
        torch.export.save(program, str(tmp_path / "m.pt2"))
        model = {"kind": "export", "path": "m.pt2"}
    else:
        export_onnx(module, tmp_path / "m.onnx", length=None)
        model = {"kind": "onnx", "path": "m.onnx"}
    tokenizer = str(project / "model" / "tokenizer.json")
    fits = write_spec(tmp_path, "fits.yaml", model=model, data__tokenizer={"path": tokenizer, "max_length": 8},
                      checks={"token_attributions": {"enabled": False}, "text_robustness": {"enabled": False}})
    assert build_context(load_config(fits)).data.n == 90
    long = write_spec(tmp_path, "long.yaml", model=model, data__tokenizer={"path": tokenizer, "max_length": 10})
    _refused(long, tmp_path / "out", capsys, "max_length 10", "8 positions", "pos")


def test_gradient_method_on_a_module_without_an_embedding_layer_is_refused_before_any_check(project, tmp_path, capsys):
    """A TorchScript module hides its nn.Embedding from hooks: one line naming what runs, exit 2, no files."""
    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    torch.jit.save(torch.jit.script(_positional(tmp_path)), str(tmp_path / "m.pt"))
    tokenizer = {"path": str(project / "model" / "tokenizer.json"), "max_length": 8}
    spec = write_spec(tmp_path, model={"kind": "torchscript", "path": "m.pt"}, data__tokenizer=tokenizer,
                      checks__token_attributions={"methods": ["LayerIntegratedGradients"]})
    _refused(spec, tmp_path / "out", capsys, "LayerIntegratedGradients", "token embedding layer", "LIME, Partition")


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_a_tokenizer_larger_than_the_model_vocabulary_is_refused(project, tmp_path, capsys, kind):
    """37 tokens against 32 embedding rows: the ids table found through the graph's Gather, or the scripted Embedding."""
    from transformers import BertForSequenceClassification

    from tests.text_fixtures import save_model

    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    if kind == "onnx":
        save_model(tmp_path / "small", vocab_extra=-5)
        small = BertForSequenceClassification.from_pretrained(tmp_path / "small", local_files_only=True)
        export_onnx(_Logits(small), tmp_path / "m.onnx")
        model = {"kind": "onnx", "path": "m.onnx"}
    else:
        (tmp_path / "positional.py").write_text(POSITIONAL_SOURCE.replace("vocab=40", "vocab=32"))
        torch.jit.save(torch.jit.script(_positional_module(tmp_path)), str(tmp_path / "m.pt"))
        model = {"kind": "torchscript", "path": "m.pt"}
    tokenizer = {"path": str(project / "model" / "tokenizer.json"), "max_length": 8}
    spec = write_spec(tmp_path, model=model, data__tokenizer=tokenizer)
    _refused(spec, tmp_path / "out", capsys, "37 tokens", "embeds only 32")
