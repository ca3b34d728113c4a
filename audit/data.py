"""Load the evaluation data and build exactly the tensor the model was trained on.

Tabular data (CSV, Parquet) and images (NPZ, NPY) both end as one :class:`AuditData`: labels
as class indices, the sensitive columns as strings (missing values form their own group), the
encoded feature tensor and, per encoded column, the source column it came from.
"""

from __future__ import annotations

import difflib
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from audit.config import (
    AuditConfig,
    CategoricalFeature,
    CsvOptions,
    ImageData,
    LabelSpec,
    NumericFeature,
    SampleSpec,
    SensitiveSpec,
    TabularData,
    load_features_file,
)
from audit.context import AuditData, EncodedColumn
from audit.errors import ConfigError, DataError
from audit.filters import apply_filter

if TYPE_CHECKING:
    import torch

MISSING_GROUP = "(missing)"
OUTSIDE_BINS = "(outside bins)"


def load_data(config: AuditConfig) -> AuditData:
    """Read the data the spec names; raise :class:`DataError` naming the problem and the fix."""
    spec = config.data
    if isinstance(spec, TabularData):
        return _load_tabular(spec, config)
    if spec.kind == "text":
        from audit.text.data import load_text_data

        return load_text_data(spec, config)
    return _load_images(spec, config.seed, config.checks.fairness.max_groups)


# ---------------------------------------------------------------- tabular


def _load_tabular(spec: TabularData, config: AuditConfig) -> AuditData:
    frame = read_table(spec)
    rows_read = len(frame)
    if rows_read == 0:
        raise DataError(f"{Path(spec.path).name} has no data rows (a header at most)", hint="point data.path at a file with rows")
    frame.index = pd.RangeIndex(rows_read)  # each row's position as read: its row id
    frame = _apply_filter(frame, spec.filter)
    rows_filtered = len(frame)
    frame = _sample(frame, spec.sample, config.seed)
    row_ids = frame.index.to_numpy(dtype=np.int64)
    frame = frame.reset_index(drop=True)
    needed = [spec.label.column] + [s.read_from for s in spec.sensitive]
    if config.model.kind == "predictions":
        needed += [c for c in (config.model.decision_column, config.model.score_column) if c]
    features = _feature_list(spec) if config.model.kind != "predictions" else []
    require_columns(frame, needed + [f.name for f in features], spec.path)
    frame = _compact(frame, keep={f.name for f in features if isinstance(f, NumericFeature)})
    labels = encode_labels(frame[spec.label.column], spec.label, where=f"column '{spec.label.column}'")
    tensor, columns = encode_features(frame, features)
    summary = {
        "source": spec.path,
        "format": _table_format(spec),
        "rows_read": rows_read,
        "rows_after_filter": rows_filtered,
        "rows_used": len(frame),
        "filter": spec.filter,
        "sample": None if spec.sample is None else spec.sample.model_dump(),
        "features": [f.name for f in features],
        "encoded_width": len(columns),
    }
    summary |= display_labels(spec.sensitive, features)
    return AuditData(
        labels=labels,
        classes=spec.label.class_names,
        positive_index=spec.label.binary_positive_index,
        sensitive=build_sensitive(frame, spec.sensitive, max_groups=config.checks.fairness.max_groups),
        features=tensor,
        columns=columns,
        frame=frame,
        summary=summary,
        row_ids=row_ids,
    )


def _table_format(spec: TabularData) -> str:
    if spec.format:
        return spec.format
    suffix = Path(spec.path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".txt", ".data", ".test", ".gz"}:
        return "csv"
    raise ConfigError(
        f"data.path: cannot tell the format of '{Path(spec.path).name}' from its suffix",
        hint="set data.format to csv or parquet",
    )


def read_table(spec: TabularData) -> pd.DataFrame:
    path = Path(spec.path)
    try:
        if _table_format(spec) == "parquet":
            return _read_parquet(path)
        return pd.read_csv(path, **csv_arguments(spec.csv))
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path.name}: {first}", hint="check data.format and data.csv") from None


def csv_arguments(options: CsvOptions) -> dict:
    """pandas.read_csv arguments for the spec's CSV options (the streaming reader shares them)."""
    return {
        "sep": options.sep,
        "header": 0 if options.header else None,
        "names": options.names,
        "skiprows": options.skiprows,
        "na_values": options.na_values or None,
        "keep_default_na": options.keep_default_na,
        "skipinitialspace": options.skipinitialspace,
        "low_memory": False,
    }


