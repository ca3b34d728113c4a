"""The text attribution methods of the shared registry (:mod:`audit.explain.registry`, kind ``text``).

Each takes a :class:`TextRequest` (the text model, tokenized texts, steps, seed) and returns an
:class:`Attribution` per token position, ``(texts, tokens)``, zero at padding.

- ``layer_integrated_gradients`` (Captum): Integrated Gradients on the token embedding layer,
  from a baseline that keeps the special tokens and puts the padding token everywhere else
  (Captum's BERT tutorial); additive, so the values of a text sum to f(x) - f(baseline) up to
  the integral's error, reported as the completeness gap.
- ``layer_gradient_x_activation`` (Captum): gradient times embedding; one backward pass.
- ``partition`` (SHAP's Partition explainer with its text masker): Owen values over a
  hierarchy of words; additive in the predicted class's probability; costly.
- ``lime`` (lime's ``LimeTextExplainer``): a local linear model over word removals; costly.

The gradient methods explain the model's raw output (logit) for the predicted class; SHAP and
LIME, which query the model on edited texts, explain that class's probability, so they run on
black boxes (ONNX) too. Tokenizing and summing to words live in :mod:`audit.text.attributions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from audit.explain.attribution import Attribution

TEXT = "text"
LIME_SAMPLES = 300
PARTITION_EVALS = 300


@dataclass(frozen=True)
class TextBatch:
    """Texts to explain, tokenized: ids and mask cut to the longest, and each token's word."""

    rows: np.ndarray
    texts: list[str]
    ids: torch.Tensor
    mask: torch.Tensor
    special: torch.Tensor
    word_ids: list[list[int | None]]
    offsets: list[list[tuple[int, int]]]
    targets: torch.Tensor


@dataclass(frozen=True)
class TextRequest:
    """What a text method needs: the text model, the tokenized texts, IG steps and the seed."""

    model: Any
    batch: TextBatch
    steps: int
    seed: int
    kind: str = TEXT

    @property
    def targets(self) -> torch.Tensor:
        return self.batch.targets


def _forward(adapter) -> Callable:
    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = adapter.call(ids, mask)
        return out if out.dim() == 2 else out.unsqueeze(1)
    return forward


def _outputs(adapter, ids, mask, targets) -> np.ndarray:
    with torch.no_grad():
        out = _forward(adapter)(ids, mask)
    return out.gather(1, targets.unsqueeze(1)).squeeze(1).double().numpy()


def layer_integrated_gradients(request: TextRequest, chunk: int = 8) -> Attribution:
    from captum.attr import LayerIntegratedGradients

    adapter, batch, steps = request.model, request.batch, request.steps
    method = LayerIntegratedGradients(_forward(adapter), adapter.embeddings)
    baseline = torch.where(batch.special, batch.ids, torch.full_like(batch.ids, adapter.pad_id))
    values = []
    for start in range(0, len(batch.ids), chunk):
        part = slice(start, start + chunk)
        found = method.attribute(batch.ids[part], baselines=baseline[part], target=batch.targets[part],
                                 additional_forward_args=(batch.mask[part],), n_steps=steps,
                                 internal_batch_size=chunk * steps)
        values.append(found.sum(dim=-1).detach().double())
    token_values = torch.cat(values).numpy() * batch.mask.numpy()
    return Attribution("LayerIntegratedGradients", token_values,
                       base_values=_outputs(adapter, baseline, batch.mask, batch.targets),
                       outputs=_outputs(adapter, batch.ids, batch.mask, batch.targets),
                       targets=batch.targets.numpy(), rows=batch.rows, settings={"steps": steps, "baseline": "padding"})


