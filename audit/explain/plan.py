"""What the explanations check explains: methods, rows, target classes and references.

Rows: one seeded sample of ``rows`` rows for the global and per-group figures; a costly
method (exact Shapley values, KernelExplainer, LIME...) explains only its first
``costly_rows``, which are themselves a sample, so every method's rows are nested and two
methods can be compared on the rows they share. Local explanations add chosen rows: the most
confidently wrong predictions, the least certain ones, the spec's row ids and, for images, one
correctly classified example per class. Every pick is an order statistic of the row ids
(:mod:`audit.sampling`): the sample is the rows with the smallest seeded hashes, in hash
order, and ties among chosen rows go to the smaller row id, so a sharded run picks the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit import sampling
from audit.explain import registry
from audit.explain.attribution import FeatureLayout, occlusion_window
from audit.explain.model import ExplainedModel

if TYPE_CHECKING:
    from audit.config import ExplanationsCheck
    from audit.context import AuditContext

BACKGROUND_ROWS = sampling.BACKGROUND_ROWS
CLASS_EXAMPLES = 12
"""Images: at most this many classes get an example heatmap."""


@dataclass(frozen=True)
class LocalRow:
    row: int
    reason: str  # "worst error", "least certain", "requested", "class example"


@dataclass(frozen=True)
class Plan:
    layout: FeatureLayout
    methods: tuple[str, ...]
    sample: np.ndarray  # rows for the global and per-group figures, in sampled order
    caps: dict[str, int]  # rows of ``sample`` each method explains
    local: tuple[LocalRow, ...]
    targets: np.ndarray  # the explained class of every data row
    baseline: torch.Tensor
    background: torch.Tensor
    explains: str
    positive_output: str | None  # binary: "the log-odds of '>50K'", what signed attributions move

    def rows_for(self, method: str) -> np.ndarray:
        """The rows a method explains: its share of the sample, then the local rows."""
        head = self.sample[: self.caps[method]]
        extra = [r.row for r in self.local if r.row not in set(head.tolist())]
        return np.concatenate([head, np.array(sorted(set(extra)), dtype=np.int64)]).astype(np.int64)


def layout_for(ctx: "AuditContext") -> FeatureLayout:
    data = ctx.data
    if ctx.config.data.kind == "tabular":
        return FeatureLayout.tabular(data.columns)
    shape = tuple(int(s) for s in data.features.shape[1:])
    return FeatureLayout.image(shape, patch=occlusion_window(shape[1], shape[2]))


def methods_for(config: "ExplanationsCheck", model: ExplainedModel, layout: FeatureLayout) -> tuple[str, ...]:
    groups = int(layout.units.max()) + 1
    chosen = config.methods or registry.defaults(kind=layout.kind, model=model, groups=groups)
    return tuple(dict.fromkeys(chosen))


def make_plan(ctx: "AuditContext", model: ExplainedModel) -> Plan:
    config = ctx.config.checks.explanations
    layout = layout_for(ctx)
    methods = methods_for(config, model, layout)
    row_ids = sampling.ids_of(ctx.data)
    sample = sampling.sample(row_ids, ctx.seed, "explanations", config.rows)
    caps = {m: min(len(sample), config.costly_rows) if registry.get(m).costly else len(sample) for m in methods}
    background = sampling.sorted_sample(row_ids, ctx.seed, "background", BACKGROUND_ROWS)
    return Plan(
        layout=layout,
        methods=methods,
        sample=sample,
        caps=caps,
        local=local_rows(ctx, sample),
        targets=target_classes(ctx),
        baseline=baseline(ctx.data.features, config.baseline, layout.kind),
        background=ctx.data.features[torch.from_numpy(background)],
        explains=explained_output(ctx),
        positive_output=positive_output(ctx),
    )


def target_classes(ctx: "AuditContext") -> np.ndarray:
    """The class explained for every row, from ``checks.explanations.target``."""
    target = ctx.config.checks.explanations.target
    data = ctx.data
    if target == "predicted":
        return ctx.predictions.decisions.astype(np.int64)
    if target == "label":
        return data.labels.astype(np.int64)
    return np.full(data.n, class_index(target, data.classes, data.positive_index), dtype=np.int64)


def class_index(target: int | str, classes: tuple[str, ...], positive_index: int | None) -> int:
    """A fixed target as a class index; the spec was validated, so it is in range."""
    if target == "positive":
        return int(positive_index)
    if isinstance(target, int):
        return target
    return [str(c) for c in classes].index(str(target))


def explained_output(ctx: "AuditContext") -> str:
    """What the attributions are in units of, for the report."""
    data, spec = ctx.data, ctx.config.model
    if data.is_binary:
        return f"{positive_output(ctx)} (mirrored for rows explained toward '{data.classes[1 - data.positive_index]}')"
    return f"the {'probability' if spec.output == 'probabilities' else 'logit'} of the explained class"


def positive_output(ctx: "AuditContext") -> str | None:
    data = ctx.data
    if not data.is_binary:
        return None
    score = "probability" if ctx.config.model.output == "probabilities" else "log-odds"
    return f"the {score} of '{data.classes[data.positive_index]}'"


def baseline(features: torch.Tensor, kind: str, data_kind: str) -> torch.Tensor:
    """One reference input ``(1, *shape)``: the data's mean or median, or zeros.

    Tabular: per encoded column (a one-hot block's mean is each category's share). Images: per
    channel, the same value at every pixel (a flat image, not a blurred average digit).
    """
    if kind == "zeros":
        return torch.zeros((1, *features.shape[1:]))
    statistic = torch.mean if kind == "mean" else (lambda t, dim: torch.median(t, dim=dim).values)
    if data_kind == "tabular":
        return statistic(features.float(), 0).reshape(1, -1)
    per_channel = features.float().transpose(0, 1).reshape(features.shape[1], -1)
    value = statistic(per_channel, 1)
    return value.reshape(1, -1, *([1] * (features.dim() - 2))).expand(1, *features.shape[1:]).clone()


def local_rows(ctx: "AuditContext", sample: np.ndarray) -> tuple[LocalRow, ...]:
    """Rows for local explanations, each once, with why it was chosen (requested ones by row id)."""
    config = ctx.config.checks.explanations.local
    chosen: dict[int, str] = {}
    for row in worst_errors(ctx, config.worst_errors):
        chosen.setdefault(row, "worst error")
    for row in least_certain(ctx, config.least_certain, exclude=set(chosen)):
        chosen.setdefault(row, "least certain")
    for row in requested_rows(ctx, config.ids):
        chosen.setdefault(row, "requested")
    if ctx.config.data.kind == "image":
        for row in class_examples(ctx, sample):
            chosen.setdefault(row, "class example")
    return tuple(LocalRow(row, reason) for row, reason in chosen.items())


def requested_rows(ctx: "AuditContext", ids: list[int]) -> list[int]:
    """Positions of the requested row ids, in the spec's order; ids not in the data are left out."""
    row_ids = sampling.ids_of(ctx.data)
    found = np.flatnonzero(np.isin(row_ids, np.asarray(ids, dtype=np.int64)))
    where = {int(row_ids[p]): int(p) for p in found}
    return [where[int(i)] for i in ids if int(i) in where]


