"""Data loading builds exactly the trained tensor; groups, filters and samples behave as declared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.config import load_config
from audit.data import MISSING_GROUP, OUTSIDE_BINS, load_data
from audit.errors import DataError


def _load(project, **data):
    return load_data(load_config(project.spec(data=data)))


def test_encoding_matches_a_hand_computation(project):
    data = _load(project)
    frame = project.frame
    expected = np.column_stack(
        [
            (frame.x1 - 1.0) / 2.0,
            (frame.x2 + 1.0) / 4.0,
            frame.x3,
            frame.colour == "blue",
            frame.colour == "green",
            frame.colour == "red",
        ]
    ).astype(np.float32)
    np.testing.assert_array_equal(data.features.numpy(), expected)
    assert [c.name for c in data.columns][3:] == ["colour=blue", "colour=green", "colour=red"]
    assert {c.source for c in data.columns} == {"x1", "x2", "x3", "colour"}


def test_ordinal_encoding_uses_category_order(project):
    features = [{"name": "colour", "type": "categorical", "categories": ["red", "green", "blue"], "encoding": "ordinal"}]
    data = _load(project, features=features)
    expected = project.frame.colour.map({"red": 0, "green": 1, "blue": 2}).to_numpy()
    np.testing.assert_array_equal(data.features.numpy()[:, 0], expected)


def test_features_file_equals_inline_features(project):
    from tests.conftest import FEATURES

    (project.root / "prep.yaml").write_text(yaml.safe_dump({"features": FEATURES}))
    spec = project.spec(data={"features": None, "features_file": "prep.yaml"})
    from_file = load_data(load_config(spec)).features
    np.testing.assert_array_equal(from_file.numpy(), _load(project).features.numpy())


def test_parquet_equals_csv(project):
    project.frame.to_parquet(project.root / "data.parquet")
    parquet = _load(project, path="data.parquet")
    csv = _load(project)
    np.testing.assert_array_equal(parquet.features.numpy(), csv.features.numpy())
    np.testing.assert_array_equal(parquet.labels, csv.labels)


def test_label_map_and_positive_class(project):
    frame = project.frame.assign(label=project.frame.label.map({0: "no.", 1: "yes"}))
    frame.to_csv(project.root / "mapped.csv", index=False)
    label = {"column": "label", "classes": ["yes", "no"], "positive": "yes", "map": {"no.": "no"}}
    data = _load(project, path="mapped.csv", label=label)
    np.testing.assert_array_equal(data.labels, np.where(project.frame.label == 1, 0, 1))
    assert data.positive_index == 0


def test_unexpected_label_values_name_them(project):
    with pytest.raises(DataError, match=r"'1' \(\d+ rows\).*label.map"):
        _load(project, label={"column": "label", "classes": [0, 2]})


def test_filter_and_seeded_sample(project):
    data = _load(project, filter="x3 >= 2", sample={"n": 50, "seed": 3})
    kept = project.frame.query("x3 >= 2")
    positions = np.sort(np.random.default_rng(3).choice(len(kept), 50, replace=False))
    np.testing.assert_array_equal(data.labels, kept.label.to_numpy()[positions])
    assert data.summary["rows_after_filter"] == len(kept)
    again = _load(project, filter="x3 >= 2", sample={"n": 50, "seed": 3})
    np.testing.assert_array_equal(again.features.numpy(), data.features.numpy())


def test_bad_filter_is_a_data_error(project):
    with pytest.raises(DataError, match="data.filter"):
        _load(project, filter="no_such_column > 1")


def test_bins_are_left_closed_and_missing_is_a_group(project):
    frame = project.frame.copy()
    frame.loc[0, "age"] = 40  # an edge belongs to the upper bin
    frame.loc[1, "age"] = np.nan
    frame.loc[2, "age"] = 130  # beyond the last edge
    frame.loc[3, "sex"] = np.nan
    frame.to_csv(project.root / "edges.csv", index=False)
    sensitive = [{"column": "sex"}, {"column": "age", "bins": [0, 40, 120], "labels": ["young", "old"]}]
    data = _load(project, path="edges.csv", sensitive=sensitive)
    assert data.sensitive.age[:3].tolist() == ["old", MISSING_GROUP, OUTSIDE_BINS]
    assert data.sensitive.sex[3] == MISSING_GROUP
    expected_old = ((frame.age >= 40) & (frame.age < 120)).sum()
    assert (data.sensitive.age == "old").sum() == expected_old


def test_integer_groups_read_with_gaps_keep_their_names(project):
    frame = project.frame.assign(region=[1, 2, None] * 100)
    frame.to_csv(project.root / "regions.csv", index=False)
    data = _load(project, path="regions.csv", sensitive=[{"column": "region"}])
    assert set(data.sensitive.region) == {"1", "2", MISSING_GROUP}


@pytest.mark.parametrize("value, word", [("", "missing or infinite"), ("inf", "missing or infinite"), ("abc", "holds text")])
def test_bad_numeric_feature_values(project, value, word):
    frame = project.frame.astype({"x1": object})
    frame.loc[5, "x1"] = value
    frame.to_csv(project.root / "bad.csv", index=False)
    with pytest.raises(DataError, match=f"x1.*{word}"):
        _load(project, path="bad.csv")


def test_unknown_category_is_named(project):
    frame = project.frame.copy()
    frame.loc[7, "colour"] = "purple"
    frame.to_csv(project.root / "purple.csv", index=False)
    with pytest.raises(DataError, match="'purple' \\(1 rows\\)"):
        _load(project, path="purple.csv")


# ---------------------------------------------------------------- images


def _image_spec(project, images, labels, **data):
    np.savez(project.root / "images.npz", images=images, labels=labels)
    pd.DataFrame({"tone": ["a", "b"] * (len(labels) // 2)}).to_csv(project.root / "meta.csv", index=False)
    raw = {
        "name": "images",
        "data": {
            "kind": "image",
            "path": "images.npz",
            "value_range": [0, 1],
            "label": {"classes": [0, 1, 2]},
            "metadata": "meta.csv",
            "sensitive": [{"column": "tone"}],
        }
        | data,
        "model": {"kind": "onnx", "path": "images.npz"},
    }
    path = project.root / "image.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_nhwc_images_become_nchw(project):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (6, 5, 4, 3)).astype(np.float32)
    data = load_data(_image_spec(project, images, np.array([0, 1, 2, 0, 1, 2]), layout="NHWC"))
    np.testing.assert_array_equal(data.features.numpy(), images.transpose(0, 3, 1, 2))
    assert data.sensitive.tone.tolist() == ["a", "b"] * 3


def test_images_outside_value_range_are_refused(project):
    images = np.full((4, 1, 2, 2), 255.0, dtype=np.float32)
    with pytest.raises(DataError, match=r"span \[255, 255\].*value_range \[0, 1\]"):
        load_data(_image_spec(project, images, np.array([0, 1, 2, 0])))


def test_metadata_must_have_one_row_per_image(project):
    config = _image_spec(project, np.zeros((4, 1, 2, 2), np.float32), np.array([0, 1, 2, 0]))
    pd.DataFrame({"tone": ["a"] * 3}).to_csv(project.root / "meta.csv", index=False)
    with pytest.raises(DataError, match="3 rows for 4 images"):
        load_data(config)


def test_integer_image_labels_index_named_classes(project):
    labels = np.array([2, 0, 1, 1, 0, 2])
    config = _image_spec(project, np.zeros((6, 1, 2, 2), np.float32), labels,
                         label={"classes": ["cat", "dog", "bird"]})
    data = load_data(config)
    assert data.labels.tolist() == labels.tolist()
    assert [data.classes[i] for i in data.labels] == ["bird", "cat", "dog", "dog", "cat", "bird"]


def test_integer_image_labels_outside_the_classes_are_refused(project):
    config = _image_spec(project, np.zeros((4, 1, 2, 2), np.float32), np.array([0, 1, 3, 0]),
                         label={"classes": ["cat", "dog", "bird"]})
    with pytest.raises(DataError, match=r"0 to 2.*1 are outside, e.g. \[3\]"):
        load_data(config)


def test_label_map_accepts_integer_keys(project):
    frame = project.frame
    spec = project.spec(data={"label": {"column": "label", "classes": ["no", "yes"], "positive": "yes",
                                        "map": {0: "no", 1: "yes"}}})
    data = load_data(load_config(spec))
    assert data.labels.tolist() == frame["label"].tolist()
    assert data.classes == ("no", "yes")
