"""The audited model as an attack sees it, and the torch hygiene of an attack session.

torchattacks wants a ``torch.nn.Module`` that maps a batch to logits, and it attacks the
argmax of those logits. :class:`DecisionLogits` makes that argmax the audit's decision for any
model the audit loads: a binary model with one output (a logit or a probability) becomes two
logits, the positive one shifted by the logit of the decision threshold; probabilities become
log-probabilities. :class:`BlackBox` runs a model without gradients (ONNX) through the
adapter, for attacks that only query (Square).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import nn

from audit.models import ModelAdapter, set_training, small_rows_on_one_thread

TINY = 1e-12


class BlackBox(nn.Module):
    """A gradient-free module over the adapter's batched forward (ONNX and other black boxes)."""

    def __init__(self, adapter: ModelAdapter, *, batch_size: int) -> None:
        super().__init__()
        self.adapter = adapter
        self.batch_size = batch_size

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.adapter.outputs(inputs.detach().cpu(), batch_size=self.batch_size)
        return torch.from_numpy(outputs).to(torch.float32)


class AdapterModule(nn.Module):
    """The adapter's one way of calling the model (fixed batch sizes, tuple outputs), as a module."""

    def __init__(self, adapter: ModelAdapter) -> None:
        super().__init__()
        self.module = adapter.module  # registered, so an attack finds the parameters and their device
        self.rows = adapter.rows

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.rows(inputs)


class DecisionLogits(nn.Module):
    """Logits whose argmax is the audit's decision, from any model output the audit accepts.

    ``positive_index`` and ``threshold`` are for binary models.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        probabilities: bool,
        positive_index: int | None,
        threshold: float,
    ) -> None:
        super().__init__()
        self.model = model
        self.probabilities = probabilities
        self.positive_index = positive_index
        self.shift = math.log(threshold) - math.log1p(-threshold)

    def train(self, mode: bool = True) -> "DecisionLogits":
        # torchattacks switches the model to eval mode around each attack; an exported program
        # refuses mode switches, and attack_session has already put the module in eval mode
        self.training = mode
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.model(inputs)
        if isinstance(outputs, (tuple, list)):
            outputs = outputs[0]
        outputs = outputs.reshape(len(inputs), -1).to(torch.float32)
        if self.probabilities:
            outputs = torch.log(outputs.clamp_min(TINY))
            if outputs.shape[1] == 1:  # log p -> logit p, so the positive column is a logit
                outputs = outputs - torch.log1p(-outputs.exp().clamp_max(1 - 1e-7))
        if self.positive_index is None:
            return outputs
        return self._binary(outputs)

    def _binary(self, outputs: torch.Tensor) -> torch.Tensor:
        # decision: p(positive) >= threshold, i.e. positive logit minus negative logit >= shift
        if outputs.shape[1] == 1:
            positive, negative = outputs[:, 0] - self.shift, torch.zeros_like(outputs[:, 0])
        else:
            positive = outputs[:, self.positive_index] - self.shift
            negative = outputs[:, 1 - self.positive_index]
        pair = [negative, positive] if self.positive_index == 1 else [positive, negative]
        return torch.stack(pair, dim=1)


def decision_logits(adapter: ModelAdapter, *, positive_index: int | None, output: str, threshold: float, batch_size: int) -> DecisionLogits:
    """The adapter's model behind :class:`DecisionLogits` (a :class:`BlackBox` if it has no module)."""
    model = AdapterModule(adapter) if adapter.module is not None else BlackBox(adapter, batch_size=batch_size)
    return DecisionLogits(model, probabilities=output == "probabilities", positive_index=positive_index, threshold=threshold)


@contextlib.contextmanager
def attack_session(adapter: ModelAdapter, *, row_size: int | None = None) -> Iterator[None]:
    """Eval mode, frozen parameters and gradients enabled while attacks run; all restored after.

    Frozen parameters: CW and DeepFool call ``backward()``, which would otherwise write
    ``.grad`` into the audited model. The adapter's forward count is restored too: it tells
    the reader how many batches the one prediction pass took, and attack queries are not that.

    One CPU thread for inputs of at most :data:`audit.models.SMALL_INPUT` elements a row (tabular data,
    small images): an attack is thousands of small tensor operations, which several threads
    barely speed up, and on a busy machine (a shared CI runner) every operation waits for a
    preempted thread: the demo's attacks took 40 s with two threads and 0.5 s with one on a
    two-core machine running two other jobs. Larger inputs keep torch's setting.
    """
    module, calls = adapter.module, adapter.forward_calls
    flags = [(p, p.requires_grad) for p in module.parameters()] if module is not None else []
    was_training = bool(module is not None and module.training)
    set_training(module, False)
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        with torch.enable_grad(), small_rows_on_one_thread(adapter.device, row_size):
            yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        if was_training:
            set_training(module, True)
        adapter.forward_calls = calls

