"""The fairness check: its measurements' contract, small and undefined groups, reference groups,
intersections, per-group scores against scikit-learn, and bad input through the command line.

Numbers are checked against hand counts and scikit-learn; the engine's agreement with fairlearn
is tested in ``test_groups.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, roc_auc_score

from audit import score_stats
from audit.checks import fairness
from audit.cli import main
from audit.config import AuditConfig, Checks, FairnessCheck, SensitiveSpec, Statistics, TabularData, load_config
from audit.context import AuditContext, AuditData, Predictions
from audit.data import build_sensitive
from audit.errors import ConfigError
from audit.groups import RATES
from audit.catalogue import catalogue
from audit.results import Measurement, Reason
from tests.conftest import make_frame

TOL = 1e-12
DISPARITIES = tuple(fairness.DISPARITIES)
GROUP_METRICS = {"count", *RATES, "roc_auc", "average_precision", "log_loss", "expected_calibration_error"}
# the policy that chose the groups (issue 10.5) is part of what a between-group disparity depends on
BETWEEN_PARAMS = {"sensitive", "method", "highest_group", "lowest_group", "small_groups", "missing"}


# ---------------------------------------------------------------- helpers


def make_context(
    sensitive: pd.DataFrame,
    labels,
    decisions,
    *,
    specs: list[SensitiveSpec] | None = None,
    classes=("no", "yes"),
    probabilities=None,
    scores=None,
    bootstrap=200,
    seed=0,
    min_group_size=30,
    intersections="all",
    calibration_bins=10,
    small_groups="exclude",
    missing="exclude",
    min_denominator=None,
) -> AuditContext:
    """A context for the fairness check alone: it reads the sensitive specs, data and predictions."""
    specs = specs or [SensitiveSpec(column=str(c)) for c in sensitive.columns]
    fairness_config = FairnessCheck(
        min_group_size=min_group_size, intersections=intersections, calibration_bins=calibration_bins,
        small_groups=small_groups, missing=missing, min_denominator=min_denominator,
    )
    config = AuditConfig.model_construct(
        name="fairness test",
        seed=seed,
        data=TabularData.model_construct(kind="tabular", sensitive=specs),
        checks=Checks(fairness=fairness_config),
        statistics=Statistics(bootstrap=bootstrap),
    )
    labels = np.asarray(labels, dtype=np.int64)
    data = AuditData(
        labels=labels,
        classes=tuple(classes),
        positive_index=1 if len(classes) == 2 else None,
        sensitive=build_sensitive(sensitive, specs, max_groups=100),
        features=None,
    )
    predictions = Predictions(decisions=np.asarray(decisions, dtype=np.int64), probabilities=probabilities, scores=scores)
    return AuditContext(config=config, data=data, predictions=predictions)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def scored_case(seed=0, n=4000):
    """Two columns whose six groups differ clearly in base rate, selection and errors."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.45, 0.55])
    colour = rng.choice(["red", "green", "blue"], n)
    shift = np.where(sex == "F", 0.7, -0.5) + pd.Series(colour).map({"red": 0.6, "green": 0.0, "blue": -0.8}).to_numpy()
    labels = (rng.random(n) < sigmoid(0.8 * shift)).astype(np.int64)
    positive = sigmoid(2.5 * (labels - 0.5) + 0.9 * shift + rng.normal(0, 1.2, n))
    probabilities = np.column_stack([1 - positive, positive])
    decisions = (positive >= 0.5).astype(np.int64)
    sensitive = pd.DataFrame({"sex": sex, "colour": colour})
    return sensitive, labels, decisions, probabilities


def scored_context(data_seed=0, n=4000, **options):
    sensitive, labels, decisions, probabilities = scored_case(data_seed, n)
    ctx = make_context(sensitive, labels, decisions, probabilities=probabilities, scores=probabilities[:, 1], **options)
    return ctx, sensitive, labels, decisions, probabilities


