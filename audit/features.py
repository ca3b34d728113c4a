"""Write the features list (the model's input encoding) from training data or a fitted scikit-learn transformer.

The audit rebuilds the model's input tensor from this list, so it must hold the *training*
statistics: derive it from the training file (never the evaluation data), or read it off the
fitted transformer the model was trained with. ``rai-audit features`` prints it as YAML.

>>> import pandas as pd
>>> derive(pd.DataFrame({"age": [20, 30], "sex": ["F", "M"], "y": [0, 1]}), label="y")[1]
{'name': 'sex', 'type': 'categorical', 'encoding': 'one_hot', 'categories': ['F', 'M']}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audit.errors import ConfigError, DataError

NUMERIC_ENCODINGS = ("standardize", "minmax", "none")


def read_training_table(path: str | Path) -> pd.DataFrame:
    """A CSV (with a header row) or Parquet file, as the training code read it."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=False, na_values=[""], skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"training file not found: {path}", hint="give the file the model was trained on") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def derive(frame: pd.DataFrame, *, label: str | None = None, categorical: tuple[str, ...] = (),
           drop: tuple[str, ...] = (), encoding: str = "standardize") -> list[dict[str, Any]]:
    """One feature per column, in file order, but the label and dropped columns.

    Text and boolean columns (and those named in ``categorical``) become one-hot categorical
    features with their sorted categories, as scikit-learn's OneHotEncoder orders them; number
    columns numeric with the training mean and population std (StandardScaler's) or min and max,
    and ``integer: true`` when every value is a whole number.
    """
    if encoding not in NUMERIC_ENCODINGS:
        raise ConfigError(f"numeric encoding {encoding!r} is not one of {', '.join(NUMERIC_ENCODINGS)}")
    missing = [c for c in (label, *categorical, *drop) if c is not None and c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} are not in the training file; it has {list(frame.columns)}")
    features = []
    for name in frame.columns:
        if name == label or name in drop:
            continue
        values = frame[name]
        if name in categorical or not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            features.append(_categorical(name, values))
        else:
            features.append(_numeric(name, values, encoding))
    return features


def _categorical(name: str, values: pd.Series) -> dict[str, Any]:
    if values.isna().any():
        raise DataError(f"column {name!r} has {int(values.isna().sum())} missing value(s)",
                        hint="give them a category (as training did) or drop the column with --drop")
    found = values.unique().tolist()
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in found):
        categories: list = sorted(int(v) for v in found)
    else:
        categories = sorted(str(v) for v in found)
    return {"name": name, "type": "categorical", "encoding": "one_hot", "categories": categories}


def _numeric(name: str, values: pd.Series, encoding: str) -> dict[str, Any]:
    numbers = values.to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise DataError(f"column {name!r} has missing or infinite values",
                        hint="impute them as training did, or drop the column with --drop")
    feature: dict[str, Any] = {"name": name, "type": "numeric", "encoding": encoding}
    if encoding == "standardize":
        std = float(numbers.std(ddof=0))
        if std == 0:
            raise DataError(f"column {name!r} is constant; it cannot be standardized", hint="drop it with --drop")
        feature |= {"mean": float(numbers.mean()), "std": std}
    elif encoding == "minmax":
        feature |= {"min": float(numbers.min()), "max": float(numbers.max())}
    if np.array_equal(numbers, np.round(numbers)):
        feature["integer"] = True
    return feature


# ---------------------------------------------------------------- scikit-learn


def from_sklearn(transformer: Any) -> list[dict[str, Any]]:
    """The features a fitted ColumnTransformer (or one OneHotEncoder/StandardScaler/MinMaxScaler) computes.

    Reads the fitted attributes (``mean_``, ``scale_``, ``categories_``...) in the order the
    transformer writes its output columns; anything it cannot reproduce exactly is refused.
    """
    from sklearn.compose import ColumnTransformer

    if isinstance(transformer, ColumnTransformer):
        features = []
        for _, part, columns in _fitted_parts(transformer):
            features.extend(_part(part, list(columns)))
        return features
    names = getattr(transformer, "feature_names_in_", None)
    if names is None:
        raise ConfigError(f"a bare {type(transformer).__name__} fitted without column names cannot name its features",
                          hint="fit it on a DataFrame, or wrap it in a ColumnTransformer")
    return _part(transformer, [str(n) for n in names])