def layer_gradient_x_activation(request: TextRequest, chunk: int = 32) -> Attribution:
    from captum.attr import LayerGradientXActivation

    adapter, batch = request.model, request.batch
    method = LayerGradientXActivation(_forward(adapter), adapter.embeddings)
    values = [
        method.attribute(batch.ids[s : s + chunk], target=batch.targets[s : s + chunk],
                         additional_forward_args=(batch.mask[s : s + chunk],)).sum(dim=-1).detach().double()
        for s in range(0, len(batch.ids), chunk)
    ]
    outputs = _outputs(adapter, batch.ids, batch.mask, batch.targets)
    return Attribution("LayerGradientXActivation", torch.cat(values).numpy() * batch.mask.numpy(),
                       base_values=np.zeros_like(outputs), outputs=outputs, targets=batch.targets.numpy(),
                       rows=batch.rows, additive=False)


def lime(request: TextRequest) -> Attribution:
    """LIME's text explainer over word removals; each word's weight is spread over its tokens."""
    from lime.lime_text import LimeTextExplainer

    adapter, batch, seed = request.model, request.batch, request.seed
    explainer = LimeTextExplainer(split_expression=r"\W+", bow=False, random_state=seed)
    values = np.zeros(batch.ids.shape)
    for row, text in enumerate(batch.texts):
        target = int(batch.targets[row])

        def classify(texts: list[str]) -> np.ndarray:
            encoded = adapter.tokenizer.encode(list(texts))
            return _probabilities(adapter, encoded.ids)

        found = explainer.explain_instance(text, classify, labels=(target,), num_features=10_000,
                                           num_samples=LIME_SAMPLES)
        indexed = found.domain_mapper.indexed_string
        for feature, weight in found.as_map()[target]:
            start = indexed.string_start[feature]
            _spread(values[row], batch, row, start, start + len(indexed.word(feature)), weight)
    outputs = _outputs(adapter, batch.ids, batch.mask, batch.targets)
    return Attribution("LIME", values, base_values=np.zeros_like(outputs), outputs=outputs,
                       targets=batch.targets.numpy(), rows=batch.rows, additive=False,
                       settings={"samples": LIME_SAMPLES})


def partition(request: TextRequest) -> Attribution:
    """SHAP's Partition explainer with a text masker (words split on non-word characters).

    Explains the predicted class's probability; its values sum to f(x) - f(all words masked).
    ``max_evals`` is ``PARTITION_EVALS`` per text.
    """
    from audit.explain.shap_methods import _quiet_numba, import_shap

    shap = import_shap()
    adapter, batch = request.model, request.batch

    def classify(texts) -> np.ndarray:
        return _probabilities(adapter, adapter.tokenizer.encode([str(t) for t in texts]).ids)

    explainer = shap.explainers.Partition(classify, shap.maskers.Text(r"\W+"))
    values = np.zeros(batch.ids.shape)
    outputs, base = np.zeros(len(batch.texts)), np.zeros(len(batch.texts))
    for row, text in enumerate(batch.texts):
        target = int(batch.targets[row])
        with _quiet_numba():
            found = explainer([text], max_evals=PARTITION_EVALS, silent=True)
        start = 0
        for piece, value in zip(found.data[0], found.values[0][:, target]):
            _spread(values[row], batch, row, start, start + len(piece.rstrip()), float(value))
            start += len(piece)
        base[row] = float(np.asarray(found.base_values[0])[target])
        outputs[row] = base[row] + float(found.values[0][:, target].sum())
    return Attribution("Partition", values, base_values=base, outputs=outputs, targets=batch.targets.numpy(),
                       rows=batch.rows, settings={"max_evals": PARTITION_EVALS, "output": "probability"})


def _probabilities(adapter, ids: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = _forward(adapter)(ids, (ids != adapter.pad_id).long()).double()
    if out.shape[1] == 1:
        positive = torch.sigmoid(out[:, 0])
        return torch.stack([1 - positive, positive], dim=1).numpy()
    return torch.softmax(out, dim=1).numpy()


def _spread(values: np.ndarray, batch: TextBatch, row: int, start: int, end: int, weight: float) -> None:
    tokens = [t for t, (a, b) in enumerate(batch.offsets[row]) if batch.word_ids[row][t] is not None and a < end and b > start]
    for t in tokens:
        values[t] += weight / len(tokens)
