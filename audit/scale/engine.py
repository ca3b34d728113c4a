"""Read a spec's rows shard by shard, reduce each batch to a summary, merge, rebuild.

Two drivers share one batch function (:func:`reduce_batch`): the local streaming engine
reads the shards in this process, one batch of ``engine.batch_rows`` rows at a time; the Ray
engine hands the shards (one Parquet row group, one CSV, JSON Lines or NPZ file each) to a Ray
Data actor pool, each actor loads the model once and reads its shards with the same reader,
and only the summaries travel back. Both merge the summaries (exact: integer counts of
distinct rows) into the context the checks read: the distinct rows weighted by their counts
(``AuditData.weights``), never expanded into rows. Model specs are predicted slot by row
id (:meth:`audit.models.ModelAdapter.slot_outputs`), so each row's outputs are the local run's
to the last bit whatever the sharding; the rows the costly checks may pick travel back whole
(:mod:`audit.scale.rows`).
"""

from __future__ import annotations

import dataclasses
import glob
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from audit import data as data_layer
from audit import feature_values, progress
from audit.config import AuditConfig, TabularData, is_glob
from audit.context import AuditContext, AuditData
from audit.errors import DataError
from audit.feature_values import FeatureValues
from audit.scale import rows as candidate_rows
from audit.scale import summaries
from audit.scale.batches import Batch, score_batch
from audit.scale.summaries import Summary

if TYPE_CHECKING:
    from audit.models import ModelAdapter

DEFAULT_BATCH_ROWS = 65_536
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True)
class Shard:
    """One unit of work: a whole CSV, JSON Lines or NPZ file, or one row group of a Parquet file.

    ``first_row`` is the row id of its first row (rows counted across shards in sorted order);
    an image shard's sensitive values are the rows of ``metadata`` from ``metadata_row`` on.
    """

    path: str
    format: str
    row_group: int | None = None
    first_row: int = 0
    metadata: str | None = None
    metadata_row: int = 0


@dataclass(frozen=True)
class Part:
    """What one shard sends back: its summary, the counts its data summary adds, its candidate rows."""

    summary: Summary
    facts: dict[str, int] = field(default_factory=dict)
    candidates: candidate_rows.Candidates | None = None
    forward_calls: int = 0
    features: FeatureValues | None = None


def build_context(config: AuditConfig) -> AuditContext:
    """The context of a sharded run (``engine.kind: ray`` or local streaming)."""
    shards = list_shards(config.data)
    model = None
    if config.model.kind != "predictions":
        with progress.task("loading model"):
            model = load_batch_model(config)  # here too: the costly checks and the model's description read it
    # reading, predicting and summarizing: the sharded run's "loading data" and "predicting" in one step
    # (no bar: Ray's pool reports no shard as it ends, so a count would move only locally)
    with progress.task("reading shards"):
        if config.engine.kind == "ray":
            from audit.scale import ray_engine  # Ray is an optional extra: imported only when asked for

            parts = ray_engine.parts(config, shards)
        else:
            parts = (summarize_shard(config, shard, model) for shard in shards)  # merged as they come
        total = merge_parts(config, parts)
    ctx = context_from_summary(config, total.summary, shards)
    if model is None:
        return ctx
    model.forward_calls = total.forward_calls
    ctx.data.summary.update(_model_summary(config, ctx, total, model))
    # the loader's warnings first, as the local run records them
    ctx = dataclasses.replace(ctx, model=model, warnings=list(ctx.data.summary.get("warnings", [])) + ctx.warnings)
    if total.candidates is not None:
        ctx = dataclasses.replace(ctx, feature_table=total.features)
        ctx = dataclasses.replace(ctx, rows=candidate_rows.view(ctx, total.candidates))
    return ctx