def label_text(group: dict[str, str]) -> str:
    return ", ".join(f"{column}={value}" for column, value in group.items())


def select(out, metric, *, group=..., **params) -> list[Measurement]:
    return [
        m for m in out
        if m.metric == metric and (group is ... or m.group == group)
        and all(m.params.get(k) == v for k, v in params.items())
    ]


def one(out, metric, *, group=..., **params) -> Measurement:
    found = select(out, metric, group=group, **params)
    assert len(found) == 1, f"{metric} {group} {params}: found {len(found)}"
    return found[0]


def between(out, disparity, kind, sensitive) -> Measurement:
    return one(out, f"{disparity}_{kind}", group=None, sensitive=sensitive, method="between_groups")


def hand_rates(labels, decisions, rows) -> dict[str, float | None]:
    """Every rate of the rows by counting, None where the denominator is zero."""
    y, d = labels[rows], decisions[rows]
    tp, fp = int(((y == 1) & (d == 1)).sum()), int(((y == 0) & (d == 1)).sum())
    fn, tn = int(((y == 1) & (d == 0)).sum()), int(((y == 0) & (d == 0)).sum())

    def ratio(a, b):
        return a / b if b else None

    return {
        "base_rate": ratio(tp + fn, tp + fp + fn + tn),
        "selection_rate": ratio(tp + fp, tp + fp + fn + tn),
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
        "true_positive_rate": ratio(tp, tp + fn),
        "false_positive_rate": ratio(fp, fp + tn),
        "false_negative_rate": ratio(fn, tp + fn),
        "true_negative_rate": ratio(tn, fp + tn),
        "positive_predictive_value": ratio(tp, tp + fp),
        "negative_predictive_value": ratio(tn, tn + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }


def rows_of(sensitive: pd.DataFrame, group: dict[str, str]) -> np.ndarray:
    mask = np.ones(len(sensitive), dtype=bool)
    for column, value in group.items():
        mask &= (sensitive[column].astype(str) == value).to_numpy()
    return mask


# ---------------------------------------------------------------- 1. the measurements' contract


def test_measurement_contract():
    ctx, sensitive, labels, *_ = scored_context(
        specs=[SensitiveSpec(column="sex", reference="F"), SensitiveSpec(column="colour", reference="red")]
    )
    out = fairness.run(ctx)
    assert out and all(m.check == "fairness" for m in out)
    names = ["sex", "colour", "sex+colour"]
    for m in out:
        if m.params.get("method") == "between_groups":
            assert m.group is None and set(m.params) == BETWEEN_PARAMS, m
            assert m.params["sensitive"] in names
            assert m.metric in {f"{d}_{k}" for d in DISPARITIES for k in ("difference", "ratio")}
        elif m.params.get("method") == "to_reference":
            assert set(m.params) == {"sensitive", "method", "reference"}, m
            assert m.group is not None and m.group != {"sex": "F"} and m.group != {"colour": "red"}
            expected_reference = {"sex": "sex=F", "colour": "colour=red", "sex+colour": "sex=F, colour=red"}
            assert m.params["reference"] == expected_reference[m.params["sensitive"]]
        else:
            assert m.metric in GROUP_METRICS and m.params == {}, m
            assert isinstance(m.group, dict) and tuple(m.group) in {("sex",), ("colour",), ("sex", "colour")}
            assert m.n == rows_of(sensitive, m.group).sum()
    # six disparities, two kinds, for each of the three groupings
    assert len([m for m in out if m.group is None]) == len(DISPARITIES) * 2 * 3
    # every group of every grouping has its count, every rate and its scores, once each
    groups = [m.group for m in select(out, "count")]
    assert len(groups) == 2 + 3 + 6
    for group in groups:
        metrics = [m.metric for m in out if m.group == group and not m.params]
        assert sorted(metrics) == sorted(GROUP_METRICS), group


def test_intervals_contain_the_point_value():
    ctx, *_ = scored_context(specs=[SensitiveSpec(column="sex", reference="F"), SensitiveSpec(column="colour", reference="red")])
    out = fairness.run(ctx)
    checked = 0
    for m in out:
        if m.metric == "count":
            assert m.ci is None and m.status is None
            continue
        assert m.value is not None and m.status is None, m  # an ordinary case: nothing undefined
        low, high = m.ci
        assert low <= m.value <= high, m
        checked += 1
    # 11 groups x (10 rates, roc_auc, average precision, log loss, calibration); 3 x 12 between
    # groups; 8 groups x 12 to a reference
    assert checked == 11 * 14 + 3 * 12 + 8 * 12


def test_json_round_trip_and_inputs_not_mutated():
    ctx, sensitive, labels, decisions, probabilities = scored_context(n=1500)
    copies = [sensitive.copy(), labels.copy(), decisions.copy(), probabilities.copy(), ctx.data.sensitive.copy()]
    out = fairness.run(ctx)
    for m in out:
        assert Measurement.from_dict(json.loads(json.dumps(m.to_dict(), allow_nan=False))) == m
    pd.testing.assert_frame_equal(copies[0], sensitive)
    pd.testing.assert_frame_equal(copies[4], ctx.data.sensitive)
    for before, after in zip(copies[1:4], (labels, decisions, probabilities)):
        np.testing.assert_array_equal(before, after)


def test_deterministic_under_a_seed():
    first = fairness.run(scored_context(n=1500)[0])
    again = fairness.run(scored_context(n=1500)[0])
    assert first == again
    other = fairness.run(scored_context(n=1500, seed=7)[0])
    assert [(m.metric, m.group, m.params, m.value) for m in other] == [(m.metric, m.group, m.params, m.value) for m in first]
    # bootstrap intervals move with the seed; the score statistics' intervals use no resampling
    resampled = [a.ci != b.ci for a, b in zip(first, other) if a.ci is not None and a.metric not in score_stats.METRICS]
    assert resampled and all(resampled)
    assert all(a.ci == b.ci for a, b in zip(first, other) if a.metric in score_stats.METRICS)


def test_no_bootstrap_means_no_intervals():
    out = fairness.run(scored_context(n=1500, bootstrap=0)[0])
    assert out and all(m.ci is None for m in out)


def test_named_extremes_give_the_value():
    """highest_group and lowest_group are the groups whose rates make the disparity's value."""
    ctx, *_ = scored_context()
    out = fairness.run(ctx)
    for m in out:
        if m.params.get("method") != "between_groups":
            continue
        grouping = m.params["sensitive"]
        members = [g for g in out if g.group is not None and "+".join(g.group) == grouping and not g.params]
        by_label = {label_text(g.group): g.group for g in members}
        candidates = []
        for base in fairness.DISPARITIES[m.metric.rsplit("_", 1)[0]]:
            high = one(members, base, group=by_label[m.params["highest_group"]]).value
            low = one(members, base, group=by_label[m.params["lowest_group"]]).value
            candidates.append(high - low if m.metric.endswith("_difference") else low / high)
        assert any(abs(c - m.value) < TOL for c in candidates), (m, candidates)


def test_multiclass_measurements_name_their_class():
    rng = np.random.default_rng(0)
    n = 1200
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    labels = rng.integers(0, 3, n)
    decisions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, 3, n))
    out = fairness.run(make_context(sensitive, labels, decisions, classes=("a", "b", "c"), bootstrap=50))
    for m in out:
        if m.metric in ("count", *fairness.TOP1):  # top-1 accuracy judges every class at once
            assert m.params == {}
        elif m.group is None:
            assert set(m.params) == BETWEEN_PARAMS | {"class"}
        else:
            assert set(m.params) == {"class"}
    for k, name in enumerate("abc"):
        rows = rows_of(sensitive, {"sex": "F"})
        expected = hand_rates((labels == k).astype(int), (decisions == k).astype(int), rows)
        for rate, value in expected.items():
            assert one(out, rate, group={"sex": "F"}, **{"class": name}).value == pytest.approx(value, abs=TOL)


