"""One batch of a sharded run as the checks' rows: filtered, encoded and scored as the local loaders do.

Each kind (tabular, image NPZ, text) has one function that turns a batch of source rows into
an :class:`~audit.context.AuditData` and its :class:`~audit.context.Predictions`, reusing the
local loaders' pieces (labels, sensitive columns, feature encoding, tokenizer), so a shard's
rows are encoded exactly as the whole file would be: encodings use the spec's training
statistics, never the batch's own. Group rules that need the whole data (``max_groups``,
reference groups, identity groups never mentioned) are judged once, after the merge.

``facts`` are the integers a data summary reports (texts cut by the tokenizer, tokens,
identity mentions): added across batches, so the merged value equals the whole-data one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from audit import data as data_layer
from audit.config import AuditConfig, NumericFeature
from audit.context import AuditData, Predictions
from audit.errors import DataError
from audit.models import predictions_from_columns, predictions_from_outputs

if TYPE_CHECKING:
    from audit.models import ModelAdapter


@dataclass(frozen=True)
class Batch:
    """Source rows of one batch: ``frame`` (image shards: their metadata rows) and each row's id."""

    frame: pd.DataFrame
    row_ids: np.ndarray
    images: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """Rows read into this batch, before the filter."""
        return len(self.frame) if self.images is None else len(self.images)


@dataclass(frozen=True)
class Scored:
    """A batch's rows after filter, encoding and prediction, with the counts its summary reports."""

    data: AuditData
    predictions: Predictions
    rows_read: int
    facts: dict[str, int] = field(default_factory=dict)


def score_batch(config: AuditConfig, batch: Batch, model: "ModelAdapter | None") -> Scored:
    """Filter, encode and predict one batch of any data kind."""
    data, facts = batch_rows(config, batch, model)
    if model is None:
        predictions = predictions_from_columns(data, config.model, dict(config.data.label.map))
    elif data.n == 0:
        predictions = _no_predictions(len(data.classes), data.is_binary)
    else:
        size = model.static_batch or config.model.batch_size
        outputs = model.slot_outputs(data.features, data.row_ids, slots=size)
        predictions = predictions_from_outputs(outputs, data, config.model)
    return Scored(data, predictions, rows_read=batch.rows, facts=facts)


def batch_rows(config: AuditConfig, batch: Batch, model: "ModelAdapter | None" = None) -> tuple[AuditData, dict[str, int]]:
    """One batch's rows filtered and encoded, not predicted (text: token ids only with a model)."""
    if config.data.kind == "image":
        return _image_rows(config, batch)
    if config.data.kind == "text":
        return _text_rows(config, _filtered(config, batch), model)
    return _tabular_rows(config, _filtered(config, batch)), {}


def _no_predictions(classes: int, binary: bool) -> Predictions:
    return Predictions(np.zeros(0, dtype=np.int64), np.zeros((0, classes)), np.zeros(0) if binary else None)


def _filtered(config: AuditConfig, batch: Batch) -> Batch:
    """The batch's rows the spec's filter keeps (a batch may keep none; the whole data is judged after the merge)."""
    frame = batch.frame.reset_index(drop=True)
    try:
        kept = data_layer._apply_filter(frame, config.data.filter)
    except DataError as exc:
        if "keeps no rows" in exc.message:
            kept = frame.iloc[:0]
        else:
            raise
    return Batch(kept.reset_index(drop=True), batch.row_ids[kept.index.to_numpy()])


def _open_sensitive(config: AuditConfig, frame: pd.DataFrame) -> pd.DataFrame:
    # group limits and reference groups are judged once on the merged summary, not per batch
    specs = [s.model_copy(update={"reference": None}) for s in config.data.sensitive]
    return data_layer.build_sensitive(frame, specs, max_groups=np.iinfo(np.int64).max)


def _common(config: AuditConfig, frame: pd.DataFrame, labels: np.ndarray, sensitive: pd.DataFrame, **rest) -> AuditData:
    label = config.data.label
    return AuditData(
        labels=labels,
        classes=label.class_names,
        positive_index=label.binary_positive_index,
        sensitive=sensitive,
        frame=frame,
        **rest,
    )


def _tabular_rows(config: AuditConfig, batch: Batch) -> AuditData:
    spec, model = config.data, config.model
    frame = batch.frame
    features = data_layer._feature_list(spec) if model.kind != "predictions" else []
    needed = [spec.label.column] + [s.read_from for s in spec.sensitive] + [f.name for f in features]
    needed += [c for c in (model.decision_column, model.score_column) if c and model.kind == "predictions"]
    data_layer.require_columns(frame, needed, spec.path)
    if features:
        frame = data_layer._compact(frame, keep={f.name for f in features if isinstance(f, NumericFeature)})
    tensor, columns = data_layer.encode_features(frame, features)
    labels = data_layer.encode_labels(frame[spec.label.column], spec.label, where=f"column '{spec.label.column}'")
    return _common(config, frame, labels, _open_sensitive(config, frame), features=tensor, columns=columns,
                   row_ids=batch.row_ids)


def _image_rows(config: AuditConfig, batch: Batch) -> tuple[AuditData, dict[str, int]]:
    spec = config.data
    images = data_layer._to_nchw(batch.images, spec.layout)
    if len(images) != len(batch.labels):
        raise DataError(f"{len(images)} images but {len(batch.labels)} labels", hint="give one label per image")
    data_layer._check_values(images, spec.value_range)
    labels = data_layer._image_labels(batch.labels, spec.label, where=f"labels in {spec.path}")
    data = _common(config, batch.frame, labels, _open_sensitive(config, batch.frame), features=data_layer._tensor(images),
                   row_ids=batch.row_ids)
    return data, {}


def _text_rows(config: AuditConfig, batch: Batch, model) -> tuple[AuditData, dict[str, int]]:
    from audit.text import identity
    from audit.text.data import checked_texts

    spec, frame = config.data, batch.frame
    data_layer.require_columns(frame, [spec.text_column, spec.label.column] + [s.column for s in spec.sensitive], spec.path)
    texts = checked_texts(frame[spec.text_column], spec.text_column)
    labels = data_layer.encode_labels(frame[spec.label.column], spec.label, where=f"column '{spec.label.column}'")
    encoded = model.tokenizer.encode(texts) if texts and model is not None else None
    found = identity.mentions(texts, spec.identity)
    # every group gets its column here; a group no batch mentions is dropped after the merge
    mentions = pd.DataFrame({
        f"{identity.MENTIONS_PREFIX}{group}": pd.Categorical(np.where(hits, identity.YES, identity.NO),
                                                              categories=[identity.NO, identity.YES])
        for group, hits in found.items()
    }, index=pd.RangeIndex(len(frame)))
    sensitive = pd.concat([_open_sensitive(config, frame), mentions], axis=1)
    # every batch's ids at the one fixed width they are predicted with, so candidates concatenate
    ids = model.fixed_shape(encoded.ids) if encoded is not None else None
    data = _common(config, frame, labels, sensitive, features=ids, row_ids=batch.row_ids)
    facts = {
        "texts": len(texts),
        "truncated": int(encoded.truncated.sum()) if encoded is not None else 0,
        "tokens": int(encoded.lengths.sum()) if encoded is not None else 0,
    }
    facts |= {f"mentions:{group}": int(hits.sum()) for group, hits in found.items()}
    return data, facts
