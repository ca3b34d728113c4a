"""The cheaper routes of issue 17 give the numbers of the plain ones they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from audit.config import CategoricalFeature, NumericFeature
from audit.data import _compact, encode_features
from audit.models import small_rows_on_one_thread
from audit.robust.domain import column_moments


def test_column_moments_equal_numpy_in_float64():
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(3, 2, (5000, 7)).astype(np.float32))
    sd, low, high = column_moments(features, chunk=512)
    plain = features.double().numpy()
    np.testing.assert_allclose(sd, plain.std(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(low, plain.min(axis=0))
    np.testing.assert_array_equal(high, plain.max(axis=0))


def test_features_filled_in_place_equal_float64_blocks():
    rng = np.random.default_rng(1)
    rows = 20_000  # more than one fill block
    frame = pd.DataFrame({
        "x": rng.normal(10, 3, rows), "colour": rng.choice(["red", "green", "blue"], rows),
        "size": rng.choice(["s", "m", "l"], rows), "n": rng.integers(0, 5, rows),
    })
    features = [
        NumericFeature(name="x", type="numeric", encoding="standardize", mean=10.0, std=3.0),
        CategoricalFeature(name="colour", type="categorical", encoding="one_hot", categories=["blue", "green", "red"]),
        CategoricalFeature(name="size", type="categorical", encoding="ordinal", categories=["s", "m", "l"]),
        NumericFeature(name="n", type="numeric", encoding="none"),
    ]
    tensor, columns = encode_features(_compact(frame, keep={"x", "n"}), features)
    expected = np.column_stack([
        (frame["x"].to_numpy() - 10.0) / 3.0,
        *(frame["colour"].to_numpy() == c for c in ("blue", "green", "red")),
        pd.Index(["s", "m", "l"]).get_indexer(frame["size"]),
        frame["n"].to_numpy(),
    ]).astype(np.float64).astype(np.float32)
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), expected)
    assert [c.name for c in columns] == ["x", "colour=blue", "colour=green", "colour=red", "size", "n"]


def test_compact_frame_keeps_values_and_missing_values():
    frame = pd.DataFrame({"a": ["x", None, "y", "x"], "b": [1.5, 2.0, None, 4.0], "c": ["1", "2", "3", "4"]})
    compact = _compact(frame, keep={"c"})
    assert isinstance(compact["a"].dtype, pd.CategoricalDtype) and not isinstance(compact["c"].dtype, pd.CategoricalDtype)
    assert compact["a"].isna().tolist() == [False, True, False, False]
    assert compact["a"].astype(object).where(compact["a"].notna(), None).tolist() == ["x", None, "y", "x"]
    pd.testing.assert_series_equal(compact["b"], frame["b"])


def test_small_rows_run_on_one_thread_and_restore_the_setting():
    before = torch.get_num_threads()
    cpu = torch.device("cpu")
    with small_rows_on_one_thread(cpu, 91):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with small_rows_on_one_thread(cpu, 3 * 224 * 224):
        assert torch.get_num_threads() == before


def test_strings_of_a_categorical_equal_those_of_its_values():
    from audit.data import as_strings

    values = pd.Series(["b", None, "a", "b"], dtype="str")
    compact = _compact(pd.DataFrame({"v": values}), keep=set())["v"]
    def plain(series):  # missing as None, whichever NA the dtype uses
        return [None if pd.isna(v) else v for v in series]

    assert plain(as_strings(compact)) == plain(as_strings(values)) == ["b", None, "a", "b"]
    numbers = pd.Series([1.0, 2.0, None]).astype("category")
    assert as_strings(numbers).tolist() == ["1", "2", None]