def test_multiclass_top1_accuracy_and_error_rate_per_group_match_scikit_learn():
    """Per-group top-1 accuracy is sklearn's accuracy_score within the group, not a one-vs-rest rate."""
    rng = np.random.default_rng(1)
    n = 900
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n, p=[0.3, 0.7])})
    labels = rng.integers(0, 4, n)
    decisions = np.where(rng.random(n) < np.where(sensitive.sex == "F", 0.4, 0.8), labels, rng.integers(0, 4, n))
    out = fairness.run(make_context(sensitive, labels, decisions, classes=("a", "b", "c", "d"), bootstrap=100))
    for value in ("F", "M"):
        rows = (sensitive.sex == value).to_numpy()
        expected = accuracy_score(labels[rows], decisions[rows])
        top1 = one(out, "top1_accuracy", group={"sex": value})
        error = one(out, "error_rate", group={"sex": value})
        assert top1.value == pytest.approx(expected, abs=TOL) and top1.n == rows.sum()
        assert error.value == pytest.approx(1 - expected, abs=TOL)
        assert top1.ci[0] <= top1.value <= top1.ci[1]
        assert error.ci == pytest.approx((1 - top1.ci[1], 1 - top1.ci[0]), abs=1e-9)  # one draw, mirrored
        # the one-vs-rest accuracy of a class counts correct rejections: far above top-1 for 4 classes
        assert one(out, "accuracy", group={"sex": value}, **{"class": "a"}).value > expected
    # a binary model's accuracy already is its top-1 accuracy: no duplicate metric
    binary = fairness.run(make_context(sensitive, labels % 2, decisions % 2, bootstrap=20))
    assert not [m for m in binary if m.metric in fairness.TOP1]


