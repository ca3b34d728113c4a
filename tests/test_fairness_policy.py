"""Small and missing groups, rate denominators and intervals that never collapse (issues 10.5, 12.2, 12.3).

References: fairlearn's disparity functions on the rows of the groups that take part (and on
all rows for ``small_groups: include``), hand counts of each rate's denominator, scipy's exact
binomial interval (``binomtest(...).proportion_ci(method="exact")``) and coverage on data
simulated from known rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_ratio
from scipy.stats import binomtest

from audit.checks import fairness
from tests.test_fairness import between, make_context, one, small_group_case

TOL = 1e-12


def test_small_groups_are_left_out_of_the_disparities_and_named_beside_them():
    sensitive, labels, decisions = small_group_case()  # F and M, and X with 10 rows
    out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=100))
    parity = between(out, "demographic_parity", "difference", "sex")
    kept = (sensitive["sex"] != "X").to_numpy()
    expected = demographic_parity_difference(labels[kept], decisions[kept], sensitive_features=sensitive["sex"][kept])
    assert parity.value == pytest.approx(expected, abs=TOL)
    assert parity.status is None and parity.params["left_out"] == "sex=X (n=10)"
    assert "left out: sex=X (n=10)" in parity.note
    assert "sex=X" not in (parity.params["highest_group"], parity.params["lowest_group"])
    assert parity.n == int(kept.sum())
    x = one(out, "selection_rate", group={"sex": "X"})  # still reported, with a value and an interval
    assert x.value == 1.0 and x.ci is not None and x.ci[0] < 1.0 and x.status == "insufficient"
    assert one(out, "count", group={"sex": "X"}).value == 10


def test_include_keeps_fairlearns_disparity_over_every_group():
    sensitive, labels, decisions = small_group_case()
    out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=0, small_groups="include"))
    parity = between(out, "demographic_parity", "difference", "sex")
    expected = demographic_parity_difference(labels, decisions, sensitive_features=sensitive["sex"])
    assert parity.value == pytest.approx(expected, abs=TOL)
    assert parity.status == "insufficient" and "left_out" not in parity.params


def _with_one_blank(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=n).astype(object)
    labels = rng.integers(0, 2, size=n)
    decisions = rng.integers(0, 2, size=n)
    sex[0], decisions[0] = None, 1  # one blank value: a (missing) group of one, selected
    return pd.DataFrame({"sex": sex}), labels, decisions


@pytest.mark.parametrize("small_groups", ["exclude", "include"])
def test_the_missing_group_is_reported_but_does_not_decide(small_groups):
    sensitive, labels, decisions = _with_one_blank()
    out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=1, bootstrap=0, small_groups=small_groups))
    missing = one(out, "selection_rate", group={"sex": "(missing)"})
    assert missing.value == 1.0 and missing.n == 1
    parity = between(out, "demographic_parity", "difference", "sex")
    known = sensitive["sex"].notna().to_numpy()
    expected = demographic_parity_difference(labels[known], decisions[known], sensitive_features=sensitive["sex"][known])
    assert parity.value == pytest.approx(expected, abs=TOL)
    assert parity.params["left_out"] == "sex=(missing) (n=1)"


def test_missing_as_a_group_equals_fairlearn_with_it():
    sensitive, labels, decisions = _with_one_blank()
    ctx = make_context(sensitive, labels, decisions, min_group_size=1, bootstrap=0, small_groups="include", missing="group")
    parity = between(fairness.run(ctx), "demographic_parity", "difference", "sex")
    expected = demographic_parity_difference(labels, decisions, sensitive_features=sensitive["sex"].fillna("(missing)"))
    assert parity.value == pytest.approx(expected, abs=TOL) and parity.params["highest_group"] == "sex=(missing)"


def _three_positives():
    """Group B: 59 rows but 3 actual positives, none found (TPR 0/3); group A: 300 rows."""
    rng = np.random.default_rng(1)
    a_labels = rng.integers(0, 2, size=300)
    a_decisions = np.where(rng.random(300) < 0.8, a_labels, 1 - a_labels)
    b_labels = np.array([1] * 3 + [0] * 56)
    b_decisions = np.array([0] * 3 + [1] * 10 + [0] * 46)
    sensitive = pd.DataFrame({"g": ["A"] * 300 + ["B"] * 59})
    return sensitive, np.concatenate([a_labels, b_labels]), np.concatenate([a_decisions, b_decisions])


def test_a_disparity_resting_on_a_rate_with_a_small_denominator_is_insufficient():
    sensitive, labels, decisions = _three_positives()
    out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=200))
    positives = int(labels[(sensitive["g"] == "B").to_numpy()].sum())  # hand count
    assert positives == 3
    odds = between(out, "equalized_odds", "ratio", "g")
    assert odds.value == pytest.approx(equalized_odds_ratio(labels, decisions, sensitive_features=sensitive["g"]), abs=TOL)
    assert odds.value == 0.0 and odds.status == "insufficient"
    assert "g=B: true_positive_rate rests on 3 actual positives, fewer than 30" in odds.note
    assert odds.ci[1] > 0, "the interval of a ratio resting on 0/3 must not be [0, 0]"
    tpr = one(out, "true_positive_rate", group={"g": "B"})
    exact = binomtest(0, 3).proportion_ci(0.95, method="exact")
    assert tpr.ci == pytest.approx((exact.low, exact.high), abs=1e-12) and tpr.status == "insufficient"
    assert "3 actual positives" in tpr.note
    fpr = one(out, "false_positive_rate", group={"g": "B"})  # 56 negatives: sufficient
    assert fpr.status is None
    # a separate, lower min_denominator lets the same rate decide
    out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=0, min_denominator=3))
    assert between(out, "equalized_odds", "ratio", "g").status is None


@pytest.mark.parametrize("true_tpr", [0.95, 0.5])
def test_intervals_with_small_denominators_have_width_and_coverage(true_tpr):
    """Simulated data with known rates: group B has 6 actual positives. Reference: the truth."""
    rng = np.random.default_rng(7)
    rates, widths, covered_rate, covered_gap = [], [], 0, 0
    runs = 120
    for _ in range(runs):
        a_labels = np.array([1] * 200 + [0] * 200)
        a_decisions = np.where(a_labels == 1, rng.random(400) < 0.7, rng.random(400) < 0.2).astype(int)
        b_labels = np.array([1] * 6 + [0] * 60)
        b_decisions = np.where(b_labels == 1, rng.random(66) < true_tpr, rng.random(66) < 0.2).astype(int)
        sensitive = pd.DataFrame({"g": ["A"] * 400 + ["B"] * 66})
        labels, decisions = np.concatenate([a_labels, b_labels]), np.concatenate([a_decisions, b_decisions])
        out = fairness.run(make_context(sensitive, labels, decisions, min_group_size=30, bootstrap=200, intersections="none"))
        tpr = one(out, "true_positive_rate", group={"g": "B"})
        gap = between(out, "equal_opportunity", "difference", "g")
        widths.append(min(tpr.ci[1] - tpr.ci[0], gap.ci[1] - gap.ci[0]))
        covered_rate += tpr.ci[0] <= true_tpr <= tpr.ci[1]
        covered_gap += gap.ci[0] <= abs(0.7 - true_tpr) <= gap.ci[1]
        rates.append(tpr.value)
    assert min(widths) > 0, "an interval collapsed to a point"
    assert 1.0 in rates or true_tpr < 0.9  # the simulation did produce 6/6 groups, whose bootstrap is a point
    # 95% intervals; with 120 runs, coverage below 0.9 would be a real shortfall (binomial sd ~0.02)
    assert covered_rate / runs >= 0.9 and covered_gap / runs >= 0.9, (covered_rate, covered_gap)


def test_the_report_says_which_groups_the_disparities_leave_out(project):
    from audit.report.fairness_view import fairness_view
    from tests.test_report_fairness import _audit, _frame

    frame = _frame()
    frame.loc[:9, "sex"] = "X"  # 10 rows
    lead = fairness_view(_audit(project, frame))["lead"]
    assert "leave out groups below the minimum group size and the (missing) group" in lead
    assert "sex=X (n=10)" in lead


def test_a_blank_sensitive_value_does_not_fail_the_gate(project):
    """Issue 10.5: one blank value became a (missing) group of 1 that decided the gate.

    Reference: fairlearn's demographic_parity_difference over the rows with a known sex, and
    the same audit with `missing: group` and `small_groups: include`, where the (missing) group decides.
    """
    from audit import load_config, run_audit

    frame = project.frame.copy()
    frame.loc[0, "sex"] = None
    frame.to_csv(project.root / "data.csv", index=False)
    spec = project.spec(thresholds=["demographic_parity_difference(sensitive=sex) <= 0.5"])
    result = run_audit(load_config(spec))
    (finding,) = result.findings
    parity = next(m for m in result.select("fairness", "demographic_parity_difference") if m.params.get("sensitive") == "sex"
                  and m.params.get("method") == "between_groups")
    known = frame["sex"].notna().to_numpy()
    decisions = result_decisions(project, load_config(spec))
    expected = demographic_parity_difference(frame["label"][known], decisions[known], sensitive_features=frame["sex"][known])
    assert parity.value == pytest.approx(expected, abs=TOL) and "sex=(missing) (n=1)" in parity.note
    assert finding.verdict == "pass", finding.reason
    raw = yaml_load(spec)
    raw["checks"] = {"fairness": {"missing": "group", "small_groups": "include"}}
    spec.write_text(yaml_dump(raw))
    (finding,) = run_audit(load_config(spec)).findings
    assert finding.verdict != "pass" and "(missing)" in finding.reason


def result_decisions(project, config) -> np.ndarray:
    from audit.runner import build_context

    return build_context(config).predictions.decisions


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())


def yaml_dump(raw) -> str:
    import yaml

    return yaml.safe_dump(raw, sort_keys=False)


def test_per_class_precision_of_a_class_always_right_has_the_exact_interval():
    """Class 'c' is predicted 7 times, always rightly: precision 7/7 in every resample.

    Reference: scipy's exact binomial interval for 7 of 7 (and sklearn's precision for the value).
    """
    from sklearn.metrics import precision_score

    from audit.checks import performance
    from tests.test_performance import make_context as performance_context
    from tests.test_performance import one as pick

    rng = np.random.default_rng(3)
    labels = np.concatenate([rng.integers(0, 2, size=200), [2] * 12])
    decisions = np.concatenate([np.where(rng.random(200) < 0.8, labels[:200], 1 - labels[:200]), [2] * 7 + [0] * 5])
    out = performance.run(performance_context(labels, decisions, ("a", "b", "c"), bootstrap=200))
    precision = pick(out, "precision", **{"class": "c"})
    assert precision.value == precision_score(labels, decisions, labels=[2], average=None)[0] == 1.0
    exact = binomtest(7, 7).proportion_ci(0.95, method="exact")
    assert precision.ci == pytest.approx((exact.low, exact.high), abs=1e-12) and precision.ci[0] < 1.0


def test_a_group_broken_at_every_point_keeps_an_interval_above_zero():
    """Robust accuracy per group: 12 points, all broken, resample to 0 every time.

    Reference: scipy's exact binomial interval for 0 of 12 (the group's hand count).
    """
    from audit.checks.robustness import Setup, _rate_ci

    setup = Setup(rows=np.arange(12), domain=None, target=None, plan=None, epsilons=[0.1], names=[], level=0.95,
                  replicates=100, min_group_size=30)
    ci = _rate_ci(np.zeros(100), 0.0, 12, setup)
    exact = binomtest(0, 12).proportion_ci(0.95, method="exact")
    assert ci == pytest.approx((exact.low, exact.high), abs=1e-12) and ci[1] > 0
