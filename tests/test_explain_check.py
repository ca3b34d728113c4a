"""The explanations check: its measurements' contract, per-group figures against a hand
computation, proxies, local rows, images, and bad input through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy.stats import chi2_contingency

from audit.checks import explanations
from audit.cli import main
from audit.config import load_config
from audit.explain import registry
from audit.explain import measurements
from audit.explain.aggregate import Bootstrap
from audit.explain.measurements import METRICS
from audit.explain.plan import make_plan
from audit.results import Measurement, Reason, artefact_key
from audit.runner import build_context

SENSITIVE = [{"column": "sex", "reference": "M"}, {"column": "colour", "reference": "red"}]
FAST = {"rows": 120, "costly_rows": 40, "steps": 16}


def context(project, *, model: str = "torchscript", seed: int = 0, **settings):
    spec = project.spec(model=project.model(model), data={"sensitive": SENSITIVE}, seed=seed,
                        checks={"explanations": FAST | settings})
    return build_context(load_config(spec))


def one(out: list[Measurement], metric: str, group=..., **params) -> Measurement:
    found = [m for m in out if m.metric == metric and (group is ... or m.group == group)
             and all(m.params.get(k) == v for k, v in params.items())]
    assert len(found) == 1, f"{metric} {group} {params}: {len(found)}"
    return found[0]


@pytest.fixture
def checked(project):
    ctx = context(project)
    return ctx, explanations.run(ctx)


# ---------------------------------------------------------------- contract


def test_measurement_contract(checked):
    ctx, out = checked
    assert out and all(m.check == "explanations" for m in out)
    assert {m.metric for m in out} <= set(METRICS)
    methods = [m.params["method"] for m in out if m.metric == "rows_explained"]
    assert methods == ["IntegratedGradients", "ExactShapley"]  # the defaults for a small differentiable model
    capped = one(out, "rows_explained", method="ExactShapley")
    assert capped.value == 40 and "costly_rows=40" in capped.note
    for m in out:
        assert Measurement.from_dict(json.loads(json.dumps(m.to_dict(), allow_nan=False))) == m
        if m.ci is not None:
            assert m.ci[0] <= m.value + 1e-12 and m.value <= m.ci[1] + 1e-12, m
    for name in ("completeness_gap", "infidelity", "sensitivity"):
        assert one(out, name, method="IntegratedGradients").value is not None
    assert one(out, "completeness_gap", method="ExactShapley").value < 1e-6
    assert one(out, "method_agreement", kind="spearman").n == 40


def test_deterministic_under_a_seed_and_inputs_untouched(project):
    ctx = context(project)
    features = ctx.data.features.clone()
    parameters = [p.detach().clone() for p in ctx.model.module.parameters()]
    first = explanations.run(ctx)
    assert torch.equal(features, ctx.data.features)
    assert all(torch.equal(a, b) for a, b in zip(parameters, ctx.model.module.parameters()))
    assert all(p.requires_grad for p in ctx.model.module.parameters())
    assert first == explanations.run(context(project))
    other = explanations.run(context(project, seed=3))
    assert [m.value for m in other if m.metric == "feature_importance"] != [m.value for m in first if m.metric == "feature_importance"]


# ---------------------------------------------------------------- figures against a hand computation


def _hand_attributions(ctx):
    """The first method's attributions of the sampled rows, as a frame of source columns."""
    model = explanations.explained_model(ctx)
    plan = make_plan(ctx, model)
    rows = plan.sample[: plan.caps[plan.methods[0]]]
    # the same call as the check's (same batches, so the same float32 rounding), then the sampled rows
    request = explanations.build_request(plan, model, ctx.data.features, plan.rows_for(plan.methods[0]), ctx)
    with model.session(ctx.seed):
        found = registry.attribute(plan.methods[0], request).at_rows(rows)
    frame = pd.DataFrame(plan.layout.sum(found.values), columns=plan.layout.names)
    return frame, rows, found


def test_undefined_trust_measurements_carry_reason_codes():
    """Each way a trust figure has no value says why as a code: a zero scale, constant attributions."""
    zeros, nan = np.zeros(4), np.full(4, np.nan)
    tests = {"completeness": {"IG": (zeros, zeros)}, "infidelity": {"IG": (zeros, zeros)},
             "agreement": {("IG", "LIME"): (nan, np.ones(4), 2)}, "randomization": {"IG": nan}}
    out = measurements._trust(tests, Bootstrap(20, 0.95, np.random.default_rng(0)))
    assert {(m.metric, m.params.get("kind"), m.status, m.reason) for m in out} == {
        ("completeness_gap", None, "undefined", Reason.ZERO_SCALE),
        ("infidelity", None, "undefined", Reason.ZERO_SCALE),
        ("method_agreement", "spearman", "undefined", Reason.CONSTANT),
        ("method_agreement", "top_k", None, None),
        ("randomization_similarity", None, "undefined", Reason.CONSTANT),
    }