def worst_errors(ctx: "AuditContext", count: int) -> list[int]:
    """The wrong predictions made with the highest confidence in the predicted class (ties: smaller row id)."""
    found = sampling.worst_errors(sampling.ids_of(ctx.data), ctx.data.labels, ctx.predictions.decisions,
                                  ctx.predictions.probabilities, count)
    return found.tolist()


def least_certain(ctx: "AuditContext", count: int, *, exclude: set[int]) -> list[int]:
    """The predictions closest to the decision boundary (threshold; or top two classes; ties: smaller row id)."""
    probabilities = ctx.predictions.probabilities
    if count == 0 or probabilities is None:
        return []
    data = ctx.data
    margin = sampling.margins(probabilities, positive_index=data.positive_index if data.is_binary else None,
                              threshold=ctx.config.model.threshold)
    return sampling.least_certain(sampling.ids_of(data), margin, count, exclude=np.array(sorted(exclude), dtype=np.int64)).tolist()


def class_examples(ctx: "AuditContext", sample: np.ndarray) -> list[int]:
    """For images: the first correctly classified sampled row of each class (at most a dozen classes)."""
    decisions, labels = ctx.predictions.decisions, ctx.data.labels
    found: dict[int, int] = {}
    for row in sample.tolist():
        label = int(labels[row])
        if decisions[row] == label and label not in found and len(found) < CLASS_EXAMPLES:
            found[label] = row
    return [found[c] for c in sorted(found)]