# ---------------------------------------------------------------- 2. min_group_size


def small_group_case():
    """F and M are large; X has 10 rows, all predicted positive, 7 of them positive."""
    rng = np.random.default_rng(3)
    n = 1000
    sex = rng.choice(["F", "M"], n)
    labels = (rng.random(n) < np.where(sex == "F", 0.5, 0.4)).astype(np.int64)
    # PPV: F about 0.8, M about 0.55; X's 0.7 lies between them
    decisions = np.where(labels == 1, rng.random(n) < 0.7, rng.random(n) < np.where(sex == "F", 0.15, 0.4)).astype(np.int64)
    sex = np.append(sex, ["X"] * 10)
    labels = np.append(labels, [1] * 7 + [0] * 3)
    decisions = np.append(decisions, [1] * 10)
    return pd.DataFrame({"sex": sex}), labels, decisions


def test_a_small_group_is_kept_and_marked_insufficient():
    # small_groups: include (fairlearn's disparities over every group); exclude is tested in test_fairness_policy.py
    sensitive, labels, decisions = small_group_case()
    ctx = make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=100, small_groups="include")
    out = fairness.run(ctx)
    x = {"sex": "X"}
    count = one(out, "count", group=x)
    assert count.value == 10 and count.n == 10 and count.status == "insufficient"
    assert "10 rows" in count.note and "30" in count.note
    for rate in RATES:
        m = one(out, rate, group=x)  # never dropped
        expected = hand_rates(labels, decisions, rows_of(sensitive, x))[rate]
        if expected is None:
            assert m.value is None and m.status == "undefined"
        else:
            assert m.value == pytest.approx(expected, abs=TOL)
            assert m.status == "insufficient" and m.reason == Reason.SMALL_GROUP and m.note
    for group in ({"sex": "F"}, {"sex": "M"}):
        assert one(out, "count", group=group).status is None
        assert one(out, "selection_rate", group=group).status is None

    parity = between(out, "demographic_parity", "difference", "sex")
    assert parity.params["highest_group"] == "sex=X" and parity.status == "insufficient"
    assert "sex=X" in parity.note
    assert between(out, "false_negative_rate", "ratio", "sex").params["lowest_group"] == "sex=X"
    assert between(out, "false_negative_rate", "difference", "sex").status == "insufficient"
    # a disparity that does not rest on X is ordinary
    ppv = between(out, "predictive_parity", "difference", "sex")
    assert "sex=X" not in (ppv.params["highest_group"], ppv.params["lowest_group"])
    assert ppv.status is None and ppv.note is None and ppv.value is not None

    warned = [w for w in ctx.warnings if "sex=X" in w]
    assert len(warned) == 1 and "n=10" in warned[0] and "30" in warned[0]