def _fitted_parts(transformer) -> list:
    if not hasattr(transformer, "transformers_"):
        raise ConfigError("the ColumnTransformer is not fitted", hint="save it after .fit(...)")
    parts = []
    for name, part, columns in transformer.transformers_:
        if isinstance(columns, slice) or (len(columns) and not isinstance(columns[0], str)):
            columns = [str(c) for c in np.asarray(transformer.feature_names_in_)[columns]]
        if part == "drop" or len(columns) == 0:
            continue
        parts.append((name, part, columns))
    return parts


def _part(part: Any, columns: list[str]) -> list[dict[str, Any]]:
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    if part == "passthrough":
        return [{"name": c, "type": "numeric", "encoding": "none"} for c in columns]
    if isinstance(part, StandardScaler):
        if not (part.with_mean and part.with_std):
            raise ConfigError("a StandardScaler without centring or scaling has no matching encoding")
        return [{"name": c, "type": "numeric", "encoding": "standardize", "mean": float(m), "std": float(s)}
                for c, m, s in zip(columns, part.mean_, part.scale_)]
    if isinstance(part, MinMaxScaler):
        if tuple(part.feature_range) != (0, 1) or part.clip:
            raise ConfigError("only a MinMaxScaler with feature_range (0, 1) and no clip matches the minmax encoding")
        return [{"name": c, "type": "numeric", "encoding": "minmax", "min": float(lo), "max": float(hi)}
                for c, lo, hi in zip(columns, part.data_min_, part.data_max_)]
    if isinstance(part, (OneHotEncoder, OrdinalEncoder)):
        return _encoded(part, columns)
    raise ConfigError(f"cannot read a {type(part).__name__} as a feature encoding",
                      hint="supported: ColumnTransformer of OneHotEncoder, OrdinalEncoder, StandardScaler, "
                           "MinMaxScaler, 'passthrough' and 'drop'")


def _encoded(part: Any, columns: list[str]) -> list[dict[str, Any]]:
    from sklearn.preprocessing import OneHotEncoder

    one_hot = isinstance(part, OneHotEncoder)
    if one_hot and (part.drop is not None or getattr(part, "_infrequent_enabled", False)):
        raise ConfigError("a OneHotEncoder with drop or infrequent categories has no matching encoding")
    return [{"name": c, "type": "categorical", "encoding": "one_hot" if one_hot else "ordinal",
             "categories": [v.item() if hasattr(v, "item") else v for v in categories]}
            for c, categories in zip(columns, part.categories_)]


def load_sklearn(path: str | Path, *, allow_pickle: bool) -> Any:
    """Unpickle a joblib file: it runs code from the file, so only when the caller opts in."""
    if not allow_pickle:
        raise ConfigError(f"{path} is a pickle, which runs code from the file when loaded",
                          hint="pass --allow-pickle if you trust it")
    import joblib

    try:
        return joblib.load(path)
    except FileNotFoundError:
        raise DataError(f"transformer file not found: {path}") from None
    except Exception as exc:  # a pickle can fail in any way its code chooses
        raise DataError(f"cannot load {path} with joblib: {type(exc).__name__}: {exc}") from None


def to_yaml(features: list[dict[str, Any]], *, source: str) -> str:
    """The features file, one feature a line (as train.py writes it), checked to read back exactly."""
    from audit.config import FeaturesFile

    lines = [f"# the model's input encoding, from {source}: training statistics, never the evaluation data's",
             "features:"]
    lines += ["  - " + yaml.safe_dump(f, default_flow_style=True, sort_keys=False, width=10**6).strip() for f in features]
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text)["features"] != features:
        raise AssertionError("the features file does not read back to the derived features")
    FeaturesFile.model_validate({"features": features})
    return text
