"""Open sharded data without running the audit: what ``rai-audit validate --data`` reads.

Every shard is listed and read batch by batch, as a sharded run reads it (the same reader, the
same filter, label, sensitive-column and feature encoding), but nothing is predicted and nothing
is kept but counts and the distinct combinations of sensitive values: memory is bounded by one
batch and the groups, never the rows. The whole-data group rules (``max_groups``, reference
groups, bin order) are then applied to the distinct groups as the run applies them to its merged
summary, so a threshold naming a group that no shard holds is refused as the local
``validate --data`` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from audit.config import AuditConfig
from audit.models import predictions_from_columns
from audit.scale import engine
from audit.scale.batches import batch_rows


@dataclass(frozen=True)
class Opened:
    """What reading every shard found: row counts and the groups (one row per distinct combination)."""

    rows_read: int
    rows_used: int
    shards: int
    groups: pd.DataFrame


def open_shards(config: AuditConfig) -> Opened:
    """Read every shard of a sharded spec; raise DataError for a shard the run could not read."""
    spec = config.data
    shards = engine.list_shards(spec)
    if spec.kind == "text":
        from audit.text.tokens import load_tokenizer

        load_tokenizer(config)  # as the local validate: the tokenizer must load (texts are not encoded)
    size = config.engine.batch_rows or engine.DEFAULT_BATCH_ROWS
    groups, read, used = None, 0, 0
    for shard in shards:
        for batch in engine.read_batches(spec, shard, size):
            data, _ = batch_rows(config, batch)
            if config.model.kind == "predictions":  # the decision and score columns are read as the run reads them
                predictions_from_columns(data, config.model, dict(spec.label.map))
            read += batch.rows
            used += data.n
            groups = _distinct(data.sensitive if groups is None else pd.concat([groups, data.sensitive], ignore_index=True))
    engine.require_rows(spec, used)
    restored = engine._restore_groups(groups.reset_index(drop=True), spec, config.checks.fairness.max_groups)
    return Opened(rows_read=read, rows_used=used, shards=len(shards), groups=restored)


def _distinct(sensitive: pd.DataFrame) -> pd.DataFrame:
    """The distinct combinations, values as text (as a summary's keys hold them)."""
    return sensitive.astype(str).drop_duplicates(ignore_index=True)
