"""The fairness engine against fairlearn, on many groups and on the edge cases, and its bootstrap.

Every per-group rate and every between-groups disparity of :mod:`audit.groups` (through
:func:`audit.checks.fairness.disparity_statistics`) is compared with fairlearn's
``MetricFrame`` and its disparity functions to 1e-12. The stratified multinomial bootstrap is
compared, in distribution, with an explicit resampling of rows within each cell, and the same
comparison is shown to reject two wrong draws, so it can fail.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, precision_score

from audit import groups
from audit.checks.fairness import disparity_statistics
from audit.config import SensitiveSpec
from audit.data import MISSING_GROUP, OUTSIDE_BINS, build_sensitive

TOL = 1e-12
LEVELS = {"a": 5, "b": 4, "c": 6}  # 120 crossed groups

# fairlearn's functions, named as our rates; PPV is undefined (NaN) without predicted positives
FAIRLEARN_RATES = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "true_negative_rate": true_negative_rate,
    "accuracy": accuracy_score,
    "positive_predictive_value": functools.partial(precision_score, zero_division=np.nan),
}
# fairlearn's disparity functions and the name of the same number here
FAIRLEARN_DISPARITIES = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
    "equal_opportunity_ratio": equal_opportunity_ratio,
}
# disparities fairlearn has no function for: MetricFrame(...).difference() / .ratio() of a rate
FRAME_DISPARITIES = {
    "false_positive_rate": "false_positive_rate",
    "false_negative_rate": "false_negative_rate",
    "predictive_parity": "positive_predictive_value",
}


# ---------------------------------------------------------------- helpers


def biased_data(seed: int, n: int = 8_000) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Three sensitive columns whose every cell has its own base rate, TPR and FPR."""
    rng = np.random.default_rng(seed)
    codes = {name: rng.integers(0, k, n) for name, k in LEVELS.items()}
    sensitive = pd.DataFrame({name: np.array([f"{name}{i}" for i in range(LEVELS[name])])[c] for name, c in codes.items()})
    cell = (codes["a"] * LEVELS["b"] + codes["b"]) * LEVELS["c"] + codes["c"]
    cells = int(np.prod(list(LEVELS.values())))
    base, tpr, fpr = (rng.uniform(low, high, cells)[cell] for low, high in ((0.1, 0.8), (0.3, 0.8), (0.05, 0.5)))
    # and each column shifts them, so single columns differ too, not only their cross
    shift = 0.04 * codes["a"] - 0.05 * codes["b"] + 0.03 * codes["c"]
    base = np.clip(base + np.abs(shift), 0.15, 0.85)
    tpr, fpr = np.clip(tpr + shift / 2 + 0.1, 0.1, 0.95), np.clip(fpr + shift / 2 + 0.1, 0.05, 0.8)
    labels = (rng.random(n) < base).astype(np.int64)
    decisions = np.where(labels == 1, rng.random(n) < tpr, rng.random(n) < fpr).astype(np.int64)
    return sensitive, labels, decisions


def engine(sensitive: pd.DataFrame, labels, decisions, *, intersections="all", n_classes=2):
    """Our cells, tables and groupings, as the fairness check builds them."""
    cells = groups.code_cells(sensitive)
    tables = groups.cell_tables(cells, np.asarray(labels), np.asarray(decisions), n_classes)
    return cells, tables, groups.groupings(cells, groups.crosses(cells.columns, intersections))


def statistics_of(tables, grouping, targets=(1,)) -> dict[str, np.ndarray]:
    counts = groups.one_vs_rest(groups.group_tables(tables, grouping))[..., list(targets), :]
    return disparity_statistics(counts, None)


def keys(grouping: groups.Grouping) -> list:
    """Our groups as fairlearn's by_group index spells them: a value, or a tuple for a cross."""
    if len(grouping.columns) == 1:
        return [label[grouping.columns[0]] for label in grouping.labels]
    return [tuple(label[c] for c in grouping.columns) for label in grouping.labels]


def fairlearn_features(sensitive: pd.DataFrame, grouping: groups.Grouping):
    columns = list(grouping.columns)
    return sensitive[columns[0]] if len(columns) == 1 else sensitive[columns]


def fairlearn_frame(labels, decisions, features) -> MetricFrame:
    return MetricFrame(metrics=FAIRLEARN_RATES, y_true=labels, y_pred=decisions, sensitive_features=features)


