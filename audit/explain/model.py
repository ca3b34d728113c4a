"""What every method explains, and the torch hygiene around it, in one place.

The explained output is one score per class. For a multiclass model it is the class's raw
output (a logit, or a probability if the model outputs probabilities). For a binary model it
is the log-odds of the positive class (its probability for a probability model), and minus
that (one minus it) for the other class, whatever the model's output width: a one-logit and a
two-logit network computing the same function then get the same attributions, and an
explanation toward one class is the mirror image of the explanation toward the other.

:meth:`ExplainedModel.session` puts the model in evaluation mode, freezes its parameters (only
input gradients are ever needed), seeds every random generator the libraries use (torch, and
numpy's global one, which SHAP draws from) and restores all of it afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit.explain.attribution import FeatureLayout
from audit.models import torch_evaluation

if TYPE_CHECKING:
    from audit.models import ModelAdapter

CPU_BATCH_BYTES = 16 * 2**20
"""On a CPU a batch is fastest while its working set stays in cache: measured on the demo
models, about 32 MiB (some 7,000 rows of the Adult MLP, 1,000 images of the digits CNN)."""

EAGER_KINDS = ("state_dict", "pickle")
"""Model kinds that are plain ``nn.Module`` objects, which forward hooks (DeepLift) need."""


class ExplainedModel:
    """Per-class scores of a loaded model, batched, with gradients when the model has them.

    ``batch_rows`` bounds the rows of any one forward pass (see :func:`rows_for_budget`).
    """

    def __init__(
        self, adapter: "ModelAdapter", *, classes: int, positive_index: int | None, output: str, batch_rows: int
    ) -> None:
        self.adapter = adapter
        self.classes = classes
        self.positive_index = positive_index
        self.output = output
        self.batch_rows = batch_rows

    @property
    def differentiable(self) -> bool:
        return self.adapter.module is not None

    @property
    def eager(self) -> bool:
        """Whether forward hooks can be set on the module's layers (TorchScript refuses them)."""
        return self.adapter.module is not None and self.adapter.kind in EAGER_KINDS

    @property
    def binary(self) -> bool:
        return self.classes == 2

    @property
    def mirror_offset(self) -> float:
        """Binary: the other class's score is ``mirror_offset - score`` (log-odds 0, probability 1)."""
        return 1.0 if self.output == "probabilities" else 0.0

    def class_scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``(N, width)`` to per-class scores ``(N, classes)``."""
        raw = raw.reshape(raw.shape[0], -1)
        if not self.binary:
            return raw
        positive = self.positive_index
        if raw.shape[1] == 1:
            score = raw[:, 0]
        elif self.output == "probabilities":
            score = raw[:, positive]
        else:
            score = raw[:, positive] - raw[:, 1 - positive]
        pair = [self.mirror_offset - score, score] if positive == 1 else [score, self.mirror_offset - score]
        return torch.stack(pair, dim=1)

    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Differentiable per-class scores (gradient methods); the module must exist."""
        return self.class_scores(self.adapter.rows(inputs))

    def target_total(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Sum over rows of each row's target score, differentiable: its gradient is every row's gradient.

        The same number as ``scores(inputs).gather(1, targets).sum()`` up to a constant, built
        with as few operations as possible, since its backward pass runs for every step of
        Integrated Gradients (the per-class table costs a fifth more time on a small network).
        """
        raw = self.adapter.rows(inputs)
        if not self.binary:
            first = int(targets[0])
            return raw[:, first].sum() if bool((targets == first).all()) else raw.gather(1, targets.view(-1, 1)).sum()
        positive = self.positive_index
        score = self.class_scores(raw)[:, positive] if raw.shape[1] > 1 else raw[:, 0]
        if bool((targets == positive).all()):
            return score.sum()
        # the other class's score is offset - score: the offset has no gradient
        return (score * (2.0 * (targets == positive) - 1.0)).sum()

    def scores_no_grad(self, inputs: torch.Tensor) -> torch.Tensor:
        """Per-class scores of any model, black boxes included, in batches of ``batch_rows``.

        Not through ``ModelAdapter.outputs``, whose call count the report gives as the number
        of batches the predictions took.
        """
        size = self.batch_rows
        with torch.no_grad():
            parts = [self.adapter.rows(inputs[start : start + size]).detach().cpu()
                     for start in range(0, inputs.shape[0], size)]
        if not parts:
            return torch.zeros((0, self.classes))
        return self.class_scores(torch.cat(parts).to(torch.float32))

    def target_scores(self, inputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        """``f_c(x)`` of each row's target class, float64, no gradients."""
        scores = self.scores_no_grad(inputs)
        return scores.gather(1, targets.reshape(-1, 1).to(torch.int64))[:, 0].double().numpy()

    @contextlib.contextmanager
    def session(self, seed: int) -> Iterator[None]:
        """Evaluation mode, frozen parameters, seeded generators, one CPU thread; all restored on exit.

        One intra-op thread on a CPU: the methods run thousands of cache-sized operations, and
        with several threads each operation waits at a barrier for every thread, including one
        the operating system has handed to another process. On the shared 2-core development
        machine that made the demo's explanations up to 30 times slower in some runs, while one
        thread was as fast as two on average (a GPU is unaffected).
        """
        module = self.adapter.module
        frozen = [p for p in module.parameters() if p.requires_grad] if module is not None else []
        numpy_state = np.random.get_state()
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]), torch_evaluation(module), torch.enable_grad():
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            if self.adapter.device.type == "cpu":
                torch.set_num_threads(1)
            for parameter in frozen:
                parameter.requires_grad_(False)
            try:
                yield
            finally:
                for parameter in frozen:
                    parameter.requires_grad_(True)
                torch.set_num_threads(threads)
                np.random.set_state(numpy_state)


