"""Read a tabular spec's rows shard by shard, reduce each batch to a summary, merge, rebuild.

Two drivers share one batch function (:func:`summarize_batch`): the local streaming engine
reads the shards in this process, one batch of ``engine.batch_rows`` rows at a time; the Ray
engine hands the shards (one Parquet row group or one CSV file each) to a Ray Data actor pool,
each actor reads its shard with the same reader, and only the summaries travel back. Both merge
the summaries (exact: integer counts of distinct rows) into the context the checks read: the
distinct rows weighted by their counts (``AuditData.weights``), never expanded into rows.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit import data as data_layer
from audit.config import AuditConfig, TabularData, is_glob
from audit.context import AuditContext, AuditData
from audit.errors import DataError
from audit.models import predictions_from_columns
from audit.scale import summaries
from audit.scale.summaries import Summary

DEFAULT_BATCH_ROWS = 65_536
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class Shard:
    """One unit of work: a whole CSV file, or one row group of a Parquet file."""

    path: str
    format: str
    row_group: int | None = None


def build_context(config: AuditConfig) -> AuditContext:
    """The context of a sharded run (``engine.kind: ray`` or local streaming)."""
    spec = config.data
    shards = list_shards(spec)
    if config.engine.kind == "ray":
        from audit.scale import ray_engine  # Ray is an optional extra: imported only when asked for

        parts = ray_engine.summaries(config, shards)
    else:  # a running merge: one batch and the running summary in memory, whatever the number of shards
        parts = (summarize_shard(config, shard) for shard in shards)
    merged = summaries.merge_stream(parts)
    return context_from_summary(config, merged, shards)


def summarize_shard(config: AuditConfig, shard: Shard) -> Summary:
    """Read one shard batch by batch and merge the batches' summaries."""
    batch_rows = config.engine.batch_rows or DEFAULT_BATCH_ROWS
    return summaries.merge_stream(summarize_batch(config, frame) for frame in read_batches(config.data, shard, batch_rows))


# ---------------------------------------------------------------- shards and batches


def list_shards(spec: TabularData) -> list[Shard]:
    """A file, a folder of files (a Parquet dataset, CSV parts) or a glob, in sorted order."""
    path = Path(spec.path)
    if is_glob(spec.path):
        files = sorted(Path(p) for p in glob.glob(spec.path))
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    else:
        files = [path]
    if not files:
        raise DataError(f"no data files in {spec.path}", hint="point data.path at a file, a folder of shards or a glob")
    shards: list[Shard] = []
    for file in files:
        shards.extend(_file_shards(file, _format(spec, file)))
    return shards


def _format(spec: TabularData, file: Path) -> str:
    if spec.format:
        return spec.format
    return "parquet" if file.suffix.lower() in PARQUET_SUFFIXES else "csv"


def _file_shards(file: Path, format: str) -> list[Shard]:
    if format == "csv":
        return [Shard(str(file), format)]
    import pyarrow.parquet as pq

    try:
        groups = pq.ParquetFile(file).num_row_groups
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {file.name}: {str(exc).strip().splitlines()[0]}", hint="check data.format") from None
    return [Shard(str(file), format, g) for g in range(groups)]


def read_batches(spec: TabularData, shard: Shard, batch_rows: int) -> Iterator[pd.DataFrame]:
    """The shard's rows as DataFrames of at most ``batch_rows`` rows, read as the local engine reads them."""
    try:
        if shard.format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(shard.path).iter_batches(batch_size=batch_rows, row_groups=[shard.row_group]):
                yield batch.to_pandas()
            return
        yield from pd.read_csv(shard.path, chunksize=batch_rows, **data_layer.csv_arguments(spec.csv))
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {Path(shard.path).name}: {first}", hint="check data.format and data.csv") from None


# ---------------------------------------------------------------- one batch