def assert_rates_equal_fairlearn(ours: dict, frame: MetricFrame, grouping, *, skip=()) -> None:
    by_group = frame.by_group.dropna(how="all")
    assert len(by_group) == grouping.size
    for rate in FAIRLEARN_RATES:
        if rate in skip:
            continue
        expected = by_group.loc[keys(grouping), rate].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(ours[rate][:, 0], expected, atol=TOL, rtol=0, err_msg=f"{grouping.name}: {rate}")


def assert_disparities_equal_fairlearn(ours: dict, frame: MetricFrame, labels, decisions, features, name: str) -> None:
    """Our disparities against fairlearn's functions and ``frame``'s difference() and ratio()."""
    for disparity, function in FAIRLEARN_DISPARITIES.items():
        expected = function(labels, decisions, sensitive_features=features)
        assert ours[disparity][0] == pytest.approx(expected, abs=TOL), f"{name}: {disparity}"
    differences, ratios = frame.difference(), frame.ratio()
    for disparity, rate in FRAME_DISPARITIES.items():
        assert ours[f"{disparity}_difference"][0] == pytest.approx(differences[rate], abs=TOL), f"{name}: {disparity}"
        assert ours[f"{disparity}_ratio"][0] == pytest.approx(ratios[rate], abs=TOL), f"{name}: {disparity}"


def assert_equals_fairlearn(ours: dict, grouping, sensitive, labels, decisions, name: str = "") -> None:
    """Every rate and disparity of one grouping (one target) equals fairlearn's."""
    features = fairlearn_features(sensitive, grouping)
    frame = fairlearn_frame(labels, decisions, features)
    assert_rates_equal_fairlearn(ours, frame, grouping)
    assert_disparities_equal_fairlearn(ours, frame, labels, decisions, features, name or grouping.name)


# ---------------------------------------------------------------- many groups, every grouping


# fairlearn takes about 4 ms per metric per group and more per row, so each seed checks some
# of the seven groupings of its 120-cell lattice (8,000 rows, ~67 per cell); together the
# seeds cover every grouping, and the whole comparison stays near five seconds
SEEDS_AND_GROUPINGS = [(0, ("a", "b", "c", "a+b+c")), (1, ("a+b", "a+c")), (2, ("b+c",))]


@pytest.mark.parametrize("seed, names", SEEDS_AND_GROUPINGS)
def test_every_grouping_equals_fairlearn_on_many_groups(seed, names):
    sensitive, labels, decisions = biased_data(seed)
    cells, tables, chosen = engine(sensitive, labels, decisions)
    assert cells.count == 120
    assert [g.name for g in chosen] == ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]
    assert [g.size for g in chosen] == [5, 4, 6, 20, 30, 24, 120]
    checked = [g for g in chosen if g.name in names]
    assert len(checked) == len(names)
    for grouping in checked:
        ours = statistics_of(tables, grouping)
        assert not any(np.isnan(ours[rate]).any() for rate in FAIRLEARN_RATES)  # no edge case here
        assert_equals_fairlearn(ours, grouping, sensitive, labels, decisions)
        assert ours["demographic_parity_difference"][0] > 0.05  # the groups do differ


# ---------------------------------------------------------------- edge cases


def edge_case_data(seed: int = 0, n: int = 400) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["g1", "g2", "g3"], n)
    labels = rng.integers(0, 2, n)
    rate = np.select([group == "g1", group == "g2"], [0.7, 0.4], 0.2)
    decisions = (rng.random(n) < rate).astype(np.int64)
    return pd.DataFrame({"group": group}), labels, decisions


def with_rows(sensitive, labels, decisions, group: str, y: list[int], d: list[int]):
    extra = pd.DataFrame({"group": [group] * len(y)})
    return (
        pd.concat([sensitive, extra], ignore_index=True),
        np.concatenate([labels, y]).astype(np.int64),
        np.concatenate([decisions, d]).astype(np.int64),
    )