def _model_summary(config: AuditConfig, ctx: AuditContext, total: Part, model: "ModelAdapter") -> dict:
    """What the local loader's data summary says beyond the row counts, from the merged facts."""
    spec = config.data
    if spec.kind == "tabular":
        features = data_layer._feature_list(spec)
        width = sum(1 if getattr(f, "encoding", None) != "one_hot" else len(f.categories) for f in features)
        return {"features": [f.name for f in features], "encoded_width": width} | data_layer.display_labels(spec.sensitive, features)
    if spec.kind == "image":
        shape = _image_shape(spec, list_shards(spec)[0])
        return {"format": "npz", "image_shape": shape, "value_range": list(spec.value_range), "metadata": spec.metadata}
    from audit.text.data import identity_warnings

    facts = total.facts
    counts = {group: facts.get(f"mentions:{group}", 0) for group in spec.identity}
    text = {
        "column": spec.text_column,
        "tokenizer": model.tokenizer.path.name,
        "vocab_size": model.tokenizer.vocab_size,
        "max_length": spec.tokenizer.max_length,
        "truncation_side": spec.tokenizer.truncation_side,
        "padding": spec.tokenizer.padding,
        "truncated": facts.get("truncated", 0),
        "mean_tokens": facts.get("tokens", 0) / facts["texts"] if facts.get("texts") else 0.0,
        "identity_mentions": counts,
    }
    return {"text": text, "warnings": identity_warnings(counts, facts.get("texts", 0), spec.identity)}


def load_batch_model(config: AuditConfig) -> "ModelAdapter | None":
    """The model a batch is predicted with (None for a predictions-only spec); loaded once per process."""
    if config.model.kind == "predictions":
        return None
    from audit.models import load_model

    return load_model(config)


def summarize_shard(config: AuditConfig, shard: Shard, model: "ModelAdapter | None" = None) -> Part:
    """Read one shard batch by batch and merge the batches' parts."""
    batch_rows = config.engine.batch_rows or DEFAULT_BATCH_ROWS
    calls = model.forward_calls if model is not None else 0
    merged = merge_parts(config, (reduce_batch(config, batch, model) for batch in read_batches(config.data, shard, batch_rows)))
    return dataclasses.replace(merged, forward_calls=(model.forward_calls - calls) if model is not None else 0)


def merge_parts(config: AuditConfig, parts: Iterable[Part], *, fan_in: int = 16) -> Part:
    """Summaries and facts added, candidate rows merged and re-trimmed; ``fan_in`` parts held at once."""
    pending: list[Part] = []
    for part in parts:
        pending.append(part)
        if len(pending) >= fan_in:
            pending = [_merged(config, pending)]
    if not pending:
        raise ValueError("no parts to merge")
    return _merged(config, pending)


def _merged(config: AuditConfig, parts: list[Part]) -> Part:
    facts: dict[str, int] = {}
    for part in parts:
        for key, value in part.facts.items():
            facts[key] = facts.get(key, 0) + value
    return Part(
        summaries.merge(part.summary for part in parts),
        facts,
        candidate_rows.merge(config, [part.candidates for part in parts]),
        sum(part.forward_calls for part in parts),
        feature_values.merge(part.features for part in parts),
    )


# ---------------------------------------------------------------- shards and batches


def list_shards(spec) -> list[Shard]:
    """A file, a folder of files (a Parquet dataset, CSV or NPZ parts) or a glob, in sorted order."""
    files = _files(spec.path, image=spec.kind == "image")
    shards: list[Shard] = []
    first = 0
    for file in files:
        for shard, rows in _file_shards(file, _format(spec, file), spec):
            shards.append(dataclasses.replace(shard, first_row=first))
            first += rows
    if spec.kind == "image" and spec.metadata is not None:
        shards = _with_metadata(shards, spec.metadata, first)
    return shards


def _files(where: str, *, image: bool = False) -> list[Path]:
    path = Path(where)
    if is_glob(where):
        files = sorted(Path(p) for p in glob.glob(where))
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        files = [p for p in files if p.suffix.lower() == ".npz"] if image else files
    else:
        files = [path]
    if not files:
        raise DataError(f"no data files in {where}", hint="point data.path at a file, a folder of shards or a glob")
    return files


def _format(spec, file: Path) -> str:
    if spec.kind == "image":
        return "npz"
    if spec.format:
        return spec.format
    suffix = file.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    return "jsonl" if spec.kind == "text" and suffix in JSONL_SUFFIXES else "csv"


