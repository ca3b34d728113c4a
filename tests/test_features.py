"""`rai-audit features`: the features list from training data or a fitted scikit-learn transformer.

The reference is scikit-learn itself: the tensor the audit builds from the written list must
equal the fitted transformer's output, and the Adult demo's committed list (written by its
train.py) must come back exactly from its training file.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from audit import features
from audit.cli import main
from audit.config import FeaturesFile, load_features_file
from audit.errors import ConfigError
from audit.data import encode_features

ROOT = Path(__file__).resolve().parents[1]


def _frame(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n), "income": rng.normal(50, 12, n), "city": rng.choice(["Oslo", "Rome", "?"], n),
        "grade": rng.integers(1, 4, n), "hours": rng.uniform(0, 60, n), "label": rng.integers(0, 2, n),
    })


def _tensor(found: list[dict], frame: pd.DataFrame) -> np.ndarray:
    parsed = FeaturesFile.model_validate({"features": found}).features
    return encode_features(frame, parsed)[0].numpy()


def test_derived_features_build_what_sklearn_builds():
    frame = _frame()
    found = features.derive(frame, label="label", categorical=("grade",))
    reference = ColumnTransformer([
        ("age", StandardScaler(), ["age"]), ("income", StandardScaler(), ["income"]),
        ("city", OneHotEncoder(), ["city"]), ("grade", OneHotEncoder(), ["grade"]), ("hours", StandardScaler(), ["hours"]),
    ]).fit(frame)
    np.testing.assert_allclose(_tensor(found, frame), reference.transform(frame), rtol=1e-6, atol=1e-6)
    assert [f.get("integer", False) for f in found if f["type"] == "numeric"] == [True, False, False]
    assert found[3]["categories"] == [1, 2, 3]


def test_minmax_and_dropped_columns():
    frame = _frame()
    found = features.derive(frame, label="label", drop=("city", "grade"), encoding="minmax")
    assert [f["name"] for f in found] == ["age", "income", "hours"]
    expected = MinMaxScaler().fit_transform(frame[["age", "income", "hours"]])
    np.testing.assert_allclose(_tensor(found, frame), expected, rtol=1e-6, atol=1e-6)


def test_a_fitted_column_transformer_is_read_in_its_output_order():
    frame = _frame()
    fitted = ColumnTransformer([
        ("scaled", StandardScaler(), ["income", "age"]), ("ranged", MinMaxScaler(), ["hours"]),
        ("onehot", OneHotEncoder(), ["city"]), ("ordinal", OrdinalEncoder(), ["grade"]),
    ], remainder="drop").fit(frame)
    found = features.from_sklearn(fitted)
    assert [f["name"] for f in found] == ["income", "age", "hours", "city", "grade"]
    np.testing.assert_allclose(_tensor(found, frame), fitted.transform(frame), rtol=1e-6, atol=1e-6)


def test_unsupported_transformers_are_refused():
    fitted = ColumnTransformer([("onehot", OneHotEncoder(drop="first"), ["city"])]).fit(_frame())
    with pytest.raises(ConfigError, match="drop or infrequent"):
        features.from_sklearn(fitted)


def test_the_cli_writes_a_file_the_audit_reads(tmp_path, capsys):
    frame = _frame()
    frame.to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "features.yaml"
    assert main(["features", "--from", str(tmp_path / "train.csv"), "--label", "label", "--categorical", "grade",
                 "--out", str(out)]) == 0
    parsed = load_features_file(out)
    assert [f.name for f in parsed] == ["age", "income", "city", "grade", "hours"]
    assert parsed[2].categories == ["?", "Oslo", "Rome"]


def test_a_joblib_file_is_not_loaded_without_the_opt_in(tmp_path, capsys):
    marker = tmp_path / "ran"
    (tmp_path / "evil.joblib").write_bytes(pickle.dumps(_Trap(str(marker))))
    code = main(["features", "--sklearn", str(tmp_path / "evil.joblib")])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-pickle" in err and err.count("\n") == 1
    assert not marker.exists()


def test_with_the_opt_in_a_saved_transformer_is_read(tmp_path, capsys):
    fitted = ColumnTransformer([("s", StandardScaler(), ["age"]), ("o", OneHotEncoder(), ["city"])]).fit(_frame())
    joblib.dump(fitted, tmp_path / "pre.joblib")
    assert main(["features", "--sklearn", str(tmp_path / "pre.joblib"), "--allow-pickle"]) == 0
    written = yaml.safe_load(capsys.readouterr().out)["features"]
    assert written == features.from_sklearn(fitted)


class _Trap:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_the_adult_demo_features_come_back_from_its_training_file(tmp_path):
    spec = importlib.util.spec_from_file_location("adult_train", ROOT / "models" / "adult_mlp" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    frame = train.read_adult("adult.data", skiprows=0)
    frame[[name for name, _ in train.FEATURES]].to_csv(tmp_path / "train.csv", index=False)
    found = features.derive(features.read_training_table(tmp_path / "train.csv"))
    committed = yaml.safe_load((ROOT / "models" / "adult_mlp" / "preprocessing.yaml").read_text())["features"]
    assert found == committed
    # every numeric Adult column is a whole number, so attacks keep them whole
    assert all(f.get("integer") for f in committed if f["type"] == "numeric")
