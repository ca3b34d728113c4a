"""Spec mistakes are spec errors (exit 2, one line naming the key), never internal errors (issue 12.4).

References: the mistaken spec or file itself (the key the message must name is the one written
into it here), and the CLI's exit code and stderr.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.checks import fairness
from audit.cli import main
from audit.config import SensitiveSpec
from audit.explain import registry
from audit.errors import ConfigError
from tests.conftest import FEATURES
from tests.test_fairness import make_context, one


def _validate(spec, capsys) -> str:
    code = main(["validate", str(spec)])
    captured = capsys.readouterr()
    assert code == 2, (captured.out, captured.err)
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_features_file_of_another_shape(project, capsys):
    # an encoding.json: numeric, mean, std, categorical at the top, no 'features' list
    (project.root / "encoding.json").write_text(json.dumps({"numeric": ["x1"], "mean": [0.0], "std": [1.0], "categorical": {}}))
    spec = project.spec(data={"features": None, "features_file": "encoding.json"})
    raw = yaml.safe_load(spec.read_text())
    del raw["data"]["features"]
    spec.write_text(yaml.safe_dump(raw))
    err = _validate(spec, capsys)
    assert "encoding.json" in err and "unknown key" in err
    assert any(f"{key}: unknown key" in err for key in ("numeric", "mean", "std", "categorical")), err


def test_features_file_with_an_extra_key_named_numeric(project, capsys):
    features = [dict(f) for f in FEATURES]
    features[0]["numeric"] = True
    (project.root / "features.yaml").write_text(yaml.safe_dump({"features": features}))
    spec = project.spec()
    raw = yaml.safe_load(spec.read_text())
    del raw["data"]["features"]
    raw["data"]["features_file"] = "features.yaml"
    spec.write_text(yaml.safe_dump(raw))
    err = _validate(spec, capsys)
    assert "features[0].numeric: unknown key" in err, err


@pytest.mark.parametrize("key", ["tabular", "image", "numeric", "categorical"])
def test_a_top_level_key_named_like_a_union_member(project, capsys, key):
    spec = project.spec(**{key: {"kind": "x"}})
    err = _validate(spec, capsys)
    assert f"{key}: unknown key; allowed keys here:" in err and "data" in err, err


def test_integer_reference_for_an_integer_column():
    assert SensitiveSpec(column="g", reference=1).reference == "1"
    assert SensitiveSpec(column="g", reference="1").reference == "1"
    rng = np.random.default_rng(0)
    sensitive = pd.DataFrame({"g": rng.integers(0, 3, size=300)})
    labels, decisions = rng.integers(0, 2, size=300), rng.integers(0, 2, size=300)
    specs = [SensitiveSpec(column="g", reference=1)]
    out = fairness.run(make_context(sensitive, labels, decisions, specs=specs, bootstrap=0))
    against = one(out, "demographic_parity_difference", group={"g": "2"}, method="to_reference")
    # reference: the selection rates counted by hand
    rate = {v: decisions[sensitive["g"].to_numpy() == v].mean() for v in (1, 2)}
    assert against.params["reference"] == "g=1" and against.value == pytest.approx(rate[2] - rate[1], abs=1e-12)


def test_unknown_explanation_method_gets_a_did_you_mean():
    with pytest.raises(ConfigError) as caught:
        registry.get("IntegratedGradient")
    assert "did you mean 'IntegratedGradients'?" in str(caught.value)