def test_a_group_of_three_rows_is_kept_and_equals_fairlearn():
    sensitive, labels, decisions = with_rows(*edge_case_data(), "tiny", [1, 0, 1], [1, 0, 0])
    _, tables, (grouping,) = engine(sensitive, labels, decisions)
    ours = statistics_of(tables, grouping)
    tiny = keys(grouping).index("tiny")
    assert ours["true_positive_rate"][tiny, 0] == 0.5 and ours["positive_predictive_value"][tiny, 0] == 1.0
    assert ours["true_positive_rate"][tiny, 0] == 0.5  # kept, not dropped
    assert_equals_fairlearn(ours, grouping, sensitive, labels, decisions)


def test_a_group_without_positives_is_undefined_and_left_out_of_the_extremes():
    sensitive, labels, decisions = with_rows(*edge_case_data(1), "nopos", [0] * 12, [1, 0] * 6)
    _, tables, (grouping,) = engine(sensitive, labels, decisions)
    ours = statistics_of(tables, grouping)
    at = keys(grouping).index("nopos")
    features = sensitive["group"]
    full = fairlearn_frame(labels, decisions, features)
    # fairlearn scores the undefined rates 0; here they are NaN, never 0
    assert full.by_group.loc["nopos", "true_positive_rate"] == 0.0
    assert full.by_group.loc["nopos", "false_negative_rate"] == 0.0
    assert np.isnan(ours["true_positive_rate"][at, 0]) and np.isnan(ours["false_negative_rate"][at, 0])
    assert ours["false_positive_rate"][at, 0] == 0.5
    assert_rates_equal_fairlearn(ours, full, grouping, skip=("true_positive_rate", "false_negative_rate"))

    # the disparities resting on TPR or FNR alone equal fairlearn's without that group's rows
    kept = (features != "nopos").to_numpy()
    rest = (labels[kept], decisions[kept])
    without = fairlearn_frame(*rest, features[kept])
    for name in ("difference", "ratio"):
        expected = {"difference": equal_opportunity_difference, "ratio": equal_opportunity_ratio}[name]
        assert ours[f"equal_opportunity_{name}"][0] == pytest.approx(expected(*rest, sensitive_features=features[kept]), abs=TOL)
        assert ours[f"false_negative_rate_{name}"][0] == pytest.approx(
            getattr(without, name)()["false_negative_rate"], abs=TOL
        )
        # fairlearn with the group counts its invented 0 and finds a larger gap
        fairlearn_full = getattr(full, name)()["true_positive_rate"]
        assert abs(ours[f"equal_opportunity_{name}"][0] - fairlearn_full) > 0.1
    # equalized odds: TPR over the defined groups, FPR over all of them (the group has negatives)
    assert ours["equalized_odds_difference"][0] == pytest.approx(
        max(without.difference()["true_positive_rate"], full.difference()["false_positive_rate"]), abs=TOL
    )
    assert ours["equalized_odds_ratio"][0] == pytest.approx(
        min(without.ratio()["true_positive_rate"], full.ratio()["false_positive_rate"]), abs=TOL
    )
    # the rates that are defined are untouched: demographic parity equals fairlearn's on all rows
    assert ours["demographic_parity_difference"][0] == pytest.approx(
        demographic_parity_difference(labels, decisions, sensitive_features=features), abs=TOL
    )


def test_missing_sensitive_values_form_their_own_group():
    rng = np.random.default_rng(2)
    n = 1_000
    frame = pd.DataFrame(
        {
            "race": rng.choice(np.array(["x", "y", None], dtype=object), n, p=[0.45, 0.35, 0.2]),
            "code": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 4, n).astype(float)),
        }
    )
    sensitive = build_sensitive(frame, [SensitiveSpec(column="race"), SensitiveSpec(column="code")], max_groups=100)
    assert (sensitive["race"] == MISSING_GROUP).sum() == frame["race"].isna().sum() > 0
    assert (sensitive["code"] == MISSING_GROUP).sum() == frame["code"].isna().sum() > 0
    assert set(sensitive["code"]) == {"1", "2", "3", MISSING_GROUP}  # integral floats without '.0'
    labels = rng.integers(0, 2, n)
    decisions = rng.integers(0, 2, n)
    _, tables, chosen = engine(sensitive, labels, decisions)
    for grouping in chosen:
        ours = statistics_of(tables, grouping)
        assert any(MISSING_GROUP in label.values() for label in grouping.labels)
        assert_equals_fairlearn(ours, grouping, sensitive, labels, decisions)