def summarize_batch(config: AuditConfig, frame: pd.DataFrame) -> Summary:
    """Filter, encode and score one batch exactly as the local engine does, and summarize it."""
    spec = config.data
    rows_read = len(frame)
    frame = _filtered(frame, spec.filter).reset_index(drop=True)
    model = config.model
    needed = [spec.label.column] + [s.column for s in spec.sensitive]
    needed += [c for c in (model.decision_column, model.score_column) if c]
    data_layer.require_columns(frame, needed, spec.path)
    # group limits and reference groups are judged once on the merged summary, not per batch
    open_specs = [s.model_copy(update={"reference": None}) for s in spec.sensitive]
    batch = AuditData(
        labels=data_layer.encode_labels(frame[spec.label.column], spec.label, where=f"column '{spec.label.column}'"),
        classes=tuple(str(c) for c in spec.label.classes),
        positive_index=spec.label.positive_index if len(spec.label.classes) == 2 else None,
        sensitive=data_layer.build_sensitive(frame, open_specs, max_groups=np.iinfo(np.int64).max),
        features=None,
        frame=frame,
    )
    predictions = predictions_from_columns(batch, model, dict(spec.label.map))
    return summaries.summarize(batch.sensitive, batch.labels, predictions, len(batch.classes), rows_read=rows_read)


def _filtered(frame: pd.DataFrame, expression: str | None) -> pd.DataFrame:
    try:
        return data_layer._apply_filter(frame, expression)
    except DataError as exc:
        # a batch may keep no rows; the whole data keeping none is judged after the merge
        if "keeps no rows" in exc.message:
            return frame.iloc[:0]
        raise


# ---------------------------------------------------------------- the merged context


def context_from_summary(config: AuditConfig, merged: Summary, shards: list[Shard]) -> AuditContext:
    """The context the checks read: the merged summary's distinct rows, weighted by their counts.

    Nothing is expanded into rows: ``ctx.data`` holds one entry per distinct row and
    ``weights`` its count, so the driver's memory is bounded by the distinct rows.
    """
    spec = config.data
    if merged.n == 0:
        raise DataError(f"data.filter {spec.filter!r} keeps no rows", hint="loosen the filter")
    # group rules and dtypes are settled on the distinct rows, which the checks then read as they are
    groups_of_keys = _restore_groups(merged.keys[list(merged.sensitive)], spec, config.checks.fairness.max_groups)
    sensitive, labels, predictions = summaries.entries(merged, groups_of_keys)
    data = AuditData(
        labels=labels,
        classes=tuple(str(c) for c in spec.label.classes),
        positive_index=spec.label.positive_index if len(spec.label.classes) == 2 else None,
        sensitive=sensitive,
        features=None,
        summary={
            "source": spec.path,
            "format": shards[0].format,
            "rows_read": merged.rows_read,
            "rows_after_filter": merged.rows_after_filter,
            "rows_used": merged.n,
            "filter": spec.filter,
            "sample": None,
            "features": [],
            "encoded_width": 0,
            "engine": config.engine.kind if config.engine.kind == "ray" else "local streaming",
            "shards": len(shards),
            "distinct_rows": int(merged.counts.size),
        },
        weights=merged.counts,
    )
    return AuditContext(config=config, data=data, predictions=predictions)


def _restore_groups(sensitive: pd.DataFrame, spec: TabularData, max_groups: int) -> pd.DataFrame:
    """Apply the whole-data group rules and give binned columns their bin order, as the local loader does."""
    plain = [s for s in spec.sensitive if s.bins is None]
    frame = data_layer.build_sensitive(sensitive, plain, max_groups=max_groups)
    for column_spec in spec.sensitive:
        if column_spec.bins is not None:
            order = [*data_layer.bin_labels(column_spec), data_layer.OUTSIDE_BINS, data_layer.MISSING_GROUP]
            frame[column_spec.column] = pd.Categorical(sensitive[column_spec.column].to_numpy(), categories=order)
            data_layer._check_reference(frame[column_spec.column], column_spec)
    return frame[[s.column for s in spec.sensitive]]
