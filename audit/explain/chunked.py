"""Attributions in chunks of rows, through an executor (:mod:`audit.scale.executor`).

A method explains the rows of a chunk with the chunk's own seed (the audit seed and the
chunk's first row id): deterministic methods (Integrated Gradients, Saliency, exact Shapley
values...) give each row the values they gave it before chunking; seeded ones (KernelSHAP,
LIME, GradientShap) give what the library gives for that chunk under that seed, whichever
worker runs it. The chunks' attributions are joined in row order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit import sampling
from audit.explain import registry
from audit.explain.attribution import Attribution, FeatureLayout
from audit.explain.model import ExplainedModel, Request
from audit.scale.executor import chunks

if TYPE_CHECKING:
    from audit.models import ModelAdapter


@dataclass(frozen=True)
class AttributionTask:
    """One method on one chunk of rows: the rows' inputs and the references, never the model."""

    method: str
    inputs: torch.Tensor
    targets: torch.Tensor
    rows: np.ndarray  # positions in the audited rows, for the Attribution
    baseline: torch.Tensor
    background: torch.Tensor
    layout: FeatureLayout
    steps: int
    seed: int
    classes: int
    positive_index: int | None
    output: str
    batch_rows: int

    def run(self, adapter: "ModelAdapter") -> Attribution:
        model = ExplainedModel(adapter, classes=self.classes, positive_index=self.positive_index, output=self.output,
                               batch_rows=self.batch_rows)
        request = Request(model=model, inputs=self.inputs, targets=self.targets, rows=self.rows, baseline=self.baseline,
                          background=self.background, layout=self.layout, steps=self.steps, seed=self.seed)
        with model.session(self.seed):
            return registry.attribute(self.method, request)


def tasks(request: Request, method: str, *, row_ids: np.ndarray, seed: int, size: int) -> list[AttributionTask]:
    """``request``'s rows cut into chunks of ``size``, each seeded by its first row's id.

    ``row_ids`` are the ids of the audited rows (``request.rows`` index them).
    """
    model = request.model
    out = []
    for part in chunks(request.n, size):
        rows = request.rows[part]
        first = int(row_ids[rows[0]]) if len(rows) else 0
        out.append(AttributionTask(
            method=method, inputs=request.inputs[part], targets=request.targets[part], rows=rows,
            baseline=request.baseline, background=request.background, layout=request.layout, steps=request.steps,
            seed=sampling.chunk_seed(seed, first), classes=model.classes, positive_index=model.positive_index,
            output=model.output, batch_rows=model.batch_rows,
        ))
    return out


def joined(parts: list[Attribution]) -> Attribution:
    """The chunks' attributions as one, in chunk order; the model calls they made added up."""
    first = parts[0]
    if len(parts) == 1:
        return first
    settings = dict(first.settings)
    if "model_evaluations" in settings:
        settings["model_evaluations"] = sum(int(p.settings["model_evaluations"]) for p in parts)
    return replace(
        first,
        values=np.concatenate([p.values for p in parts]),
        base_values=np.concatenate([p.base_values for p in parts]),
        outputs=np.concatenate([p.outputs for p in parts]),
        targets=np.concatenate([p.targets for p in parts]),
        rows=np.concatenate([p.rows for p in parts]),
        settings=settings,
    )