def test_a_group_never_predicted_positive_has_no_ppv():
    sensitive, labels, decisions = with_rows(*edge_case_data(3), "never", [1, 0, 1, 0, 0], [0] * 5)
    _, tables, (grouping,) = engine(sensitive, labels, decisions)
    ours = statistics_of(tables, grouping)
    at = keys(grouping).index("never")
    assert np.isnan(ours["positive_predictive_value"][at, 0])
    assert ours["selection_rate"][at, 0] == 0.0 and ours["true_positive_rate"][at, 0] == 0.0
    assert_equals_fairlearn(ours, grouping, sensitive, labels, decisions)
    features = sensitive["group"]
    # precision_score's default scores it 0 (with a warning), which would set the minimum
    with pytest.warns(UndefinedMetricWarning):
        zeroed = MetricFrame(metrics=precision_score, y_true=labels, y_pred=decisions, sensitive_features=features)
    assert zeroed.by_group["never"] == 0.0
    assert zeroed.difference() > ours["predictive_parity_difference"][0] + 0.1


# ---------------------------------------------------------------- multiclass


def test_multiclass_one_vs_rest_equals_fairlearn_on_binarised_labels():
    rng = np.random.default_rng(0)
    n = 1_500
    sensitive = pd.DataFrame({"a": rng.choice(["p", "q", "r"], n), "b": rng.choice(["u", "v"], n)})
    labels = rng.integers(0, 3, n)
    noise = rng.integers(0, 3, n)
    shift = (sensitive["a"] == "p").to_numpy() & (rng.random(n) < 0.3)
    decisions = np.where(rng.random(n) < 0.6, labels, noise)
    decisions = np.where(shift, 0, decisions)  # group p is pushed toward class 0
    _, tables, chosen = engine(sensitive, labels, decisions, n_classes=3)
    for grouping in chosen:
        counts = groups.one_vs_rest(groups.group_tables(tables, grouping))
        assert counts.shape == (grouping.size, 3, 4)
        ours_all = disparity_statistics(counts, None)
        for k in range(3):
            y, d = (labels == k).astype(int), (decisions == k).astype(int)
            ours = {name: values[..., k : k + 1] for name, values in ours_all.items()}
            assert_equals_fairlearn(ours, grouping, sensitive, y, d, f"{grouping.name} class {k}")


# ---------------------------------------------------------------- the bootstrap


def bootstrap_data():
    """Four cells. Within a0 the two cells have nearly only positives and very different TPRs:
    resampling within cells keeps each cell's share of a0's positives nearly fixed, while a draw
    that lets cell sizes float (unstratified) moves that share and widens a0's TPR spread."""
    rng = np.random.default_rng(11)
    rows = []
    for a, b, size, base, tpr in (
        ("a0", "b0", 120, 0.95, 0.95), ("a0", "b1", 120, 0.95, 0.1), ("a1", "b0", 80, 0.5, 0.6), ("a1", "b1", 160, 0.5, 0.4)
    ):
        y = (rng.random(size) < base).astype(int)
        d = np.where(y == 1, rng.random(size) < tpr, rng.random(size) < 0.2).astype(int)
        rows.append(pd.DataFrame({"a": a, "b": b, "y": y, "d": d}))
    frame = pd.concat(rows, ignore_index=True)
    return frame[["a", "b"]], frame["y"].to_numpy(), frame["d"].to_numpy()


def row_resampling(cells: groups.Cells, labels, decisions, replicates, rng) -> tuple[np.ndarray, np.ndarray]:
    """TPR of a0 and |TPR(a0) - TPR(a1)| from an explicit resampling of rows within each cell."""
    positives = {"a0": np.zeros(replicates), "a1": np.zeros(replicates)}
    hits = {"a0": np.zeros(replicates), "a1": np.zeros(replicates)}
    for cell in range(cells.count):
        rows = np.flatnonzero(cells.codes == cell)
        drawn = rng.choice(rows, size=(replicates, rows.size), replace=True)
        level = cells.values["a"][cell]
        positives[level] += labels[drawn].sum(axis=1)
        hits[level] += (labels[drawn] & decisions[drawn]).sum(axis=1)
    tpr = {level: hits[level] / positives[level] for level in hits}
    return tpr["a0"], np.abs(tpr["a0"] - tpr["a1"])