def test_min_group_size_one_marks_nothing():
    sensitive, labels, decisions = small_group_case()
    ctx = make_context(sensitive, labels, decisions, min_group_size=1, bootstrap=0)
    out = fairness.run(ctx)
    assert not [m for m in out if m.status == "insufficient"]
    assert not ctx.warnings


# ---------------------------------------------------------------- 3. zero denominators


def test_zero_denominators_are_undefined_never_zero():
    rng = np.random.default_rng(4)
    n = 600
    group = rng.choice(["a", "b"], n)
    labels = rng.integers(0, 2, n)
    decisions = rng.integers(0, 2, n)
    extra = {  # (labels, decisions)
        "nopos": ([0] * 8, [1, 0] * 4),  # no actual positives: TPR, FNR undefined
        "nopred": ([1, 0] * 4, [0] * 8),  # no predicted positives: PPV undefined
        "allpred": ([1, 0] * 4, [1] * 8),  # no predicted negatives: NPV undefined
        "empty": ([0] * 8, [0] * 8),  # no positives at all: TPR, FNR, PPV, F1 undefined
    }
    for name, (y, d) in extra.items():
        group = np.append(group, [name] * len(y))
        labels, decisions = np.append(labels, y), np.append(decisions, d)
    sensitive = pd.DataFrame({"group": group})
    ctx = make_context(sensitive, labels, decisions, min_group_size=1, specs=[SensitiveSpec(column="group", reference="empty")])
    out = fairness.run(ctx)
    undefined = {
        "nopos": {"true_positive_rate", "false_negative_rate"},
        "nopred": {"positive_predictive_value"},
        "allpred": {"negative_predictive_value"},
        "empty": {"true_positive_rate", "false_negative_rate", "positive_predictive_value", "f1"},
    }
    for name, rates in undefined.items():
        for rate in RATES:
            m = one(out, rate, group={"group": name})
            if rate in rates:
                assert m.value is None and m.ci is None and m.status == "undefined", m
                assert m.reason == Reason.NO_DENOMINATOR
                assert m.note == f"undefined: no {catalogue().get(rate).denominator} in the group"  # the catalogue's words
            else:
                assert m.value is not None and m.status is None, m
    # against a reference whose selection rate is 0, the ratio is undefined, the difference is not
    for name in ("a", "b", "nopos"):
        ratio = one(out, "demographic_parity_ratio", group={"group": name}, method="to_reference")
        assert ratio.value is None and ratio.status == "undefined" and ratio.reason == Reason.NO_DENOMINATOR
        difference = one(out, "demographic_parity_difference", group={"group": name}, method="to_reference")
        assert difference.value == pytest.approx(hand_rates(labels, decisions, group == name)["selection_rate"], abs=TOL)
    # undefined values are None everywhere, never 0
    assert all(m.value is None for m in out if m.status == "undefined")
    assert all(m.note for m in out if m.status == "undefined")