def _compact(frame: pd.DataFrame, *, keep: set[str]) -> pd.DataFrame:
    """Text columns as categoricals (but those in ``keep``, declared numeric: their errors name the text).

    The frame lives through the whole audit (proxies, local explanations, prediction columns)
    and beside the feature tensor while it is built: a small code a row per column instead of
    a string each is 130 MB less at 1,000,000 Adult rows. Values and missing values are unchanged.
    """
    text = [c for c in frame.columns if c not in keep and pd.api.types.is_string_dtype(frame[c])
            and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not text:
        return frame
    compact = frame.astype({c: "category" for c in text})
    _release_arrow_memory()
    return compact


def _release_arrow_memory() -> None:
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def _read_parquet(path: Path) -> pd.DataFrame:
    """The table as pandas; then give Arrow's decoding buffers back (at 1M Adult rows, 90 MB held)."""
    frame = pd.read_parquet(path)
    _release_arrow_memory()
    return frame


def _apply_filter(frame: pd.DataFrame, expression: str | None) -> pd.DataFrame:
    if not expression:
        return frame
    kept = apply_filter(frame, expression)
    if len(kept) == 0:
        raise DataError(f"data.filter {_short_text(expression)!r} keeps no rows", hint="loosen the filter")
    return kept


def _short_text(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sample(frame: pd.DataFrame, sample: SampleSpec | None, seed: int) -> pd.DataFrame:
    return frame if sample is None else frame.iloc[_sample_positions(len(frame), sample, seed)]


def require_columns(frame: pd.DataFrame, names: list[str], path: str | Path) -> None:
    present = [str(c) for c in frame.columns]
    for name in names:
        if name not in frame.columns:
            close = difflib.get_close_matches(name, present, n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "check the spelling"
            shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "")
            raise DataError(f"column '{name}' not found in {Path(path).name} (columns: {shown})", hint=hint)


def _feature_list(spec: TabularData) -> list[NumericFeature | CategoricalFeature]:
    if spec.features is not None:
        return list(spec.features)
    return load_features_file(Path(spec.features_file))


# ---------------------------------------------------------------- labels and sensitive columns


def as_strings(values: pd.Series) -> pd.Series:
    """Values as strings, integral floats without '.0', missing values as None.

    CSV readers turn an integer column with a gap into floats; '1.0' must still match a
    declared class or category 1.
    """
    series = pd.Series(values).reset_index(drop=True)
    if isinstance(series.dtype, pd.CategoricalDtype):
        # each category once, then by code: pandas converts a categorical row by row
        names = as_strings(pd.Series(series.cat.categories)).to_numpy(dtype=object)
        codes = series.cat.codes.to_numpy()
        return pd.Series(np.where(codes >= 0, names[np.maximum(codes, 0)], None), dtype=object)
    missing = series.isna().to_numpy()
    if pd.api.types.is_float_dtype(series) and np.all(np.mod(series[~missing], 1) == 0):
        text = series.fillna(0).astype(np.int64).astype(str)
    else:
        text = series.astype(str)
    return text.where(~missing, None)


def encode_labels(values: pd.Series | np.ndarray, label: LabelSpec, *, where: str) -> np.ndarray:
    text = as_strings(pd.Series(values))
    if text.isna().any():
        rows = np.flatnonzero(text.isna().to_numpy())[:5].tolist()
        raise DataError(
            f"{where}: {int(text.isna().sum())} missing label(s) (rows {rows})",
            hint="filter those rows out with data.filter",
        )
    mapping = {str(k): str(v) for k, v in label.map.items()}
    if mapping:
        codes, uniques = pd.factorize(text)  # map each distinct value once, not each row
        text = pd.Series(np.array([mapping.get(v, v) for v in uniques], dtype=object)[codes])
    classes = [str(c) for c in label.classes]
    codes = category_codes(text, classes)
    if (codes < 0).any():
        unknown = text[codes < 0].value_counts().head(5)
        found = ", ".join(f"{v!r} ({n} rows)" for v, n in unknown.items())
        raise DataError(
            f"{where}: label values {found} are not among the declared classes {classes}",
            hint="add them to label.classes, rewrite them with label.map, or filter them out",
        )
    return codes.astype(np.int64)


def category_codes(text: pd.Series, categories: list[str]) -> np.ndarray:
    """Index of each value in ``categories``; -1 for a value that is not there (or missing).

    Looks up each distinct value once: at 1,000,000 rows hashing every string is most of the cost.
    """
    codes, uniques = pd.factorize(text)
    lookup = np.append(pd.Index(categories).get_indexer(uniques), -1)  # code -1 (missing) -> -1
    return lookup[codes]


def build_sensitive(frame: pd.DataFrame, specs: list[SensitiveSpec], *, max_groups: int) -> pd.DataFrame:
    """One string column per sensitive attribute; missing values become their own group.

    A column with more than ``max_groups`` distinct values (an id, a raw age) is refused: its
    groups would be too small to mean anything, and the report would grow without bound.
    """
    columns = {}
    for spec in specs:
        distinct = frame[spec.read_from].nunique(dropna=False)
        if spec.bins is None and spec.map is None and distinct > max_groups:
            raise DataError(
                f"sensitive column '{spec.column}' has {distinct} distinct values, more than the limit of {max_groups}",
                hint="bin it (bins: [...]) or raise checks.fairness.max_groups",
            )
        values = frame[spec.read_from]
        if spec.bins is not None:
            columns[spec.column] = _binned(values, spec)
        else:
            columns[spec.column] = _labelled(_derived(values, spec), spec).fillna(MISSING_GROUP)
        _check_reference(columns[spec.column], spec)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _derived(values: pd.Series, spec: SensitiveSpec) -> pd.Series:
    """The attribute ``spec.map`` derives from a coded column (sex from personal status)."""
    text = as_strings(values)
    if spec.map is None:
        return text
    unmapped = sorted(set(text.dropna()) - set(spec.map))
    if unmapped:
        raise DataError(
            f"sensitive '{spec.column}': values {unmapped[:5]} of column '{spec.source}' are not in its map",
            hint="map every value of the source column (or filter those rows out)",
        )
    return text.map(spec.map, na_action="ignore")


def _labelled(values: pd.Series, spec: SensitiveSpec) -> pd.Series:
    """Coded values replaced by their display labels; unlisted values stay as they are."""
    if not isinstance(spec.labels, dict):
        return values
    return values.map(lambda v: spec.labels.get(v, v), na_action="ignore")


def display_labels(specs: list[SensitiveSpec], features: list) -> dict:
    """The raw values behind every display label and derived attribute, for result.json."""
    groups = {s.column: {label: raw for raw, label in s.labels.items()} for s in specs if isinstance(s.labels, dict)}
    derived = {s.column: {"source": s.source, "map": dict(s.map)} for s in specs if s.map is not None}
    categories = {f.name: {label: raw for raw, label in f.labels.items()}
                  for f in features if isinstance(f, CategoricalFeature) and f.labels}
    found = {"group_labels": groups, "derived_sensitive": derived, "category_labels": categories}
    return {key: value for key, value in found.items() if value}


def _check_reference(values: pd.Series, spec: SensitiveSpec) -> None:
    if spec.reference is None:
        return
    present = sorted(pd.unique(np.asarray(values, dtype=object)))
    if isinstance(spec.labels, dict) and spec.reference in spec.labels and spec.reference not in present:
        raise DataError(
            f"reference group {spec.reference!r} of sensitive column '{spec.column}' has a display label",
            hint=f"name the group as the report does: reference: {spec.labels[spec.reference]!r}",
        )
    if spec.reference not in present:
        shown = ", ".join(repr(v) for v in present[:10])
        raise DataError(
            f"reference group {spec.reference!r} not found in sensitive column '{spec.column}' (values: {shown})",
            hint="set reference to one of the column's values",
        )


def bin_labels(spec: SensitiveSpec) -> list[str]:
    """The group names of a binned sensitive column, in bin order."""
    return list(spec.labels or [f"[{lo:g}, {hi:g})" for lo, hi in zip(spec.bins, spec.bins[1:])])


def _binned(values: pd.Series, spec: SensitiveSpec) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").reset_index(drop=True)
    if numbers.isna().sum() > values.isna().sum():
        raise DataError(
            f"sensitive column '{spec.column}' has bins but holds non-numeric values",
            hint="remove bins for a categorical column",
        )
    labels = bin_labels(spec)
    # right=False: edges [0, 25, 45] give [0, 25) and [25, 45), as people read age bands
    binned = pd.cut(numbers, bins=spec.bins, labels=labels, right=False).astype(object)
    outside = binned.isna() & numbers.notna()
    binned[outside] = OUTSIDE_BINS
    # categorical, so groups list in bin order (<25, 25-44, ...) rather than alphabetically
    order = [*labels, OUTSIDE_BINS, MISSING_GROUP]
    return pd.Categorical(binned.fillna(MISSING_GROUP).astype(str), categories=order)


# ---------------------------------------------------------------- features


_FILL_ROWS = 8192


def encode_features(
    frame: pd.DataFrame, features: list[NumericFeature | CategoricalFeature]
) -> tuple[torch.Tensor | None, tuple[EncodedColumn, ...]]:
    """The model's input tensor (float32) and the source column of each of its columns."""
    if not features:
        return None, ()
    values, columns, starts, start = [], [], [], 0
    for feature in features:
        # kept compact until the fill: the float32 value each cell will hold, small-int codes
        if isinstance(feature, NumericFeature):
            values.append((_numeric(frame[feature.name], feature).astype(np.float32), False))
            names = [feature.name]
        else:
            codes, names = _categorical(frame[feature.name], feature)
            values.append((codes.astype(np.int32 if len(feature.categories) > 2**15 else np.int16), feature.encoding == "one_hot"))
        columns.extend(EncodedColumn(name, feature.name) for name in names)
        starts.append(start)
        start += len(names)
    # filled in place, a block of rows at a time (the block stays in cache): float64 blocks
    # and their concatenation would hold the data three times over
    matrix = np.zeros((len(frame), start), dtype=np.float32)
    for first in range(0, len(frame), _FILL_ROWS):
        block = matrix[first : first + _FILL_ROWS]
        rows = np.arange(len(block))
        for (column, one_hot), at in zip(values, starts):
            part = column[first : first + _FILL_ROWS]
            if one_hot:
                block[rows, at + part] = 1.0
            else:
                block[:, at] = part
    import torch  # here, not at the top: gate and compare import this module's names, never torch

    return torch.from_numpy(matrix), tuple(columns)


def _numeric(values: pd.Series, feature: NumericFeature) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad_text = np.isnan(numbers) & values.notna().to_numpy()
    if bad_text.any():
        examples = values[bad_text].astype(str).unique()[:3].tolist()
        raise DataError(
            f"feature '{feature.name}' is declared numeric but holds text such as {examples}",
            hint="declare it categorical, or clean the column",
        )
    bad = ~np.isfinite(numbers)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise DataError(
            f"feature '{feature.name}' has {int(bad.sum())} missing or infinite value(s) (rows {rows})",
            hint="impute them as in training, or drop those rows with data.filter",
        )
    if feature.encoding == "standardize":
        return (numbers - feature.mean) / feature.std
    if feature.encoding == "minmax":
        return (numbers - feature.min) / (feature.max - feature.min)
    return numbers


def _categorical(values: pd.Series, feature: CategoricalFeature) -> tuple[np.ndarray, list[str]]:
    """Each row's category index (validated) and the encoded column names."""
    text = as_strings(values)
    if text.isna().any():
        raise DataError(
            f"feature '{feature.name}' has {int(text.isna().sum())} missing value(s)",
            hint="map them to a declared category or drop those rows with data.filter",
        )
    categories = [str(c) for c in feature.categories]
    codes = category_codes(text, categories)
    if (codes < 0).any():
        unknown = text[codes < 0].value_counts().head(5)
        found = ", ".join(f"{v!r} ({n} rows)" for v, n in unknown.items())
        raise DataError(
            f"feature '{feature.name}' holds values {found} that are not among its categories",
            hint="the model never saw them: filter those rows or retrain with the new categories",
        )
    if feature.encoding == "ordinal":
        return codes, [feature.name]
    return codes, [f"{feature.name}={feature.labels.get(c, c)}" for c in categories]


# ---------------------------------------------------------------- images


def _load_images(spec: ImageData, seed: int, max_groups: int) -> AuditData:
    images, raw_labels = _read_arrays(spec)
    if images.size == 0 or len(images) == 0:
        raise DataError(f"{Path(spec.path).name} holds no images (array shape {list(images.shape)})", hint="point data.path at the evaluation images")
    images = _to_nchw(images, spec.layout)
    if len(images) != len(raw_labels):
        raise DataError(f"{len(images)} images but {len(raw_labels)} labels", hint="give one label per image")
    metadata = _read_metadata(spec, len(images))
    keep = _sample_positions(len(images), spec.sample, seed)
    rows_read = len(images)
    images, raw_labels = images[keep], raw_labels[keep]
    metadata = metadata.iloc[keep].reset_index(drop=True) if metadata is not None else pd.DataFrame(index=range(len(keep)))
    _check_values(images, spec.value_range)
    labels = _image_labels(raw_labels, spec.label, where=f"labels in {Path(spec.path).name}")
    return AuditData(
        labels=labels,
        classes=spec.label.class_names,
        positive_index=spec.label.binary_positive_index,
        sensitive=build_sensitive(metadata, spec.sensitive, max_groups=max_groups),
        features=_tensor(images),
        frame=metadata,
        summary={
            "source": spec.path,
            "format": Path(spec.path).suffix.lstrip("."),
            "rows_read": rows_read,
            "rows_used": int(len(keep)),
            "image_shape": list(images.shape[1:]),
            "value_range": list(spec.value_range),
            "metadata": spec.metadata,
        },
        row_ids=keep.astype(np.int64),
    )


def _tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(images))


def _image_labels(raw: np.ndarray, label: LabelSpec, *, where: str) -> np.ndarray:
    """Integer labels index ``classes`` when the classes are names (the usual NPZ layout);
    with integer classes they are the class values themselves."""
    named = not all(isinstance(c, int) for c in label.classes)
    if not (named and np.issubdtype(raw.dtype, np.integer)):
        return encode_labels(pd.Series(raw), label, where=where)
    outside = (raw < 0) | (raw >= len(label.classes))
    if outside.any():
        raise DataError(
            f"{where}: integer labels index label.classes (0 to {len(label.classes) - 1}), "
            f"but {int(outside.sum())} are outside, e.g. {raw[outside][:3].tolist()}",
            hint="list every class in model-output order, or store the class names instead",
        )
    return raw.astype(np.int64)


def _read_arrays(spec: ImageData) -> tuple[np.ndarray, np.ndarray]:
    path = Path(spec.path)
    try:
        if path.suffix.lower() == ".npz":
            # our own handle: np.load leaves its file open when the archive is truncated
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
                for key in (spec.images_key, spec.labels_key):
                    if key not in archive.files:
                        raise DataError(
                            f"{path.name} has no array '{key}' (arrays: {', '.join(archive.files)})",
                            hint="set data.images_key and data.labels_key",
                        )
                return archive[spec.images_key], archive[spec.labels_key]
        if spec.labels_path is None:
            raise ConfigError("data.labels_path is required when data.path is a .npy of images")
        return np.load(path, allow_pickle=False), np.load(spec.labels_path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle, which we never allow for data
        raise DataError(f"cannot read {path.name}: {exc}", hint="save plain numeric arrays") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # a truncated or corrupted file
        raise DataError(
            f"cannot read {path.name}: the file is truncated or corrupted ({type(exc).__name__}: {str(exc)[:120]})",
            hint="copy or save the arrays again (numpy.savez)",
        ) from None


def _to_nchw(images: np.ndarray, layout: str) -> np.ndarray:
    expected = 3 if layout == "NHW" else 4
    if images.ndim != expected:
        raise DataError(
            f"images have shape {list(images.shape)}, which does not fit layout {layout}",
            hint="set data.layout to NCHW, NHWC or NHW",
        )
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"images have dtype {images.dtype}, not numbers")
    if layout == "NHW":
        images = images[:, None]
    elif layout == "NHWC":
        images = images.transpose(0, 3, 1, 2)
    return images.astype(np.float32)


def _check_values(images: np.ndarray, value_range: tuple[float, float]) -> None:
    if not np.isfinite(images).all():
        raise DataError(f"{int((~np.isfinite(images)).sum())} image values are NaN or infinite")
    low, high = value_range
    found = (float(images.min()), float(images.max()))
    if found[0] < low or found[1] > high:
        raise DataError(
            f"image values span [{found[0]:g}, {found[1]:g}], outside the declared value_range [{low:g}, {high:g}]",
            hint="rescale the images or declare the range they use",
        )


def _read_metadata(spec: ImageData, count: int) -> pd.DataFrame | None:
    if spec.metadata is None:
        return None
    try:
        metadata = pd.read_csv(spec.metadata)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read metadata {Path(spec.metadata).name}: {exc}") from None
    if len(metadata) != count:
        raise DataError(
            f"metadata {Path(spec.metadata).name} has {len(metadata)} rows for {count} images",
            hint="give one metadata row per image, in the same order",
        )
    require_columns(metadata, [s.column for s in spec.sensitive], spec.metadata)
    return metadata


def _sample_positions(count: int, sample: SampleSpec | None, seed: int) -> np.ndarray:
    if sample is None:
        return np.arange(count)
    size = sample.n if sample.n is not None else int(round(sample.fraction * count))
    if size >= count:
        return np.arange(count)
    # sorted, so rows keep their file order
    rng = np.random.default_rng(seed if sample.seed is None else sample.seed)
    return np.sort(rng.choice(count, size=size, replace=False))
