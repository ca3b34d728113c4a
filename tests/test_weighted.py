"""Checks reading weighted distinct rows (a sharded run's summary) equal the same checks on the rows.

A sharded run hands the checks one entry per distinct row and its count (``AuditData.weights``).
Every number must equal the local run's: counts to the last bit, floats to 1e-12, intervals
included; row bootstraps the summary cannot reproduce are count-based in both runs, and
that count-based bootstrap is a row bootstrap (tested in distribution here).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.checks import data as data_check
from audit.checks import fairness, performance
from audit.config import AuditConfig, Checks, FairnessCheck, PerformanceCheck, SensitiveSpec, Statistics, TabularData
from audit.context import AuditContext, AuditData, Predictions
from audit.data import build_sensitive
from audit.profiles import ll144
from audit.scale import summaries
from audit import stats
from tests.decision_log import split

CLASSES = {2: ("no", "yes"), 3: ("low", "mid", "high")}


def _rows(n_classes: int, n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, Predictions]:
    """Rows with few distinct values (probabilities to one decimal), so entries are far fewer than rows."""
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({"region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
                              "sex": rng.choice(["F", "M"], n)})
    raw = rng.dirichlet(np.ones(n_classes) * 2, n)
    probabilities = np.round(raw, 1)
    probabilities[:, -1] = 1 - probabilities[:, :-1].sum(axis=1)
    probabilities = np.clip(probabilities, 0, 1)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(n_classes, p=p) for p in raw], dtype=np.int64)
    decisions = probabilities.argmax(axis=1).astype(np.int64)
    scores = probabilities[:, 1].copy() if n_classes == 2 else None
    return sensitive, labels, Predictions(decisions, probabilities, scores)


def _context(sensitive, labels, predictions, n_classes, weights=None, seed=5) -> AuditContext:
    specs = [SensitiveSpec(column="region", reference="north"), SensitiveSpec(column="sex")]
    config = AuditConfig.model_construct(
        name="weighted test",
        seed=seed,
        data=TabularData.model_construct(kind="tabular", sensitive=specs),
        checks=Checks(fairness=FairnessCheck(min_group_size=30), performance=PerformanceCheck()),
        statistics=Statistics(bootstrap=300),
    )
    data = AuditData(
        labels=labels,
        classes=CLASSES[n_classes],
        positive_index=1 if n_classes == 2 else None,
        sensitive=build_sensitive(sensitive, specs, max_groups=100),
        features=None,
        weights=weights,
    )
    return AuditContext(config=config, data=data, predictions=predictions)


def _weighted_context(sensitive, labels, predictions, n_classes) -> AuditContext:
    """The sharded run's view: shard summaries merged, their distinct rows weighted by their counts."""
    parts = []
    for rows in split(pd.DataFrame({"row": np.arange(labels.size)}), 5):
        at = rows.row.to_numpy()
        part = Predictions(predictions.decisions[at], predictions.probabilities[at],
                           None if predictions.scores is None else predictions.scores[at])
        parts.append(summaries.summarize(sensitive.iloc[at], labels[at], part, n_classes, rows_read=at.size))
    merged = summaries.merge(parts)
    distinct, entry_labels, entry_predictions = summaries.entries(merged)
    assert merged.counts.size < labels.size / 3  # the checks really read far fewer entries than rows
    return _context(distinct, entry_labels, entry_predictions, n_classes, weights=merged.counts)


def _measured(ctx: AuditContext) -> dict[str, tuple]:
    out = {}
    for check in (data_check, performance, fairness):
        for m in check.run(ctx):
            key = json.dumps([m.check, m.metric, m.group, m.params], sort_keys=True, default=str)
            assert key not in out
            out[key] = (m.value, m.ci, m.n, m.note, m.status)
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_checks_on_weighted_entries_equal_the_checks_on_rows(n_classes):
    sensitive, labels, predictions = _rows(n_classes)
    local = _measured(_context(sensitive, labels, predictions, n_classes))
    sharded = _measured(_weighted_context(sensitive, labels, predictions, n_classes))
    assert local.keys() == sharded.keys()
    intervals = 0
    for key, (value, ci, n, note, status) in local.items():
        other = sharded[key]
        assert (n, note, status) == other[2:], key
        assert (value is None) == (other[0] is None) and (ci is None) == (other[1] is None), key
        for a, b in zip([value, *(ci or ())], [other[0], *(other[1] or ())]):
            if a is not None:
                assert abs(a - b) <= 1e-12, (key, a, b)
        intervals += ci is not None
    assert intervals > 100  # the intervals are compared, not only the values
    if n_classes == 3:  # the multiclass AUC interval (a bootstrap) is among them
        assert any('"roc_auc"' in k and local[k][1] is not None for k in local)


def test_row_count_and_shares_are_weighted():
    sensitive, labels, predictions = _rows(2, n=500)
    ctx = _weighted_context(sensitive, labels, predictions, 2)
    assert ctx.data.n == 500 and ctx.data.labels.size < 500
    found = {(m.metric, json.dumps(m.group)): m for m in data_check.run(ctx)}
    assert found[("row_count", "null")].value == 500
    assert found[("group_share", '{"region": "east"}')].n == int((sensitive.region == "east").sum())