def _file_shards(file: Path, format: str, spec) -> list[tuple[Shard, int]]:
    """The file's shards and the rows each holds (row ids continue across files)."""
    try:
        if format == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(file).metadata
            return [(Shard(str(file), format, g), metadata.row_group(g).num_rows) for g in range(metadata.num_row_groups)]
        return [(Shard(str(file), format), _row_count(file, format, spec))]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pd.errors.ParserError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read {file.name}: {first}", hint="check data.format and data.csv") from None


def _row_count(file: Path, format: str, spec) -> int:
    """Rows in a CSV, JSON Lines or NPZ file: the offsets that make row ids global."""
    if format == "npz":
        with open(file, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            if spec.labels_key not in archive.files:
                raise DataError(f"{file.name} has no array '{spec.labels_key}' (arrays: {', '.join(archive.files)})",
                                hint="set data.images_key and data.labels_key")
            return len(archive[spec.labels_key])
    if format == "jsonl":
        with open(file, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    arguments = data_layer.csv_arguments(spec.csv) | {"usecols": [0], "chunksize": DEFAULT_BATCH_ROWS * 4}
    return sum(len(chunk) for chunk in pd.read_csv(file, **arguments))


def _with_metadata(shards: list[Shard], metadata: str, total: int) -> list[Shard]:
    """One metadata CSV for all images (rows in shard order), or one per NPZ shard (a folder or glob)."""
    files = _files(metadata)
    if len(files) == 1:
        return [dataclasses.replace(s, metadata=str(files[0]), metadata_row=s.first_row) for s in shards]
    if len(files) != len(shards):
        raise DataError(f"{len(files)} metadata files for {len(shards)} image shards",
                        hint="give one metadata CSV for all images, or one per .npz file (paired in sorted order)")
    return [dataclasses.replace(s, metadata=str(f), metadata_row=0) for s, f in zip(shards, files)]


def read_batches(spec, shard: Shard, batch_rows: int) -> Iterator[Batch]:
    """The shard's rows in batches of at most ``batch_rows``, read as the local engine reads them."""
    first = shard.first_row
    try:
        for batch in _raw_batches(spec, shard, batch_rows):
            count = batch.rows
            yield dataclasses.replace(batch, row_ids=np.arange(first, first + count, dtype=np.int64))
            first += count
    except (OSError, ValueError, pd.errors.ParserError, zipfile.BadZipFile, EOFError) as exc:
        text = str(exc).strip()
        raise DataError(f"cannot read {Path(shard.path).name}: {text.splitlines()[0] if text else type(exc).__name__}",
                        hint="check data.format and data.csv") from None


def _raw_batches(spec, shard: Shard, batch_rows: int) -> Iterator[Batch]:
    none = np.zeros(0, dtype=np.int64)
    if shard.format == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(shard.path).iter_batches(batch_size=batch_rows, row_groups=[shard.row_group]):
            yield Batch(batch.to_pandas().reset_index(drop=True), none)
    elif shard.format == "jsonl":
        with pd.read_json(shard.path, lines=True, dtype=False, chunksize=batch_rows) as reader:
            for frame in reader:
                yield Batch(frame.reset_index(drop=True), none)
    elif shard.format == "npz":
        yield from _image_batches(spec, shard, batch_rows)
    else:
        for frame in pd.read_csv(shard.path, chunksize=batch_rows, **data_layer.csv_arguments(spec.csv)):
            yield Batch(frame.reset_index(drop=True), none)


def _image_batches(spec, shard: Shard, batch_rows: int) -> Iterator[Batch]:
    with open(shard.path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        if spec.images_key not in archive.files:
            raise DataError(f"{Path(shard.path).name} has no array '{spec.images_key}' (arrays: {', '.join(archive.files)})",
                            hint="set data.images_key and data.labels_key")
        images, labels = archive[spec.images_key], archive[spec.labels_key]
    metadata = _metadata_rows(spec, shard, len(labels))
    for start in range(0, len(labels), batch_rows):
        frame = metadata.iloc[start : start + batch_rows].reset_index(drop=True)
        yield Batch(frame, np.zeros(0, dtype=np.int64), images[start : start + batch_rows], labels[start : start + batch_rows])


def _image_shape(spec, shard: Shard) -> list[int]:
    """(channels, height, width) of the first shard's images, as the image loader reports them."""
    with open(shard.path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        images = archive[spec.images_key]
    return list(data_layer._to_nchw(images[:1], spec.layout).shape[1:])


def _metadata_rows(spec, shard: Shard, count: int) -> pd.DataFrame:
    if shard.metadata is None:
        return pd.DataFrame(index=pd.RangeIndex(count))
    rows = pd.read_csv(shard.metadata, skiprows=range(1, shard.metadata_row + 1), nrows=count)
    if len(rows) != count:
        raise DataError(f"metadata {Path(shard.metadata).name} has too few rows for the images of {Path(shard.path).name}",
                        hint="give one metadata row per image, in the images' order")
    data_layer.require_columns(rows, [s.column for s in spec.sensitive], shard.metadata)
    return rows


# ---------------------------------------------------------------- one batch


def reduce_batch(config: AuditConfig, batch: Batch, model: "ModelAdapter | None" = None) -> Part:
    """Filter, encode, predict and summarize one batch; keep the rows the costly checks may pick."""
    scored = score_batch(config, batch, model)
    data = scored.data
    summary = summaries.summarize(data.sensitive, data.labels, scored.predictions, len(data.classes), rows_read=scored.rows_read)
    candidates = candidate_rows.keep(config, data, scored.predictions) if model is not None else None
    # the whole-data statistics of the costly checks (baselines, attack domains), exact and mergeable
    features = feature_values.of(data.features, config.data.kind) if candidates is not None else None
    return Part(summary, scored.facts, candidates, features=features)


def summarize_batch(config: AuditConfig, frame: pd.DataFrame) -> Summary:
    """The summary of one batch of a predictions-only spec's source rows."""
    return reduce_batch(config, Batch(frame, np.arange(len(frame), dtype=np.int64))).summary


# ---------------------------------------------------------------- the merged context


def require_rows(spec, used: int) -> None:
    """Refuse data whose filter kept no row of any shard."""
    if used == 0:
        raise DataError(f"data.filter {getattr(spec, 'filter', None)!r} keeps no rows", hint="loosen the filter")


def context_from_summary(config: AuditConfig, merged: Summary, shards: list[Shard]) -> AuditContext:
    """The context the checks read: the merged summary's distinct rows, weighted by their counts.

    Nothing is expanded into rows: ``ctx.data`` holds one entry per distinct row and
    ``weights`` its count, so the driver's memory is bounded by the distinct rows.
    """
    spec = config.data
    require_rows(spec, merged.n)
    # group rules and dtypes are settled on the distinct rows, which the checks then read as they are
    groups_of_keys = _restore_groups(merged.keys[list(merged.sensitive)], spec, config.checks.fairness.max_groups)
    sensitive, labels, predictions = summaries.entries(merged, groups_of_keys)
    data = AuditData(
        labels=labels,
        classes=spec.label.class_names,
        positive_index=spec.label.binary_positive_index,
        sensitive=sensitive,
        features=None,
        summary={
            "source": spec.path,
            "format": shards[0].format,
            "rows_read": merged.rows_read,
            "rows_after_filter": merged.rows_after_filter,
            "rows_used": merged.n,
            "filter": getattr(spec, "filter", None),
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
    return pd.concat([frame[[s.column for s in spec.sensitive]], _mention_columns(sensitive, spec)], axis=1)


def _mention_columns(sensitive: pd.DataFrame, spec) -> pd.DataFrame:
    """Text runs: the identity-mention columns of the groups some text mentions, as the text loader keeps them."""
    if spec.kind != "text":
        return pd.DataFrame(index=sensitive.index)
    from audit.text.identity import MENTIONS_PREFIX, NO, YES

    columns = [f"{MENTIONS_PREFIX}{group}" for group in spec.identity]
    return pd.DataFrame({c: pd.Categorical(sensitive[c].to_numpy(), categories=[NO, YES])
                         for c in columns if (sensitive[c] == YES).any()}, index=sensitive.index)
