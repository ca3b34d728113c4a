"""The performance check against scikit-learn, on random data and on the edge cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize

from audit.checks import performance
from audit.config import AuditConfig, Checks, PerformanceCheck, Statistics
from audit.context import AuditContext, AuditData, Predictions
from audit.errors import CheckError
from audit.results import Measurement

SEEDS = [0, 1, 2, 3]
TOL = 1e-12


def make_context(
    labels,
    decisions,
    classes,
    positive_index=None,
    *,
    probabilities=None,
    scores=None,
    bootstrap=200,
    bins=10,
    seed=0,
) -> AuditContext:
    """A context for the performance check alone: the check reads no data or model spec."""
    config = AuditConfig.model_construct(
        name="performance test",
        seed=seed,
        checks=Checks(performance=PerformanceCheck(calibration_bins=bins)),
        statistics=Statistics(bootstrap=bootstrap),
    )
    labels = np.asarray(labels)
    data = AuditData(
        labels=labels,
        classes=tuple(classes),
        positive_index=positive_index,
        sensitive=pd.DataFrame(index=range(labels.size)),
        features=None,
    )
    predictions = Predictions(decisions=np.asarray(decisions), probabilities=probabilities, scores=scores)
    return AuditContext(config=config, data=data, predictions=predictions)


def one(measurements: list[Measurement], metric: str, **params) -> Measurement:
    found = [m for m in measurements if m.metric == metric and all(m.params.get(k) == v for k, v in params.items())]
    assert len(found) == 1, f"{metric} {params}: found {len(found)}"
    return found[0]


def softmax_probabilities(rng, n, n_classes, labels, signal=1.2):
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), labels] += signal
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def binary_case(seed, n=500, positive_index=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    probabilities = softmax_probabilities(rng, n, 2, labels)
    positive = probabilities[:, positive_index]
    decisions = np.where(positive >= 0.5, positive_index, 1 - positive_index)
    ctx = make_context(
        labels, decisions, ("no", "yes"), positive_index, probabilities=probabilities, scores=positive
    )
    return ctx, labels, decisions, probabilities


# --- binary ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("positive_index", [1, 0])
def test_binary_metrics_equal_sklearn(seed, positive_index):
    ctx, y, d, p = binary_case(seed, positive_index=positive_index)
    out = performance.run(ctx)
    pos_name = ctx.data.classes[positive_index]
    precision, recall, f1, _ = precision_recall_fscore_support(y, d, pos_label=positive_index, average="binary")
    expected = {
        "accuracy": accuracy_score(y, d),
        "balanced_accuracy": balanced_accuracy_score(y, d),
        "roc_auc": roc_auc_score(y == positive_index, p[:, positive_index]),
        "average_precision": average_precision_score(y == positive_index, p[:, positive_index]),
        "log_loss": log_loss(y, p, labels=[0, 1]),
    }
    for metric, value in expected.items():
        assert one(out, metric).value == pytest.approx(value, abs=TOL), metric
    for metric, value in {"precision": precision, "recall": recall, "f1": f1}.items():
        assert one(out, metric, pos_label=pos_name).value == pytest.approx(value, abs=TOL), metric


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_confusion_matrix_equals_sklearn(seed):
    ctx, y, d, _ = binary_case(seed)
    out = performance.run(ctx)
    expected = confusion_matrix(y, d, labels=[0, 1])
    for t, true in enumerate(ctx.data.classes):
        for q, predicted in enumerate(ctx.data.classes):
            cell = one(out, "confusion_matrix", true=true, predicted=predicted)
            assert cell.value == expected[t, q] and cell.ci is None and cell.n == y.size


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bins", [5, 10])
def test_binary_calibration_equals_calibration_curve(seed, bins):
    ctx, y, _, p = binary_case(seed)
    ctx = make_context(y, ctx.predictions.decisions, ctx.data.classes, 1, probabilities=p, scores=p[:, 1], bins=bins)
    out = performance.run(ctx)
    prob_true, prob_pred = calibration_curve(y, p[:, 1], n_bins=bins, strategy="uniform")
    totals = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], p[:, 1]), minlength=bins)
    filled = np.flatnonzero(totals)
    cells = [m for m in out if m.metric == "calibration_bin"]
    assert len(cells) == filled.size
    for cell, k, observed, predicted in zip(cells, filled, prob_true, prob_pred):
        assert cell.value == pytest.approx(observed, abs=TOL)
        assert cell.params["mean_predicted"] == pytest.approx(predicted, abs=TOL)
        assert cell.params["bin_lower"] == pytest.approx(k / bins) and cell.params["bin_upper"] == pytest.approx((k + 1) / bins)
        assert cell.n == totals[k] and cell.ci is None
    ece = np.sum(totals[filled] / y.size * np.abs(prob_true - prob_pred))
    assert one(out, "expected_calibration_error").value == pytest.approx(ece, abs=TOL)


def test_scores_with_many_ties_and_no_probabilities():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 2000)
    decile = np.clip(np.round(rng.normal(4 + 3 * y, 2.5)), 1, 10)  # a 1-10 risk score
    decisions = (decile >= 6).astype(int)
    out = performance.run(make_context(y, decisions, ("low", "high"), 1, scores=decile))
    assert one(out, "roc_auc").value == pytest.approx(roc_auc_score(y, decile), abs=TOL)
    assert one(out, "average_precision").value == pytest.approx(average_precision_score(y, decile), abs=TOL)
    assert not [m for m in out if m.metric in {"log_loss", "expected_calibration_error", "calibration_bin"}]
    low, high = one(out, "roc_auc").ci
    assert low < one(out, "roc_auc").value < high


def test_decisions_only_give_no_score_metrics():
    y = np.array([0, 1, 1, 0, 1, 0])
    out = performance.run(make_context(y, np.array([0, 1, 0, 0, 1, 1]), ("a", "b"), 1))
    assert {m.metric for m in out} == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "confusion_matrix"}


def test_binary_positive_never_predicted():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    d = np.zeros(8, dtype=int)
    out = performance.run(make_context(y, d, ("neg", "pos"), 1))
    precision = one(out, "precision")
    assert precision.value is None and precision.ci is None
    assert precision.note == "undefined: no examples predicted as class pos"
    _, _, f1, _ = precision_recall_fscore_support(y, d, average="binary", zero_division=0)
    assert one(out, "recall").value == 0.0 and one(out, "f1").value == pytest.approx(f1, abs=TOL)


def test_only_one_class_in_the_labels():
    y = np.zeros(50, dtype=int)
    rng = np.random.default_rng(1)
    p = softmax_probabilities(rng, 50, 2, y)
    d = (p[:, 1] >= 0.5).astype(int)
    d[:2] = 1  # some predicted positives, which balanced_accuracy_score warns about
    out = performance.run(make_context(y, d, ("neg", "pos"), 1, probabilities=p, scores=p[:, 1]))
    for metric in ("roc_auc", "average_precision"):
        m = one(out, metric)
        assert m.value is None and m.ci is None and m.note == "undefined: only class neg in the labels"
    assert one(out, "recall").value is None and "no examples of class pos" in one(out, "recall").note
    assert one(out, "accuracy").value == pytest.approx(accuracy_score(y, d), abs=TOL)
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        expected = balanced_accuracy_score(y, d)
    assert one(out, "balanced_accuracy").value == pytest.approx(expected, abs=TOL)
    assert one(out, "log_loss").value == pytest.approx(log_loss(y, p, labels=[0, 1]), abs=TOL)


# --- multiclass ----------------------------------------------------------------------------


def multiclass_case(seed, n=600, n_classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    probabilities = softmax_probabilities(rng, n, n_classes, labels)
    decisions = probabilities.argmax(axis=1)
    classes = tuple(f"class_{k}" for k in range(n_classes))
    return make_context(labels, decisions, classes, probabilities=probabilities), labels, decisions, probabilities


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_confusion_metrics_equal_sklearn(seed):
    ctx, y, d, _ = multiclass_case(seed)
    out = performance.run(ctx)
    labels = list(range(4))
    assert one(out, "accuracy").value == pytest.approx(accuracy_score(y, d), abs=TOL)
    assert one(out, "balanced_accuracy").value == pytest.approx(balanced_accuracy_score(y, d), abs=TOL)
    per_class = precision_recall_fscore_support(y, d, labels=labels, zero_division=0)
    for k, name in enumerate(ctx.data.classes):
        for metric, values in zip(("precision", "recall", "f1"), per_class[:3]):
            assert one(out, metric, **{"class": name}).value == pytest.approx(values[k], abs=TOL)
    for average in ("macro", "weighted"):
        values = precision_recall_fscore_support(y, d, labels=labels, average=average, zero_division=0)
        for metric, value in zip(("precision", "recall", "f1"), values[:3]):
            assert one(out, f"{metric}_{average}").value == pytest.approx(value, abs=TOL)
    expected = confusion_matrix(y, d, labels=labels)
    cells = [m for m in out if m.metric == "confusion_matrix"]
    assert [m.value for m in cells] == expected.ravel().tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_probability_metrics_equal_sklearn(seed):
    ctx, y, _, p = multiclass_case(seed)
    out = performance.run(ctx)
    labels = list(range(4))
    auc = one(out, "roc_auc", multi_class="ovr", average="macro")
    assert auc.value == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels), abs=TOL)
    ap = average_precision_score(label_binarize(y, classes=labels), p, average="macro")
    assert one(out, "average_precision").value == pytest.approx(ap, abs=TOL)
    assert one(out, "log_loss").value == pytest.approx(log_loss(y, p, labels=labels), abs=TOL)
    correct = (p.argmax(axis=1) == y).astype(int)
    confidence = p.max(axis=1)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=10, strategy="uniform")
    totals = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], confidence), minlength=10)
    ece = np.sum(totals[totals > 0] / y.size * np.abs(prob_true - prob_pred))
    m = one(out, "expected_calibration_error", confidence="top_label")
    assert m.value == pytest.approx(ece, abs=TOL)
    cells = [c for c in out if c.metric == "calibration_bin"]
    np.testing.assert_allclose([c.value for c in cells], prob_true, atol=TOL, rtol=0)


def test_multiclass_class_never_predicted():
    ctx, y, d, p = multiclass_case(3)
    d = np.where(d == 2, 0, d)  # nobody is predicted class_2
    out = performance.run(make_context(y, d, ctx.data.classes, probabilities=p))
    m = one(out, "precision", **{"class": "class_2"})
    assert m.value is None and m.ci is None and m.note == "undefined: no examples predicted as class class_2"
    assert one(out, "recall", **{"class": "class_2"}).value == 0.0
    assert one(out, "f1", **{"class": "class_2"}).value == 0.0
    labels = list(range(4))
    for average in ("macro", "weighted"):
        values = precision_recall_fscore_support(y, d, labels=labels, average=average, zero_division=0)
        for metric, value in zip(("precision", "recall", "f1"), values[:3]):
            assert one(out, f"{metric}_{average}").value == pytest.approx(value, abs=TOL)


def test_multiclass_class_absent_from_labels_and_predictions():
    ctx, y, d, p = multiclass_case(4)
    keep = (y != 3) & (d != 3)
    y, d, p = y[keep], d[keep], p[keep]
    out = performance.run(make_context(y, d, ctx.data.classes, probabilities=p))
    assert one(out, "f1", **{"class": "class_3"}).note == "undefined: class class_3 is neither in the labels nor predicted"
    assert one(out, "recall", **{"class": "class_3"}).value is None
    values = precision_recall_fscore_support(y, d, labels=list(range(4)), average="macro", zero_division=0)
    assert one(out, "f1_macro").value == pytest.approx(values[2], abs=TOL)
    # one-vs-rest over the classes present, with a note; scikit-learn has no value here
    auc = one(out, "roc_auc")
    expected = np.mean([roc_auc_score(y == k, p[:, k]) for k in range(3)])
    assert auc.value == pytest.approx(expected, abs=TOL) and "absent: class_3" in auc.note
    ap = np.mean([average_precision_score(y == k, p[:, k]) for k in range(3)])
    assert one(out, "average_precision").value == pytest.approx(ap, abs=TOL)


# --- contract ------------------------------------------------------------------------------


def test_every_defined_scalar_has_an_interval():
    ctx, *_ = multiclass_case(0)
    for m in performance.run(ctx):
        assert m.check == "performance" and m.group is None
        if m.metric in {"confusion_matrix", "calibration_bin"}:
            assert m.ci is None
        elif m.value is not None:
            low, high = m.ci
            assert low <= high and m.n == 600


def test_interval_contains_the_point_estimate():
    ctx, *_ = binary_case(0, n=2000)
    out = performance.run(ctx)
    for metric in ("accuracy", "balanced_accuracy", "f1", "roc_auc", "average_precision", "log_loss"):
        m = one(out, metric)
        assert m.ci[0] < m.value < m.ci[1], metric


def test_deterministic_under_a_seed():
    first = performance.run(binary_case(1)[0])
    again = performance.run(binary_case(1)[0])
    assert first == again
    ctx, y, d, p = binary_case(1)
    other = performance.run(make_context(y, d, ("no", "yes"), 1, probabilities=p, scores=p[:, 1], seed=7))
    assert [m.value for m in other] == [m.value for m in first]
    assert [m.ci for m in other] != [m.ci for m in first]


def test_no_bootstrap_means_no_intervals():
    _, y, d, p = multiclass_case(0)
    out = performance.run(make_context(y, d, tuple("abcd"), probabilities=p, bootstrap=0))
    assert all(m.ci is None for m in out)


def test_json_round_trip():
    ctx, y, d, _ = multiclass_case(2)
    out = performance.run(make_context(y, np.where(d == 1, 0, d), ctx.data.classes, probabilities=ctx.predictions.probabilities))
    for m in out:
        text = json.dumps(m.to_dict(), allow_nan=False)
        assert Measurement.from_dict(json.loads(text)) == m


def test_inputs_are_not_mutated():
    ctx, y, d, p = binary_case(2)
    copies = [a.copy() for a in (y, d, p, ctx.predictions.scores)]
    performance.run(ctx)
    for before, after in zip(copies, (y, d, p, ctx.predictions.scores)):
        np.testing.assert_array_equal(before, after)


def test_mismatched_predictions_raise_a_check_error():
    with pytest.raises(CheckError, match="one decision per label"):
        performance.run(make_context(np.array([0, 1, 1]), np.array([0, 1]), ("a", "b"), 1))
    with pytest.raises(CheckError, match="class indices"):
        performance.run(make_context(np.array([0, 1, 1]), np.array([0, 1, 2]), ("a", "b"), 1))
