"""Attacks in chunks of the attacked rows, through an executor (:mod:`audit.scale.executor`).

Each chunk is attacked on its own, with the sweep of :mod:`audit.robust.sweep` and a seed of
its own (the audit seed and the chunk's first row id; torchattacks and PGD's random starts
take one seed per call). A point's steps never depend on the other points of its batch, so a
point's outcome under a deterministic attack is the one it had before chunking; the random
restarts draw per chunk. The chunks' per-point outcomes are joined in row order, and the
examples kept are the most fragile over all chunks, as one sweep keeps them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from audit import attacks, sampling
from audit.context import AuditData
from audit.models import predictions_from_outputs
from audit.robust import sweep
from audit.robust.domain import ColumnRules, ImageDomain, TabularDomain
from audit.robust.wrappers import attack_session, decision_logits
from audit.scale.executor import chunks

if TYPE_CHECKING:
    from audit.config import ModelSpec
    from audit.models import ModelAdapter


@dataclass(frozen=True)
class AttackTask:
    """One attack's sweep over one chunk of rows: the rows, the domain's rules and the settings."""

    attack: str
    clean: torch.Tensor
    labels: torch.Tensor
    correct: np.ndarray
    epsilons: tuple[float, ...]
    plan: sweep.Plan
    keep: int | None
    norm: str
    rules: ColumnRules | None  # tabular
    widest: float | None  # tabular: the attack units of every attacked row
    value_range: tuple[float, float] | None  # images
    classes: tuple[str, ...]
    positive_index: int | None
    model_spec: "ModelSpec"

    def run(self, adapter: "ModelAdapter") -> sweep.Outcome:
        spec = self.model_spec
        logits = decision_logits(adapter, positive_index=self.positive_index, output=spec.output,
                                 threshold=spec.threshold, batch_size=spec.batch_size)
        labels = AuditData(labels=np.zeros(0, dtype=np.int64), classes=self.classes, positive_index=self.positive_index,
                           sensitive=pd.DataFrame(), features=None)

        def evaluate(inputs: torch.Tensor) -> np.ndarray:
            return predictions_from_outputs(adapter.outputs(inputs, batch_size=spec.batch_size), labels, spec).decisions

        target = sweep.Target(self._domain(logits, adapter.device), self.labels, self.correct, evaluate)
        with attack_session(adapter, row_size=int(self.clean[0].numel())):
            return sweep.run(attacks.get(self.attack), target, list(self.epsilons), self.plan, keep=self.keep)

    def _domain(self, logits, device):
        if self.rules is None:
            low, high = self.value_range
            return ImageDomain(clean=self.clean, low=low, high=high, norm=self.norm, logits=logits, device=device)
        return TabularDomain(clean=self.clean, rules=self.rules, norm=self.norm, logits=logits, device=device,
                             widest=self.widest)


def tasks(attack: str, target: sweep.Target, epsilons: list[float], plan: sweep.Plan, *, keep: int | None,
          row_ids: np.ndarray, seed: int, size: int, classes: tuple[str, ...], positive_index: int | None,
          model_spec: "ModelSpec") -> list[AttackTask]:
    """The attacked points cut into chunks of ``size``; ``row_ids`` are the points' row ids, in order."""
    domain = target.domain
    tabular = domain.kind == "tabular"
    out = []
    for part in chunks(target.n, size):
        first = int(row_ids[part][0]) if part.stop > part.start else 0
        out.append(AttackTask(
            attack=attack, clean=domain.clean[part], labels=target.labels[part], correct=target.correct[part],
            epsilons=tuple(epsilons), plan=dataclasses.replace(plan, seed=sampling.chunk_seed(seed, first)), keep=keep,
            norm=domain.norm, rules=domain.rules if tabular else None, widest=domain.range if tabular else None,
            value_range=None if tabular else (domain.low, domain.high), classes=classes,
            positive_index=positive_index, model_spec=model_spec,
        ))
    return out


def joined(parts: list[sweep.Outcome], size: int, keep: int | None) -> sweep.Outcome:
    """The chunks' outcomes as one sweep's, points in chunk order; the ``keep`` most fragile examples of all."""
    first = parts[0]
    if len(parts) == 1:
        return first
    items = []
    for index, part in enumerate(parts):
        for local, example in part.examples.items():
            items.append((int(part.broken_at[local]), float(part.distance[local]), index * size + int(local), example))
    items.sort(key=lambda item: item[:3])  # as one sweep orders them: epsilon index, distance, position
    if keep is not None:
        del items[keep:]
    return dataclasses.replace(
        first,
        broken_at=np.concatenate([p.broken_at for p in parts]),
        distance=np.concatenate([p.distance for p in parts]),
        examples={position: example for _, _, position, example in items},
        attacked=tuple(int(sum(counts)) for counts in zip(*(p.attacked for p in parts))),
        seconds=sum(p.seconds for p in parts),
    )