def test_a_disparity_with_no_defined_group_is_undefined():
    rng = np.random.default_rng(5)
    n = 300
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    labels = np.zeros(n, dtype=np.int64)  # nobody is positive: TPR is undefined in every group
    decisions = rng.integers(0, 2, n)
    out = fairness.run(make_context(sensitive, labels, decisions, bootstrap=50))
    for kind in ("difference", "ratio"):
        m = between(out, "equal_opportunity", kind, "sex")
        assert m.value is None and m.status == "undefined" and m.ci is None
        assert m.reason == Reason.FEW_GROUPS and "true_positive_rate" in m.note
        # equalized odds needs both of its rates: with TPR undefined it is undefined too,
        # rather than quietly falling back to FPR alone
        odds = between(out, "equalized_odds", kind, "sex")
        assert odds.value is None and odds.status == "undefined" and "true_positive_rate" in odds.note
        assert between(out, "false_positive_rate", kind, "sex").value is not None


# ---------------------------------------------------------------- 4. reference group


SINGLE_RATE = {d: bases[0] for d, bases in fairness.DISPARITIES.items() if len(bases) == 1}


def test_reference_comparisons_equal_a_hand_count():
    ctx, sensitive, labels, decisions, _ = scored_context(
        specs=[SensitiveSpec(column="sex", reference="M"), SensitiveSpec(column="colour", reference="green")],
        bootstrap=0,
    )
    out = fairness.run(ctx)
    references = {"sex": {"sex": "M"}, "colour": {"colour": "green"}, "sex+colour": {"sex": "M", "colour": "green"}}
    compared = 0
    for grouping, reference in references.items():
        base = hand_rates(labels, decisions, rows_of(sensitive, reference))
        groups = {tuple(m.group.items()) for m in select(out, "count") if "+".join(m.group) == grouping}
        assert len(groups) > 1
        for items in groups:
            group = dict(items)
            if group == reference:
                assert not [m for m in out if m.group == group and m.params.get("method") == "to_reference"]
                continue
            rates = hand_rates(labels, decisions, rows_of(sensitive, group))
            params = {"group": group, "method": "to_reference", "sensitive": grouping}
            for disparity, rate in SINGLE_RATE.items():
                difference = one(out, f"{disparity}_difference", **params)
                ratio = one(out, f"{disparity}_ratio", **params)
                assert difference.value == pytest.approx(rates[rate] - base[rate], abs=TOL)
                assert ratio.value == pytest.approx(rates[rate] / base[rate], abs=TOL)
                assert difference.params["reference"] == label_text(reference)
                compared += 1
            gaps = [rates[r] - base[r] for r in ("true_positive_rate", "false_positive_rate")]
            ratios = [rates[r] / base[r] for r in ("true_positive_rate", "false_positive_rate")]
            odds_difference = one(out, "equalized_odds_difference", **params).value
            odds_ratio = one(out, "equalized_odds_ratio", **params).value
            assert odds_difference == pytest.approx(max(abs(g) for g in gaps), abs=TOL)
            assert odds_ratio == pytest.approx(min(min(r, 1 / r) for r in ratios), abs=TOL)
    assert compared == 5 * (1 + 2 + 5)


def test_a_cross_has_a_reference_only_when_every_column_has_one():
    ctx, *_ = scored_context(specs=[SensitiveSpec(column="sex", reference="F"), SensitiveSpec(column="colour")], bootstrap=0)
    out = fairness.run(ctx)
    compared = {m.params["sensitive"] for m in out if m.params.get("method") == "to_reference"}
    assert compared == {"sex"}


# ---------------------------------------------------------------- 5. intersections


def three_columns(n=900):
    rng = np.random.default_rng(6)
    sensitive = pd.DataFrame({"a": rng.choice(["x", "y"], n), "b": rng.choice(["p", "q"], n), "c": rng.choice(["u", "v"], n)})
    return sensitive, rng.integers(0, 2, n), rng.integers(0, 2, n)


