"""Text data: a CSV, Parquet or JSON Lines file with a text column, labels and metadata.

The texts are tokenized once by the model's own tokenizer (the padded id tensor becomes
``AuditData.features``); metadata columns become sensitive columns as for tabular data, and
every identity group of the spec becomes one more, ``mentions:GROUP`` (yes / no), so the
fairness check measures identity-mention subgroups with the same rates and intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audit.config import AuditConfig, TextData
from audit.context import AuditData
from audit.data import _apply_filter, _sample, build_sensitive, encode_labels, read_table, require_columns
from audit.errors import DataError
from audit.text import identity
from audit.text.tokens import load_tokenizer


def load_text_data(spec: TextData, config: AuditConfig) -> AuditData:
    frame = _read(spec)
    rows_read = len(frame)
    frame.index = pd.RangeIndex(rows_read)  # each row's position as read: its row id
    frame = _apply_filter(frame, spec.filter)
    rows_filtered = len(frame)
    frame = _sample(frame, spec.sample, config.seed)
    row_ids = frame.index.to_numpy(dtype=np.int64)
    frame = frame.reset_index(drop=True)
    require_columns(frame, [spec.text_column, spec.label.column] + [s.column for s in spec.sensitive], spec.path)
    texts = checked_texts(frame[spec.text_column], spec.text_column)
    labels = encode_labels(frame[spec.label.column], spec.label, where=f"column '{spec.label.column}'")
    tokenizer = load_tokenizer(config)
    encoded = tokenizer.encode(texts)
    found = identity.mentions(texts, spec.identity)
    sensitive = build_sensitive(frame, spec.sensitive, max_groups=config.checks.fairness.max_groups)
    sensitive = pd.concat([sensitive, identity.mention_columns(found)], axis=1)
    summary = {
        "source": spec.path,
        "format": _format(spec),
        "rows_read": rows_read,
        "rows_after_filter": rows_filtered,
        "rows_used": len(frame),
        "filter": spec.filter,
        "sample": None if spec.sample is None else spec.sample.model_dump(),
        "text": _text_summary(spec, tokenizer, encoded, found),
        "warnings": _identity_warnings(found, spec.identity),
    }
    return AuditData(
        labels=labels,
        classes=spec.label.class_names,
        positive_index=spec.label.binary_positive_index,
        sensitive=sensitive,
        features=encoded.ids,
        frame=frame,
        summary=summary,
        row_ids=row_ids,
    )


def _format(spec: TextData) -> str:
    if spec.format:
        return spec.format
    return "jsonl" if Path(spec.path).suffix.lower() in {".jsonl", ".ndjson"} else "table"


def _read(spec: TextData) -> pd.DataFrame:
    if _format(spec) != "jsonl":
        return read_table(spec)
    try:
        return pd.read_json(spec.path, lines=True, dtype=False)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {Path(spec.path).name} as JSON Lines: {first}", hint="one JSON object per line") from None


def checked_texts(values: pd.Series, column: str) -> list[str]:
    """The texts as a list of strings; refuse empty or non-string values, naming the first."""
    bad = np.array([not isinstance(v, str) or not v.strip() for v in values], dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column '{column}' has {int(bad.sum())} empty or non-string text(s); the first at row {first}: "
            f"{values.iloc[first]!r}",
            hint="drop or fill those rows (data.filter can drop them)",
        )
    return [str(v) for v in values]


def _text_summary(spec: TextData, tokenizer, encoded, found: dict[str, np.ndarray]) -> dict:
    return {
        "column": spec.text_column,
        "tokenizer": tokenizer.path.name,
        "vocab_size": tokenizer.vocab_size,
        "max_length": spec.tokenizer.max_length,
        "truncation_side": spec.tokenizer.truncation_side,
        "padding": spec.tokenizer.padding,
        "truncated": int(encoded.truncated.sum()),
        "mean_tokens": float(np.mean(encoded.lengths)) if len(encoded.lengths) else 0.0,
        "identity_mentions": {group: int(hits.sum()) for group, hits in found.items()},
    }


def _identity_warnings(found: dict[str, np.ndarray], groups: dict[str, list[str]]) -> list[str]:
    texts = len(next(iter(found.values()))) if found else 0
    return identity_warnings({group: int(hits.sum()) for group, hits in found.items()}, texts, groups)


def identity_warnings(counts: dict[str, int], texts: int, groups: dict[str, list[str]]) -> list[str]:
    """A warning per identity group no text mentions (``counts``: texts mentioning each group)."""
    return [
        f"identity group '{group}' ({len(groups[group])} terms) is mentioned in no text of {texts:,}; "
        "it is left out of the identity checks"
        for group, count in counts.items()
        if count == 0
    ]
