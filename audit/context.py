"""What every check reads: the validated spec, the data, the model and the one set of predictions.

The runner builds one :class:`AuditContext`, predicting once; checks read it and never predict
the whole data set again (explanations and attacks run the model on their own inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

    from audit.config import AuditConfig
    from audit.feature_values import FeatureValues
    from audit.models import ModelAdapter
    from audit.results import Reason


@dataclass(frozen=True)
class EncodedColumn:
    """One column of the model's input tensor and the source column it came from."""

    name: str
    source: str


@dataclass(frozen=True)
class AuditData:
    """The evaluation data, ready for the model and for grouping.

    ``labels`` are class indices into ``classes`` (model-output order). ``features`` is the
    exact tensor the model was trained on (None for predictions-only audits). ``sensitive``
    holds the sensitive columns as strings, one row per example, aligned with ``labels``.
    ``frame`` keeps the filtered, sampled source rows (predictions-only audits read their
    decision and score columns from it). ``row_ids`` (int64) names each row by its position in
    the data as read, before filter and sampling, counted across files in sorted order: the
    costly checks sample by it (:mod:`audit.sampling`), so every sharding picks the same rows.

    ``weights`` is None when every entry is one row (the local, in-memory run). A sharded run
    holds the merged summary instead: one entry per distinct row (sensitive values, label,
    predictions) and in ``weights`` how many rows it stands for, so the driver's memory grows
    with the distinct rows, not the rows. The fairness, performance and data checks read
    every entry with its weight; ``n`` is the number of rows either way.
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    positive_index: int | None
    sensitive: pd.DataFrame
    features: "torch.Tensor | None"
    columns: tuple[EncodedColumn, ...] = ()
    frame: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    row_ids: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Rows audited: the entries, or the sum of their weights."""
        return int(self.labels.shape[0]) if self.weights is None else int(self.weights.sum())

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2


@dataclass(frozen=True)
class Predictions:
    """The model's predictions, computed once.

    ``decisions``: predicted class indices, shape (n,). ``probabilities``: shape (n, classes),
    rows summing to 1, or None when the model gives only decisions or an uncalibrated score.
    ``scores``: binary only, a ranking score for the positive class (the positive probability
    when probabilities exist), or None.
    """

    decisions: np.ndarray
    probabilities: np.ndarray | None
    scores: np.ndarray | None


@dataclass(frozen=True)
class AuditContext:
    config: "AuditConfig"
    data: AuditData
    predictions: Predictions
    model: "ModelAdapter | None" = None
    warnings: list[str] = field(default_factory=list)
    artefacts: list = field(default_factory=list)  # audit.results.Artefact
    skipped: dict[str, str] = field(default_factory=dict)  # check -> audit.results.Reason code
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of the parts of a check worth naming (each explanation method), for provenance."""
    shared: dict[str, Any] = field(default_factory=dict)
    """What one check computes and another reads, computed once (the counterfactual swaps' new
    scores, which the text highlights read): keyed by the computing function's name."""
    rows: "AuditContext | None" = None
    """Sharded runs: the candidate rows the costly checks may pick, with features (see row_view)."""

    feature_table: "FeatureValues | None" = None
    """Sharded runs: the whole data's per-column value counts, merged from every batch."""

    def feature_values(self) -> "FeatureValues | None":
        """The whole data's features as per-column value counts (baselines, attack domains; None for text).

        Local runs count the feature tensor; sharded runs merged the same table batch by batch,
        so statistics computed from it (:mod:`audit.feature_values`) agree to the last bit.
        """
        if self.feature_table is not None:
            return self.feature_table
        from audit import feature_values

        return feature_values.of(self.data.features, self.config.data.kind)

    def row_view(self) -> "AuditContext":
        """The rows explanations and attacks read: the whole data locally, the candidate rows when sharded.

        A sharded run's ``data`` holds distinct rows and counts without features; the rows the
        costly checks may sample were kept whole, per batch, and merged (audit.scale.rows).
        """
        return self if self.rows is None else self.rows

    def warn(self, message: str) -> None:
        """Record something the reader must know that does not stop the audit."""
        self.warnings.append(message)

    def skip(self, check: str, reason: "Reason", message: str) -> None:
        """Record that ``check`` measured nothing, why as a code (for renderers) and a sentence (for readers)."""
        self.skipped[check] = reason.value  # plain text: an Enum member hashes by its name, not its value
        self.warn(message)

    def illustrate(self, measurement, data: dict[str, Any]) -> None:
        """Keep a figure for ``measurement`` in the result's artefacts, beside (not inside) it."""
        from audit.results import Artefact, artefact_key

        self.artefacts.append(Artefact(measurement.check, measurement.metric, artefact_key(measurement), data))

    @property
    def seed(self) -> int:
        return self.config.seed
