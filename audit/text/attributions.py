"""Token attributions of a text classifier, behind the one :class:`Attribution` type.

An attribution's ``values`` are per token position, ``(texts, tokens)``, zero at padding; a
reader sees words: :func:`word_values` sums the tokens of each word (the tokenizer's own word
ids), so every method, whatever it perturbs, reports the same unit.

The methods (LayerIntegratedGradients, LayerGradientXActivation, Partition, LIME) are entries
of the shared registry, :mod:`audit.explain.registry`, for data kind ``text``; their code is in
:mod:`audit.explain.text_methods`. :func:`explain` runs one by name, after
:func:`method_problem` (gradient methods need the model's embedding layer, which a black box
such as an ONNX graph hides; Partition and LIME only query the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.errors import ModelError
from audit.explain.attribution import Attribution
from audit.explain.text_methods import TEXT, TextBatch, TextRequest
from audit.models import set_training

__all__ = ["TEXT", "TextBatch", "TextRequest", "Word", "defaults", "explain", "method_problem", "text_batch",
           "usable", "word_values"]


def text_batch(adapter, texts: list[str], rows: np.ndarray, targets: np.ndarray) -> TextBatch:
    encodings = adapter.tokenizer.encodings(texts)
    width = max(len(e.ids) for e in encodings)
    ids = torch.full((len(texts), width), adapter.pad_id, dtype=torch.long)
    special = torch.ones((len(texts), width), dtype=torch.bool)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        special[row, : len(e.ids)] = torch.tensor(e.special_tokens_mask, dtype=torch.bool)
    return TextBatch(rows=rows, texts=texts, ids=ids, mask=(ids != adapter.pad_id).long(), special=special,
                     word_ids=[list(e.word_ids) for e in encodings], offsets=[list(e.offsets) for e in encodings],
                     targets=torch.as_tensor(targets, dtype=torch.long))


def explain(adapter, name: str, batch: TextBatch, *, steps: int, seed: int) -> Attribution:
    """Run the registered method ``name`` on tokenized texts (refused with why if it cannot run here)."""
    from audit.explain import registry

    method = registry.get(name)
    why = method_problem(adapter, name)
    if why is not None:
        raise ModelError(why, hint=f"use one of {', '.join(usable(adapter))}")
    if method.gradients:
        set_training(adapter.module, False)
    return registry.attribute(name, TextRequest(adapter, batch, steps, seed))


def method_problem(adapter, name: str) -> str | None:
    """Why the registered method ``name`` cannot explain this text model, or None."""
    from audit.explain import registry

    return registry.problem(registry.get(name), kind=TEXT, model=_explained(adapter), groups=0)


def usable(adapter) -> list[str]:
    from audit.explain import registry

    return [name for name, m in registry.METHODS.items() if TEXT in m.data and method_problem(adapter, name) is None]


def defaults(adapter) -> list[str]:
    """The methods used when the spec names none: Integrated Gradients, or the black-box pair."""
    from audit.explain import registry

    return registry.defaults(kind=TEXT, model=_explained(adapter), groups=0)


def _explained(adapter):
    # what registry.problem reads of a model: gradients, its kind, its layers (the text methods
    # explain the predicted class themselves, so the class bookkeeping is unused)
    from audit.explain.model import ExplainedModel

    return ExplainedModel(adapter, classes=2, positive_index=None, output="logits", batch_rows=1)


@dataclass(frozen=True)
class Word:
    text: str
    value: float


def word_values(attribution: Attribution, batch: TextBatch, position: int) -> list[Word]:
    """One text's attributions summed per word (the tokenizer's words), in reading order."""
    sums: dict[int, float] = {}
    spans: dict[int, list[int]] = {}
    for t, word in enumerate(batch.word_ids[position]):
        if word is None:
            continue
        sums[word] = sums.get(word, 0.0) + float(attribution.values[position, t])
        a, b = batch.offsets[position][t]
        span = spans.setdefault(word, [a, b])
        span[0], span[1] = min(span[0], a), max(span[1], b)
    text = batch.texts[position]
    return [Word(text[spans[w][0] : spans[w][1]], sums[w]) for w in sorted(sums)]