@dataclass(frozen=True)
class Request:
    """Everything a method needs: the rows, their target classes and the references.

    ``inputs`` has shape ``(n, *input_shape)``; ``targets`` one class index per row.
    ``baseline`` is a single reference input ``(1, *input_shape)`` (Integrated Gradients,
    DeepLift, ablation); ``background`` a sample of data rows ``(B, *input_shape)`` whose
    mean output is the base value of the SHAP methods.
    """

    model: ExplainedModel
    inputs: torch.Tensor
    targets: torch.Tensor
    rows: np.ndarray
    baseline: torch.Tensor
    background: torch.Tensor
    layout: FeatureLayout
    steps: int = 50
    samples: int = 0
    seed: int = 0

    @property
    def n(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def kind(self) -> str:
        """The data kind, which picks a method's function (a text request says ``text``)."""
        return self.layout.kind

    def with_inputs(self, inputs: torch.Tensor, targets: torch.Tensor) -> "Request":
        """The same request for other inputs (perturbed copies, in the sensitivity test)."""
        return replace(self, inputs=inputs, targets=targets, rows=np.arange(inputs.shape[0]))


def rows_for_budget(adapter: "ModelAdapter", example: torch.Tensor, memory_mb: int) -> int:
    """Rows per forward-and-backward pass that fit in ``memory_mb`` (and, on a CPU, in cache).

    A row costs its input and input gradient, a few copies of the input that the methods
    build (scaled or masked inputs), and the activations autograd keeps for the backward
    pass. Those are measured on two small probe batches: the bytes of every tensor saved for
    backward, whose growth from one probe to the other is the per-row cost (the weights, saved
    once, cancel out). A black box keeps nothing: only its inputs and outputs count.
    """
    input_bytes = example[0].numel() * 4
    per_row = max(1, 6 * input_bytes + 2 * _saved_bytes_per_row(adapter, example))
    budget = memory_mb * 2**20
    if adapter.device.type == "cpu":
        budget = min(budget, CPU_BATCH_BYTES)
    return int(max(1, budget // per_row))


def _saved_bytes_per_row(adapter: "ModelAdapter", example: torch.Tensor) -> int:
    module = adapter.module
    if module is None:
        return 0
    small, large = (_saved_bytes(module, example, rows) for rows in (2, 6))
    return max(0, (large - small) // 4)


def _saved_bytes(module: torch.nn.Module, example: torch.Tensor, rows: int) -> int:
    """Bytes autograd saves for a forward pass of ``rows`` rows (0 if the probe fails)."""
    saved: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    probe = example[:1].expand(rows, *example.shape[1:]).clone().requires_grad_()
    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    try:
        with torch_evaluation(module), torch.enable_grad(), hooks:
            module(probe)
    except Exception:  # a graph exported for one batch size: fall back on the input's size
        return 0
    return sum(saved)