def test_group_figures_on_groups_below_the_minimum_are_insufficient_by_code(project):
    spec = project.spec(data={"sensitive": SENSITIVE}, checks={
        "explanations": FAST | {"methods": ["IntegratedGradients"]}, "fairness": {"min_group_size": 10_000}})
    out = explanations.run(build_context(load_config(spec)))
    grouped = [m for m in out if m.metric.startswith("group_")]
    assert grouped
    for m in grouped:
        assert (m.status, m.reason) in {("insufficient", Reason.SMALL_GROUP), ("undefined", Reason.NO_ROWS)}, m
    assert all(m.reason is None for m in out if m.status is None)


def test_per_group_figures_equal_a_hand_computation(checked):
    ctx, out = checked
    frame, rows, found = _hand_attributions(ctx)
    colour = ctx.data.sensitive["colour"].to_numpy()[rows]
    toward_positive = frame.mul(np.where(found.targets == 1, 1.0, -1.0), axis=0)
    for group in ("blue", "green", "red"):
        mine = colour == group
        for feature in frame.columns:
            measured = one(out, "group_feature_importance", group={"colour": group}, feature=feature)
            assert measured.value == pytest.approx(frame[feature][mine].abs().mean(), abs=1e-12)
            assert measured.n == mine.sum()
            if group == "red":
                continue
            red = colour == "red"
            gap = one(out, "group_attribution_difference", group={"colour": group}, feature=feature)
            assert gap.value == pytest.approx(toward_positive[feature][mine].mean() - toward_positive[feature][red].mean(), abs=1e-12)
            assert gap.params["reference"] == "colour=red"
    # the share of all absolute attribution that goes to colour, a model input
    magnitude = frame.abs()
    share = one(out, "sensitive_reliance", method="IntegratedGradients", sensitive="colour")
    assert share.value == pytest.approx(magnitude["colour"].mean() / magnitude.sum(axis=1).mean(), abs=1e-12)
    # sex is not a model input: no direct reliance, said so
    assert one(out, "sensitive_reliance", method="IntegratedGradients", sensitive="sex").value == 0.0
    # the global importance is the mean absolute attribution
    for feature in frame.columns:
        assert one(out, "feature_importance", method="IntegratedGradients", feature=feature).value == pytest.approx(
            magnitude[feature].mean(), abs=1e-12)


def test_proxy_associations_equal_a_hand_computation(checked, project):
    ctx, out = checked
    source = project.frame
    table = pd.crosstab(source["colour"], source["sex"]).to_numpy()
    chi2 = chi2_contingency(table, correction=False)[0]
    cramer = np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    assert one(out, "proxy_association", sensitive="sex", feature="colour").value == pytest.approx(cramer, abs=1e-12)
    # a numeric input: the correlation ratio, eta^2 = between-group over total sum of squares
    x = source["x1"]
    between = source.groupby("colour")["x1"].apply(lambda v: len(v) * (v.mean() - x.mean()) ** 2).sum()
    eta = np.sqrt(between / ((x - x.mean()) ** 2).sum())
    found = one(out, "proxy_association", sensitive="colour", feature="x1")
    assert found.value == pytest.approx(eta, abs=1e-12) and found.params["measure"] == "correlation_ratio"
    # the strongest proxies of colour are named, and the shares add up
    together = one(out, "sensitive_and_proxy_reliance", method="IntegratedGradients", sensitive="colour")
    proxies = together.params["proxies"]
    parts = [one(out, "proxy_reliance", method="IntegratedGradients", sensitive="colour", feature=f).value for f in proxies]
    direct = one(out, "sensitive_reliance", method="IntegratedGradients", sensitive="colour").value
    assert together.value == pytest.approx(direct + sum(parts), abs=1e-12)


def test_local_rows_are_the_worst_errors_the_least_certain_and_the_ids(project):
    ctx = context(project, local={"worst_errors": 2, "least_certain": 2, "ids": [7]})
    out = explanations.run(ctx)
    wrong = np.flatnonzero(ctx.predictions.decisions != ctx.data.labels)
    confidence = ctx.predictions.probabilities[wrong, ctx.predictions.decisions[wrong]]
    worst = set(wrong[np.argsort(-confidence)[:2]].tolist())
    margin = np.abs(ctx.predictions.probabilities[:, 1] - 0.5)
    certain = [r for r in np.argsort(margin, kind="stable").tolist() if r not in worst][:2]
    reasons = {m.params["row"]: m.params["reason"] for m in out if m.metric == "local_output"}
    assert reasons == {**{r: "worst error" for r in worst}, **{r: "least certain" for r in certain}, 7: "requested"}
    for row in reasons:
        head = one(out, "local_output", row=row, method="ExactShapley")
        parts = [m.value for m in out if m.metric == "local_attribution" and m.params["row"] == row
                 and m.params["method"] == "ExactShapley"]
        assert len(parts) == 4 and sum(parts) == pytest.approx(head.value - head.params["base_value"], abs=1e-5)
    value = one(out, "local_attribution", row=7, method="ExactShapley", feature="colour").params["value"]
    assert value == project.frame["colour"][7]


