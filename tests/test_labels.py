"""Display labels for coded values and sensitive attributes derived from a coded column.

The numbers are checked against hand counts on the raw codes: a label renames a group, it
never moves a row.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.cli import main
from audit.config import load_config
from audit.data import load_data
from audit.errors import ConfigError, DataError

STATUS = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}
STATUS_LABELS = {"A91": "male: divorced/separated", "A92": "female: divorced/separated/married",
                 "A93": "male: single", "A94": "male: married/widowed", "A95": "female: single"}
COLOUR_LABELS = {"red": "colour red (A34)", "blue": "colour blue (A30)"}


@pytest.fixture
def coded(project):
    rng = np.random.default_rng(4)
    project.frame["status"] = rng.choice(sorted(STATUS), len(project.frame))
    project.frame.to_csv(project.root / "data.csv", index=False)
    return project


def _spec(project, **extra):
    features = [dict(f) for f in yaml_features()]
    features[3]["labels"] = COLOUR_LABELS
    return project.spec(data={
        "features": features,
        "sensitive": [{"column": "status", "labels": STATUS_LABELS},
                      {"column": "sex_from_status", "source": "status", "map": STATUS, "reference": "male"}],
    } | extra, checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})


def yaml_features():
    from tests.conftest import FEATURES

    return FEATURES


def test_groups_carry_labels_and_derived_values_with_the_raw_counts(coded):
    data = load_data(load_config(_spec(coded)))
    raw = coded.frame["status"]
    assert data.sensitive["status"].value_counts().to_dict() == {STATUS_LABELS[k]: int(n) for k, n in raw.value_counts().items()}
    derived = raw.map(STATUS).value_counts().to_dict()
    assert data.sensitive["sex_from_status"].value_counts().to_dict() == derived
    # one-hot column names show the label; the encoding (order of categories) is unchanged
    assert [c.name for c in data.columns[3:]] == ["colour=colour blue (A30)", "colour=green", "colour=colour red (A34)"]
    assert data.features[:, 3:].numpy().argmax(1).tolist() == coded.frame["colour"].map({"blue": 0, "green": 1, "red": 2}).tolist()


def test_result_json_keeps_the_raw_value_beside_the_label(coded, tmp_path, capsys):
    assert main(["run", str(_spec(coded)), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["data"]["group_labels"]["status"] == {label: raw for raw, label in STATUS_LABELS.items()}
    assert result["data"]["derived_sensitive"]["sex_from_status"] == {"source": "status", "map": STATUS}
    assert result["data"]["category_labels"]["colour"] == {label: raw for raw, label in COLOUR_LABELS.items()}
    counts = {m["group"]["sex_from_status"]: m["value"] for m in result["measurements"]
              if m["metric"] == "count" and m["group"] and list(m["group"]) == ["sex_from_status"]}
    assert counts == {k: float(v) for k, v in coded.frame["status"].map(STATUS).value_counts().items()}
    page = (tmp_path / "out" / "report.html").read_text()
    assert "female: divorced/separated/married" in page


def test_an_unmapped_source_value_is_refused(coded):
    spec = coded.spec(data={"sensitive": [{"column": "sex", "source": "status", "map": {"A91": "male"}}]})
    with pytest.raises(DataError, match=r"values \['A92', 'A93', 'A94', 'A95'\] of column 'status' are not in its map"):
        load_data(load_config(spec))


def test_a_reference_given_by_its_code_names_the_label(coded):
    spec = coded.spec(data={"sensitive": [{"column": "status", "labels": STATUS_LABELS, "reference": "A92"}]})
    with pytest.raises(DataError, match="reference: 'female: divorced/separated/married'"):
        load_data(load_config(spec))


@pytest.mark.parametrize("entry, message", [
    ({"column": "status", "labels": ["a", "b"]}, "a list of labels needs bins"),
    ({"column": "sex", "source": "status"}, "needs both source and map"),
])
def test_bad_label_settings_are_refused(coded, entry, message):
    with pytest.raises(ConfigError, match=message):
        load_config(coded.spec(data={"sensitive": [entry]}))