@pytest.mark.parametrize(
    "setting, names",
    [
        ("all", ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]),
        ("pairs", ["a", "b", "c", "a+b", "a+c", "b+c"]),
        ("none", ["a", "b", "c"]),
        ([["a", "c"]], ["a", "b", "c", "a+c"]),
        ([["c", "b", "a"]], ["a", "b", "c", "c+b+a"]),
    ],
)
def test_intersections(setting, names):
    out = fairness.run(make_context(*three_columns(), intersections=setting, bootstrap=0, min_group_size=1))
    found = list(dict.fromkeys(m.params["sensitive"] for m in out if m.group is None))
    assert found == names
    counted = list(dict.fromkeys("+".join(m.group) for m in out if m.metric == "count"))
    assert counted == names
    for name in names:
        groups = [m for m in out if m.metric == "count" and "+".join(m.group) == name]
        assert len(groups) == 2 ** len(name.split("+"))
        assert sum(m.value for m in groups) == 900


def test_an_intersection_naming_an_undeclared_column_is_a_config_error(project):
    spec = project.spec(checks={"fairness": {"intersections": [["sex", "race"]]}})
    with pytest.raises(ConfigError, match="race") as caught:
        load_config(spec)
    assert "checks.fairness.intersections" in str(caught.value)
    load_config(project.spec(checks={"fairness": {"intersections": [["sex", "age"]]}}))  # declared: valid


# ---------------------------------------------------------------- 6. per-group scores


@pytest.mark.parametrize("bins", [10, 7])
def test_group_roc_auc_and_calibration_equal_sklearn(bins):
    ctx, sensitive, labels, _, probabilities = scored_context(n=2500, calibration_bins=bins, bootstrap=50)
    out = fairness.run(ctx)
    score = probabilities[:, 1]
    groups = [m.group for m in select(out, "count")]
    assert len(groups) == 11
    edges = np.linspace(0, 1, bins + 1)[1:-1]
    for group in groups:
        rows = rows_of(sensitive, group)
        y, p = labels[rows], score[rows]
        auc = one(out, "roc_auc", group=group)
        assert auc.value == pytest.approx(roc_auc_score(y, p), abs=TOL)
        assert auc.n == rows.sum() and auc.ci[0] <= auc.value <= auc.ci[1]
        prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
        totals = np.bincount(np.searchsorted(edges, p), minlength=bins)
        ece = np.sum(totals[totals > 0] / y.size * np.abs(prob_true - prob_pred))
        assert one(out, "expected_calibration_error", group=group).value == pytest.approx(ece, abs=TOL)


def test_group_scores_with_one_class_and_switched_off():
    ctx, sensitive, labels, decisions, probabilities = scored_context(n=1000, bootstrap=20)
    labels = labels.copy()
    labels[(sensitive["sex"] == "F").to_numpy()] = 1
    ctx = make_context(sensitive, labels, decisions, probabilities=probabilities, scores=probabilities[:, 1], bootstrap=20)
    auc = one(fairness.run(ctx), "roc_auc", group={"sex": "F"})
    assert auc.value is None and auc.status == "undefined" and auc.reason == Reason.ONE_CLASS
    config = ctx.config.model_copy(update={"checks": Checks(fairness=FairnessCheck(group_scores=False))})
    out = fairness.run(AuditContext(config=config, data=ctx.data, predictions=ctx.predictions))
    assert not select(out, "roc_auc") and not select(out, "expected_calibration_error")


# ---------------------------------------------------------------- 7. bad input through the command line