def test_black_box_defaults_and_randomisation(project):
    out = explanations.run(context(project, model="onnx"))
    assert [m.params["method"] for m in out if m.metric == "rows_explained"] == ["ExactShapley", "FeatureAblation"]
    out = explanations.run(context(project, randomization_check=True, trust=False))
    similarity = one(out, "randomization_similarity", method="IntegratedGradients")
    assert similarity.value < 0.9 and not [m for m in out if m.metric == "infidelity"]


# ---------------------------------------------------------------- images


def test_image_model_gets_heatmaps_per_class_and_for_errors(tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples"
    raw = yaml.safe_load((examples / "digits_cnn.yaml").read_text())
    for key in ("path", "metadata"):
        raw["data"][key] = str((examples / raw["data"][key]).resolve())
    raw["data"]["sample"] = {"n": 80}
    raw["model"]["path"] = str((examples / raw["model"]["path"]).resolve())
    raw["model"]["factory"] = str((examples / raw["model"]["factory"].split(":")[0]).resolve()) + ":build"
    raw["statistics"] = {"bootstrap": 50}
    raw["checks"] = {"explanations": {"steps": 16, "local": {"worst_errors": 1, "least_certain": 1}}}
    spec = tmp_path / "digits.yaml"
    spec.write_text(yaml.safe_dump(raw))
    ctx = build_context(load_config(spec))
    out = explanations.run(ctx)
    maps = [m for m in out if m.metric == "attribution_map"]
    reasons = {m.params["reason"] for m in maps}
    assert reasons >= {"worst error", "least certain", "class example"}
    figures = {(a.metric, a.key): a.data for a in ctx.artefacts}  # figures travel beside the measurements
    for m in maps:
        assert not {"map", "image", "shape", "scale"} & set(m.params)
        figure = figures[("attribution_map", artefact_key(m))]
        assert figure["shape"] == [8, 8] and len(figure["map"]) == 64 and len(figure["image"]) == 64
        assert max(abs(v) for v in figure["map"]) in (0, 99)
    assert {m.params["method"] for m in maps} == {"IntegratedGradients", "Occlusion"}
    assert len([m for m in out if m.metric == "feature_importance"]) == 2 * 9
    assert [m for m in out if m.metric == "group_attribution_map"]


# ---------------------------------------------------------------- bad input, through the command line


def _bad(project, tmp_path, capsys, *needles, model="torchscript", **settings) -> str:
    spec = project.spec(model=project.model(model), data={"sensitive": SENSITIVE},
                        checks={"explanations": FAST | settings})
    out = tmp_path / "out"
    code = main(["run", str(spec), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    assert not out.exists() or list(out.iterdir()) == []
    return captured.err


def test_a_gradient_method_on_an_onnx_model_names_the_methods_that_work(project, tmp_path, capsys):
    line = _bad(project, tmp_path, capsys, "IntegratedGradients needs gradients", "onnx", "ExactShapley",
                "KernelExplainer", "LIME", model="onnx", methods=["IntegratedGradients"])
    assert "DeepLift" not in line.split("fix:")[1]


def test_an_unknown_method_lists_the_valid_names(project, tmp_path, capsys):
    _bad(project, tmp_path, capsys, "unknown method 'Shapley'", "IntegratedGradients", "ExactShapley", "LIME",
         methods=["IntegratedGradients", "Shapley"])


@pytest.mark.parametrize("target, needle", [(2, "class index 2 is out of range"), ("7", "'7' is not a class")])
def test_a_target_class_that_does_not_exist(project, tmp_path, capsys, target, needle):
    _bad(project, tmp_path, capsys, needle, "0, 1", target=target)


def test_an_explanation_row_id_that_does_not_exist(project, tmp_path, capsys):
    _bad(project, tmp_path, capsys, "row 300 does not exist", "300 rows", local={"ids": [3, 300]})


def test_a_method_for_images_on_tabular_data(project, tmp_path, capsys):
    _bad(project, tmp_path, capsys, "Occlusion works on image data", methods=["Occlusion"])


def test_randomisation_of_a_black_box_is_refused(project, tmp_path, capsys):
    _bad(project, tmp_path, capsys, "randomization_check", model="onnx", randomization_check=True)