def _multiclass_replicates(labels, probabilities, counts, draws, seed) -> dict[str, np.ndarray]:
    present = np.unique(labels)
    statistic, _ = performance._multiclass_score_statistic(labels, probabilities, 10, present)
    return stats.replicate(statistic, draws(counts, 4000, np.random.default_rng(seed)))


def test_count_bootstrap_is_a_row_bootstrap_in_distribution():
    """Multinomial draws over the distinct rows by their counts resample rows: same mean and spread.

    The old row bootstrap (every row drawn with probability 1/n) and the count-based one agree
    in mean and standard deviation within sampling error over 4,000 replicates each; a wrong
    count bootstrap (each distinct row equally likely, ignoring its count) is told apart.
    """
    _, labels, predictions = _rows(3, n=2000, seed=3)
    rows = _multiclass_replicates(labels, predictions.probabilities, np.ones(labels.size, np.int64),
                                  lambda c, b, rng: stats.bootstrap_weights_chunks(c.size, b, rng), seed=1)
    first, counts = stats.distinct_rows([labels, *predictions.probabilities.T])
    assert counts.size < labels.size / 4
    entries = (labels[first], predictions.probabilities[first])
    by_count = _multiclass_replicates(*entries, counts, stats.bootstrap_count_chunks, seed=2)
    uniform = _multiclass_replicates(*entries, np.ones(counts.size, np.int64) * (labels.size // counts.size),
                                     stats.bootstrap_count_chunks, seed=2)
    for metric in ("roc_auc", "average_precision", "log_loss", "expected_calibration_error"):
        spread = rows[metric].std()
        assert abs(by_count[metric].mean() - rows[metric].mean()) < 4 * spread * np.sqrt(2 / 4000), metric
        assert abs(by_count[metric].std() / spread - 1) < 0.07, metric
    wrong = [abs(uniform[m].mean() - rows[m].mean()) / rows[m].std() for m in ("log_loss", "roc_auc")]
    assert max(wrong) > 1  # the test can fail: ignoring the counts moves the distribution


def test_multiclass_bootstrap_is_identical_for_rows_and_their_counts():
    _, labels, predictions = _rows(3, n=1500, seed=4)
    ctx_rows = _context(pd.DataFrame({"region": ["north"] * labels.size, "sex": "F"}), labels, predictions, 3)
    first, counts = stats.distinct_rows([labels, *predictions.probabilities.T])
    weighted = Predictions(predictions.decisions[first], predictions.probabilities[first], None)
    ctx_counts = _context(pd.DataFrame({"region": ["north"] * counts.size, "sex": "F"}), labels[first], weighted, 3,
                          weights=counts)
    left = {m.metric: m.ci for m in performance.run(ctx_rows) if m.metric in ("roc_auc", "average_precision", "log_loss")}
    right = {m.metric: m.ci for m in performance.run(ctx_counts) if m.metric in left}
    assert left == right and all(ci is not None and ci[0] < ci[1] for ci in left.values())


@pytest.mark.parametrize("method", ["selection", "scoring"])
def test_ll144_tables_from_weighted_entries_equal_the_rows(method):
    rng = np.random.default_rng(7)
    codes = [rng.integers(-1, 2, 400), rng.integers(0, 3, 400)]
    decisions = rng.integers(0, 2, 400)
    scores = np.round(rng.random(400), 1)
    frame = pd.DataFrame({"a": codes[0], "b": codes[1], "d": decisions, "s": scores})
    distinct = frame.groupby(list(frame.columns), sort=True).size().reset_index(name="count")
    settings = ll144.LL144Settings.model_validate({"method": method, "sex": {"column": "a", "categories": ["x", "y"]},
                                                   "race_ethnicity": {"column": "b", "categories": ["p", "q", "r"]}})
    names, specs = ll144.declared_columns(settings)
    options = ll144.TableOptions(method, 0.95, False, 30)

    def measured(table: pd.DataFrame, weights):
        found = ll144.measure_rows([table.a.to_numpy(), table.b.to_numpy()], names, specs, options,
                                   decisions=table.d.to_numpy(), classes=["no", "yes"], positive=1,
                                   scores=table.s.to_numpy(), weights=weights)
        return [m.to_dict() for m in found]

    assert measured(distinct, distinct["count"].to_numpy()) == measured(frame, None)


def test_weighted_median_is_the_median_of_the_repeated_rows():
    rng = np.random.default_rng(11)
    for _ in range(300):
        values = rng.integers(0, 6, rng.integers(1, 9)).astype(float)
        weights = rng.integers(0, 4, values.size)
        if weights.sum():
            assert stats.weighted_median(values, weights) == np.median(np.repeat(values, weights))


def test_weighted_counts_refuse_what_float64_cannot_count():
    from audit.groups import weighted_bincount

    assert weighted_bincount(np.array([0, 1, 1]), np.array([2**40, 3, 4]), 2).tolist() == [2**40, 7]
    with pytest.raises(ValueError, match="2\\*\\*53"):
        weighted_bincount(np.array([0, 1]), np.array([2**52, 2**52]), 2)