def replicate_statistics(draws: np.ndarray, grouping: groups.Grouping) -> tuple[np.ndarray, np.ndarray]:
    """The same two statistics from replicates of cell tables ``(b, cells, 2, 2)``."""
    values = statistics_of(draws, grouping)
    return values["true_positive_rate"][:, 0, 0], values["equal_opportunity_difference"][:, 0]


def distributions_agree(ours: np.ndarray, reference: np.ndarray, z: float = 4.5) -> tuple[bool, str]:
    """Means and standard deviations equal within z standard errors of the replicate count.

    Standard errors: a mean of B replicates has sd / sqrt(B); a sample standard deviation has
    about sd / sqrt(2 (B - 1)); each difference of two independent estimates has sqrt(2) times.
    """
    b = min(ours.size, reference.size)
    sd = max(ours.std(ddof=1), reference.std(ddof=1))
    mean_gap, sd_gap = abs(ours.mean() - reference.mean()), abs(ours.std(ddof=1) - reference.std(ddof=1))
    mean_tol, sd_tol = z * sd * np.sqrt(2 / b), z * sd * np.sqrt(2 / (2 * (b - 1)))
    text = f"mean gap {mean_gap:.4f} (tol {mean_tol:.4f}), sd gap {sd_gap:.4f} (tol {sd_tol:.4f})"
    return bool(mean_gap <= mean_tol and sd_gap <= sd_tol), text


B = 2000


@pytest.fixture(scope="module")
def bootstrap_setup():
    sensitive, labels, decisions = bootstrap_data()
    cells, tables, chosen = engine(sensitive, labels, decisions, intersections="none")
    grouping = chosen[0]
    assert grouping.name == "a"
    reference = row_resampling(cells, labels, decisions, B, np.random.default_rng(1))
    return tables, grouping, reference


def test_stratified_replicates_are_distributed_as_row_resampling_within_cells(bootstrap_setup):
    tables, grouping, reference = bootstrap_setup
    draws = np.concatenate(list(groups.stratified_replicates(tables, B, np.random.default_rng(2))))
    ours = replicate_statistics(draws, grouping)
    for name, mine, theirs in zip(("TPR of a0", "TPR difference"), ours, reference):
        agree, text = distributions_agree(mine, theirs)
        assert agree, f"{name}: {text}"


def test_the_comparison_rejects_an_unstratified_draw(bootstrap_setup):
    tables, grouping, reference = bootstrap_setup
    flat = tables.reshape(-1)
    rng = np.random.default_rng(2)
    draws = rng.multinomial(flat.sum(), flat / flat.sum(), size=B).reshape(B, *tables.shape)
    agree, text = distributions_agree(replicate_statistics(draws, grouping)[0], reference[0])
    assert not agree, f"an unstratified draw passed: {text}"


def test_the_comparison_rejects_uniform_cell_probabilities(bootstrap_setup):
    tables, grouping, reference = bootstrap_setup
    sizes = tables.sum(axis=(1, 2))
    rng = np.random.default_rng(2)
    draws = rng.multinomial(sizes, np.full((sizes.size, 4), 0.25), size=(B, sizes.size)).reshape(B, *tables.shape)
    for mine, theirs in zip(replicate_statistics(draws, grouping), reference):
        agree, text = distributions_agree(mine, theirs)
        assert not agree, f"a uniform draw passed: {text}"


def test_every_replicate_keeps_each_cells_size_and_empty_entries():
    sensitive, labels, decisions = biased_data(4, n=3_000)
    decisions[(sensitive["a"] == "a0").to_numpy()] = 0  # some (label, decision) entries are empty
    _, tables, _ = engine(sensitive, labels, decisions)
    sizes = tables.sum(axis=(1, 2))
    empty = tables == 0
    assert empty.any()
    for chunk in groups.stratified_replicates(tables, 300, np.random.default_rng(0), max_bytes=50_000):
        np.testing.assert_array_equal(chunk.sum(axis=(2, 3)), np.broadcast_to(sizes, chunk.shape[:2]))
        assert not chunk[:, empty].any()
        assert (chunk >= 0).all()