def _run(spec: Path, out: Path, capsys) -> tuple[int, str, str]:
    code = main(["run", str(spec), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_bad_input(spec: Path, out: Path, capsys, *needles: str) -> str:
    code, stdout, stderr = _run(spec, out, capsys)
    assert code == 2, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1 and stderr.endswith("\n"), repr(stderr)
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in {stderr!r}"
    assert stdout == ""
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())
    return stderr.strip()


def test_missing_sensitive_column(project, tmp_path, capsys):
    spec = project.spec(data={"sensitive": [{"column": "sex"}, {"column": "ethnicity"}]})
    _assert_bad_input(spec, tmp_path / "out", capsys, "'ethnicity'", "not found")


def test_a_column_with_thousands_of_values_is_refused_until_max_groups_allows_it(project, tmp_path, capsys):
    frame = make_frame(n=2500, seed=1)
    frame["id"] = np.arange(frame.shape[0])
    frame.to_csv(project.root / "data.csv", index=False)
    sensitive = {"sensitive": [{"column": "id"}]}
    spec = project.spec(data=sensitive)
    line = _assert_bad_input(spec, tmp_path / "out", capsys, "'id'", "2500 distinct values", "checks.fairness.max_groups")
    assert "limit of 100" in line

    raised = project.spec(
        "raised.yaml",
        data=sensitive,
        checks={"fairness": {"max_groups": 3000, "group_scores": False}},
        statistics={"bootstrap": 0},
    )
    code, _, stderr = _run(raised, tmp_path / "ok", capsys)
    assert code == 0, stderr
    result = json.loads((tmp_path / "ok" / "result.json").read_text())
    counts = [m for m in result["measurements"] if m["check"] == "fairness" and m["metric"] == "count"]
    assert len(counts) == 2500 and all(m["value"] == 1 for m in counts)
    assert any("id" in w and "insufficient" in w for w in result["warnings"])


def test_a_reference_group_not_present(project, tmp_path, capsys):
    spec = project.spec(data={"sensitive": [{"column": "sex", "reference": "X"}]})
    _assert_bad_input(spec, tmp_path / "out", capsys, "reference group 'X'", "'sex'", "'F', 'M'")


def test_every_row_in_one_group_is_a_warning_and_its_disparities_are_undefined(project, tmp_path, capsys):
    frame = project.frame.assign(sex="F")
    frame.to_csv(project.root / "data.csv", index=False)
    code, _, stderr = _run(project.spec(), tmp_path / "out", capsys)
    assert code == 0, stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert any("'sex'" in w and "one group" in w for w in result["warnings"]), result["warnings"]
    fairness_results = [m for m in result["measurements"] if m["check"] == "fairness"]
    assert [m["group"] for m in fairness_results if m["metric"] == "count" and list(m["group"]) == ["sex"]] == [{"sex": "F"}]
    disparities = [m for m in fairness_results if m["group"] is None and m["params"]["sensitive"] == "sex"]
    assert len(disparities) == len(DISPARITIES) * 2
    for m in disparities:
        assert m["value"] is None and m["status"] == "undefined", m
    # the other column still compares its groups
    age = [m for m in fairness_results if m["group"] is None and m["params"]["sensitive"] == "age"]
    assert age and all(m["value"] is not None for m in age if m["metric"] == "demographic_parity_difference")


def test_a_rate_of_zero_gets_the_exact_binomial_interval():
    """A 0 rate never varies under resampling; its interval is Clopper-Pearson's, from scipy."""
    from scipy.stats import beta

    rng = np.random.default_rng(11)
    n = 400
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    labels = rng.integers(0, 2, n)
    decisions = np.where(sensitive.sex.to_numpy() == "F", labels, rng.integers(0, 2, n))  # no false positives for F
    out = fairness.run(make_context(sensitive, labels, decisions, bootstrap=200))
    fpr = next(m for m in out if m.metric == "false_positive_rate" and m.group == {"sex": "F"})
    negatives = int(((sensitive.sex == "F") & (labels == 0)).sum())
    assert fpr.value == 0.0
    assert fpr.ci[0] == 0.0
    assert fpr.ci[1] == pytest.approx(beta.ppf(0.975, 1, negatives), rel=1e-12)
    assert "Clopper-Pearson" in fpr.note
    male = next(m for m in out if m.metric == "false_positive_rate" and m.group == {"sex": "M"})
    assert male.note is None and male.ci[0] < male.value < male.ci[1]