def test_replicates_are_deterministic_under_a_seed_and_independent_of_chunking():
    sensitive, labels, decisions = biased_data(5, n=3_000)
    _, tables, _ = engine(sensitive, labels, decisions)

    def draw(seed, max_bytes):
        chunks = list(groups.stratified_replicates(tables, 250, np.random.default_rng(seed), max_bytes=max_bytes))
        return chunks, np.concatenate(chunks)

    one_chunks, whole = draw(3, 2**40)
    small_chunks, chunked = draw(3, 10 * tables.size * 8)
    assert len(one_chunks) == 1 and len(small_chunks) == 25
    np.testing.assert_array_equal(draw(3, 2**40)[1], whole)
    np.testing.assert_array_equal(chunked, whole)
    assert not np.array_equal(draw(4, 2**40)[1], whole)


@pytest.mark.parametrize("max_bytes", [1, 4_000, 64_000, 1_000_000])
def test_chunks_respect_max_bytes(max_bytes):
    sensitive, labels, decisions = biased_data(6, n=2_000)
    _, tables, _ = engine(sensitive, labels, decisions)
    per_replicate = tables.size * 8  # int64 counts: 120 cells x 2 x 2
    chunks = list(groups.stratified_replicates(tables, 700, np.random.default_rng(0), max_bytes=max_bytes))
    assert sum(len(c) for c in chunks) == 700
    assert all(c.shape[1:] == tables.shape for c in chunks)
    fits = max(1, max_bytes // per_replicate)
    assert [len(c) for c in chunks[:-1]] == [min(fits, 700)] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= fits
    for chunk in chunks:
        assert chunk.nbytes <= max(max_bytes, per_replicate)


# ---------------------------------------------------------------- groupings and crosses


def test_crosses_settings():
    columns = ("a", "b", "c")
    assert groups.crosses(columns, "all") == [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]
    assert groups.crosses(columns, "pairs") == [("a", "b"), ("a", "c"), ("b", "c")]
    assert groups.crosses(columns, "none") == []
    assert groups.crosses(columns, [["c", "a"]]) == [("c", "a")]
    assert groups.crosses(("a",), "all") == []
    assert groups.crosses(("a", "b"), "all") == [("a", "b")]


def test_groupings_follow_each_columns_level_order():
    frame = pd.DataFrame(
        {
            "age": [70, 30, 10, 50, 30, np.nan, 200, 10],
            "sex": ["M", "F", "M", None, "F", "M", "F", "M"],
        }
    )
    specs = [
        SensitiveSpec(column="age", bins=[0, 25, 45, 65, 120], labels=["<25", "25-44", "45-64", "65+"]),
        SensitiveSpec(column="sex"),
    ]
    sensitive = build_sensitive(frame, specs, max_groups=100)
    cells = groups.code_cells(sensitive)
    # bins in bin order (not alphabetical: '<25' sorts after '65+'), then outside and missing
    assert cells.levels["age"] == ("<25", "25-44", "45-64", "65+", OUTSIDE_BINS, MISSING_GROUP)
    assert cells.levels["sex"] == (MISSING_GROUP, "F", "M")
    age, sex, cross = groups.groupings(cells, [("sex", "age")])
    assert [label["age"] for label in age.labels] == list(cells.levels["age"])
    assert [label["sex"] for label in sex.labels] == [MISSING_GROUP, "F", "M"]
    assert cross.name == "sex+age"
    expected = [
        (s, a) for s in cells.levels["sex"] for a in cells.levels["age"]
        if ((sensitive["sex"] == s) & (sensitive["age"] == a)).any()
    ]
    assert [(label["sex"], label["age"]) for label in cross.labels] == expected
    # each cell maps to the group holding its values
    for grouping in (age, sex, cross):
        for cell, group in enumerate(grouping.cell_to_group):
            assert all(cells.values[c][cell] == v for c, v in grouping.labels[group].items())
    # and each row's cell holds the row's values
    for row in range(len(frame)):
        assert cells.values.iloc[cells.codes[row]].to_dict() == sensitive.iloc[row].astype(str).to_dict()


def test_groupings_list_single_columns_then_the_requested_crosses():
    sensitive, labels, decisions = biased_data(7, n=2_000)
    for setting, names in {
        "none": ["a", "b", "c"],
        "pairs": ["a", "b", "c", "a+b", "a+c", "b+c"],
        "all": ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"],
        (("c", "a"),): ["a", "b", "c", "c+a"],
    }.items():
        setting = [list(s) for s in setting] if isinstance(setting, tuple) else setting
        _, _, chosen = engine(sensitive, labels, decisions, intersections=setting)
        assert [g.name for g in chosen] == names
