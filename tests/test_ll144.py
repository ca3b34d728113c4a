"""NYC Local Law 144 bias-audit tables: the rule's own example, hand counts, exact references.

References: the "culture fit" scoring example of 6 RCNY 5-301 (DCWP final rule, 2023); pandas
crosstab counts; scipy's binomtest exact interval; the chi-square test of the 2x2 table (equal
to the pooled z-test squared); Fisher's exact test enumerated by hand with math.comb; and the
missing-data bounds by enumerating the scenarios on copies of the count table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from audit.cli import main
from audit.profiles import ll144, ll144_report
from audit.profiles.settings import LL144Settings
from audit.results import AuditResult

SEX = {"column": "sex", "categories": ["Male", "Female"], "unknown": ["Unknown"]}
RACE = ["Hispanic or Latino", "White", "Black or African American", "Native Hawaiian or Pacific Islander", "Asian"]


def _measure_counts(tmp_path: Path, text: str, **settings) -> list:
    path = tmp_path / "counts.csv"
    path.write_text(text)
    spec = LL144Settings.model_validate(settings)
    return ll144.measure_counts(ll144.read_counts(path, spec), spec, level=0.95, min_group_size=1)


def _by(measurements, metric, table=None):
    return {tuple(m.group.values()): m for m in measurements
            if m.metric == metric and m.group is not None and (table is None or m.params.get("table") == table)}


# ---------------------------------------------------------------- the rule's worked example


def test_the_rules_scoring_example(tmp_path):
    """5-301 "culture fit" example: 92 men (54.3%), 76 women (44.7%), impact ratio 0.82; and the
    first five race/ethnicity rows. The rule prints rounded rates and two-decimal ratios."""
    rows = "sex,applicants,scored_above_median\nMale,92,50\nFemale,76,34\n"
    sex = _measure_counts(tmp_path, rows, method="scoring", sex=SEX)
    rates, ratios = _by(sex, "scoring_rate"), _by(sex, "impact_ratio")
    assert round(100 * rates[("Male",)].value, 1) == 54.3 and round(100 * rates[("Female",)].value, 1) == 44.7
    assert round(ratios[("Male",)].value, 2) == 1.00 and round(ratios[("Female",)].value, 2) == 0.82

    race_counts = [(28, 18), (40, 15), (32, 16), (8, 5), (24, 10)]
    text = "race,applicants,scored_above_median\n" + "".join(f"{r},{n},{k}\n" for r, (n, k) in zip(RACE, race_counts))
    race = _measure_counts(tmp_path, text, method="scoring", race_ethnicity={"column": "race", "categories": RACE})
    ratios, rates = _by(race, "impact_ratio"), _by(race, "scoring_rate")
    published = [1.00, 0.58, 0.78, 0.97, 0.65]
    assert [round(ratios[(r,)].value, 2) for r in RACE] == published
    # the rule shows 64.2% for 18 of 28 (64.29%: it truncates); the others round as printed
    assert math.floor(1000 * rates[(RACE[0],)].value) / 10 == 64.2
    assert [round(100 * rates[(r,)].value, 1) for r in RACE[1:]] == [37.5, 50.0, 62.5, 41.7]


# ---------------------------------------------------------------- row-level tables by hand


def _rows(seed: int = 0, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sex": rng.choice(["Male", "Female", "Unknown", None], n, p=[0.45, 0.45, 0.05, 0.05]),
        "race": rng.choice(["A", "B", "C", "declined"], n, p=[0.5, 0.3, 0.15, 0.05]),
    })
    frame["selected"] = (rng.random(n) < np.where(frame.sex == "Male", 0.5, 0.35)).astype(int)
    frame["score"] = rng.normal(size=n) + 0.3 * frame.selected
    return frame


SPECS = [ll144.CategoryColumn(**SEX), ll144.CategoryColumn(column="race", categories=["A", "B", "C"], unknown=["declined"])]


def _row_measurements(frame, basis="selection", exclude=False):
    codes = [ll144.category_codes(frame[s.column], s) for s in SPECS]
    options = ll144.TableOptions(basis, 0.95, exclude, 1)
    return ll144.measure_rows(codes, ["sex", "race_ethnicity"], SPECS, options, decisions=frame.selected.to_numpy(),
                              classes=["no", "yes"], positive=1, scores=frame.score.to_numpy())


def test_selection_tables_equal_a_hand_count():
    frame = _rows()
    out = _row_measurements(frame)
    known = frame[frame.sex.isin(["Male", "Female"]) & frame.race.isin(["A", "B", "C"])]
    counts = pd.crosstab([known.sex, known.race], known.selected)
    applicants, selected = _by(out, "applicants", "intersectional"), _by(out, "selected", "intersectional")
    for (sex, race), row in counts.iterrows():
        assert applicants[(sex, race)].value == row.sum() and selected[(sex, race)].value == row.get(1, 0)
    rates = {k: selected[k].value / applicants[k].value for k in applicants}
    top = max(rates.values())
    for key, m in _by(out, "impact_ratio", "intersectional").items():
        assert m.value == pytest.approx(rates[key] / top, abs=1e-12)
    unknown = {m.params["table"]: m.value for m in out if m.metric == "unknown_count"}
    assert unknown == {"sex": (~frame.sex.isin(["Male", "Female"])).sum(), "race_ethnicity": (frame.race == "declined").sum(),
                       "intersectional": len(frame) - len(known)}


def test_scoring_rates_use_the_median_of_the_full_sample():
    frame = _rows(1)
    out = _row_measurements(frame, basis="scoring")
    median = np.median(frame.score)  # every row, unknown categories included (5-301(c)(1))
    assert [m.value for m in out if m.metric == "median_score"] == [pytest.approx(median)]
    above = frame.score > median
    for (sex,), m in _by(out, "scoring_rate", "sex").items():
        assert m.value == pytest.approx(above[frame.sex == sex].mean(), abs=1e-12)


def test_a_classifying_tool_gets_tables_for_each_group():
    frame = _rows(2)
    decisions = np.random.default_rng(3).integers(0, 3, len(frame))
    codes = [ll144.category_codes(frame[s.column], s) for s in SPECS]
    out = ll144.measure_rows(codes, ["sex", "race_ethnicity"], SPECS, ll144.TableOptions("selection", 0.95, False, 1),
                             decisions=decisions, classes=["lead", "support", "analyse"], positive=None)
    rates = {(m.params["classification"], m.group["sex"]): m.value for m in out
             if m.metric == "selection_rate" and m.params["table"] == "sex"}
    for index, name in enumerate(["lead", "support", "analyse"]):
        for sex in ("Male", "Female"):
            assert rates[(name, sex)] == pytest.approx((decisions[frame.sex == sex] == index).mean(), abs=1e-12)


# ---------------------------------------------------------------- intervals and tests


def test_rate_intervals_are_exact_binomial_intervals():
    low, high = ll144.clopper_pearson(np.array([0, 7, 30]), np.array([30, 30, 30]), 0.95)
    for i, k in enumerate([0, 7, 30]):
        reference = stats.binomtest(k, 30).proportion_ci(0.95, method="exact")
        assert (low[i], high[i]) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert high[0] > 0 and low[2] < 1  # never a point at 0 or 1


def test_ratio_interval_is_the_ratio_of_exact_ends_at_root_level():
    level = math.sqrt(0.95)
    a = stats.binomtest(12, 40).proportion_ci(level, method="exact")
    b = stats.binomtest(30, 50).proportion_ci(level, method="exact")
    assert ll144.ratio_interval(12, 40, 30, 50, 0.95) == pytest.approx((a.low / b.high, a.high / b.low), rel=1e-9)
    assert ll144.ratio_interval(0, 40, 30, 50, 0.95)[0] == 0.0


def test_large_counts_get_the_z_test_small_counts_fishers():
    p, test = ll144.two_sample_test(120, 400, 160, 400)
    chi2 = stats.chi2_contingency([[120, 280], [160, 240]], correction=False)
    assert test == "z" and p == pytest.approx(chi2.pvalue, rel=1e-10)
    p, test = ll144.two_sample_test(1, 6, 5, 7)
    assert test == "fisher" and p == pytest.approx(_fisher_by_hand(1, 6, 5, 7), rel=1e-12)


def _fisher_by_hand(x, n, y, m):
    """Two-sided Fisher: the probability of every table as likely as, or less than, the observed."""
    total = x + y
    def probability(k):
        return math.comb(n, k) * math.comb(m, total - k) / math.comb(n + m, total)
    observed = probability(x)
    support = range(max(0, total - m), min(n, total) + 1)
    return sum(probability(k) for k in support if probability(k) <= observed * (1 + 1e-7))


# ---------------------------------------------------------------- missing-demographics bounds


def test_bounds_on_a_constructed_case():
    """A: 5 of 10 selected, B: 8 of 10, 5 unknown. Worked by hand in the README's terms."""
    n, s, everyone = np.array([10, 10]), np.array([5, 8]), np.array([True, True])
    rate_min, rate_max, ratio_min, ratio_max = ll144.worst_case_bounds(n, s, 5, everyone)
    assert rate_min == pytest.approx([5 / 15, 8 / 15]) and rate_max == pytest.approx([10 / 15, 13 / 15])
    # A lowest: all unknowns in A, none selected (5/15 over 8/10); highest: all in B, none selected
    assert ratio_min == pytest.approx([(5 / 15) / 0.8, 1.0]) and ratio_max == pytest.approx([0.5 / (8 / 15), 1.0])
    rate_min, rate_max, ratio_min, ratio_max = ll144.proportional_bounds(n, s, 5, everyone)
    assert rate_min == pytest.approx([0.4, 0.64]) and rate_max == pytest.approx([0.6, 0.84])
    assert ratio_min == pytest.approx([0.4 / 0.84, 1.0]) and ratio_max == pytest.approx([0.6 / 0.64, 1.0])


def test_worst_case_bounds_equal_the_scenarios_enumerated():
    rng = np.random.default_rng(5)
    n = rng.integers(5, 60, 4)
    s = rng.integers(0, n + 1)
    unknown, everyone = 17, np.ones(4, bool)
    tables = [(n, s)] + [(n + unknown * (np.arange(4) == j), s + add * (np.arange(4) == j))
                         for j in range(4) for add in (0, unknown)]
    ratios = np.array([(k / m) / (k / m).max() for m, k in tables])
    _, _, low, high = ll144.worst_case_bounds(n, s, unknown, everyone)
    assert low == pytest.approx(ratios.min(axis=0)) and high == pytest.approx(ratios.max(axis=0))


def test_no_unknowns_no_room():
    n, s = np.array([40, 60]), np.array([10, 30])
    for bounds in (ll144.worst_case_bounds(n, s, 0, np.ones(2, bool)), ll144.proportional_bounds(n, s, 0, np.ones(2, bool))):
        assert list(bounds[2]) == pytest.approx([0.25 / 0.5, 1.0]) and list(bounds[3]) == pytest.approx([0.5, 1.0])


# ---------------------------------------------------------------- the 2% exclusion and the dates


def test_small_categories_are_excluded_with_the_disclosure(tmp_path):
    text = "race,applicants,selected\nA,500,100\nB,480,150\nC,15,12\n"
    out = _measure_counts(tmp_path, text, exclude_small_categories=True, exclusion_justification="too few <b>",
                          race_ethnicity={"column": "race", "categories": ["A", "B", "C"]})
    ratios = _by(out, "impact_ratio")
    assert ("C",) not in ratios  # 15 of 995 = 1.5%: no impact ratio, so C (80%) is not the reference
    assert ratios[("B",)].value == 1.0 and ratios[("A",)].value == pytest.approx(0.2 / (150 / 480))
    assert _by(out, "excluded_share")[("C",)].value == pytest.approx(15 / 995)
    result = _result(out, exclude_small_categories=True, exclusion_justification="too few <b>",
                     race_ethnicity={"column": "race", "categories": ["A", "B", "C"]})
    summary = ll144_report.to_markdown(result)
    assert "C: 15 applicants, rate 80.0%" in summary and "too few &lt;b&gt;" in summary


def _result(measurements, **settings) -> AuditResult:
    spec = LL144Settings.model_validate(settings)
    return AuditResult(name="t", measurements=tuple(measurements), data={}, model={},
                       provenance={"finished": "2024-02-29T12:00:00", "profiles": {"names": ["ll144"], "ll144": spec.model_dump(mode="json")}})


def test_the_audit_is_valid_for_one_year():
    result = _result([], sex=SEX)
    assert ll144_report.audit_dates(result) == ("2024-02-29", "2025-02-28")
    result = _result([], sex=SEX, audit_date="2025-06-30")
    assert ll144_report.audit_dates(result) == ("2025-06-30", "2026-06-30")


def test_the_csv_holds_the_numbers_of_the_result(tmp_path):
    out = _row_measurements(_rows())
    result = _result(out, sex=SEX, race_ethnicity=SPECS[1].model_dump())
    rows = list(csv.DictReader(io.StringIO(ll144_report.to_csv(result))))
    ratios = _by(out, "impact_ratio", "intersectional")
    for row in rows:
        if row["table"] == "intersectional" and row["impact_ratio"]:
            assert float(row["impact_ratio"]) == ratios[(row["sex"], row["race_ethnicity"])].value
    assert len(rows) == 2 + 3 + 6


def test_csv_cells_never_start_a_formula(tmp_path):
    text = "sex,applicants,selected\n=HYPERLINK(1),10,3\nB,10,5\n"
    settings = {"sex": {"column": "sex", "categories": ["=HYPERLINK(1)", "B"]}}
    out = _measure_counts(tmp_path, text, **settings)
    rows = list(csv.DictReader(io.StringIO(ll144_report.to_csv(_result(out, **settings)))))
    assert rows[0]["sex"] == "'=HYPERLINK(1)" and rows[1]["sex"] == "B"


def test_a_bad_audit_date_is_refused_at_the_boundary():
    with pytest.raises(ValueError):
        LL144Settings.model_validate({"sex": SEX, "audit_date": "last Tuesday"})


# ---------------------------------------------------------------- end to end and bad input


def _project(tmp_path: Path, ll144_settings: dict | None = None, model: dict | None = None, **report) -> Path:
    frame = _rows(4)
    frame["label"] = frame.selected
    frame.to_csv(tmp_path / "applicants.csv", index=False)
    spec = {
        "name": "screen", "data": {"kind": "tabular", "path": "applicants.csv", "label": {"column": "label", "classes": [0, 1]},
                                   "sensitive": [{"column": "sex"}, {"column": "race"}]},
        "model": model or {"kind": "predictions", "decision_column": "selected", "decision_positive": [1], "score_column": "score",
                           "score_type": "score"},
        "statistics": {"bootstrap": 20},
        "report": {"profiles": ["ll144"], "ll144": ll144_settings or {"sex": SEX, "race_ethnicity": SPECS[1].model_dump()}} | report,
        "thresholds": ["impact_ratio >= 0.5"],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_writes_the_pack_and_the_counts_route_agrees(tmp_path, capsys):
    spec = _project(tmp_path)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="ll144"' in page and "ll144" in result["checks_run"]
    assert any(f["metric"] == "impact_ratio" for f in result["findings"])
    # the same people given as aggregate counts give the same tables
    frame = pd.read_csv(tmp_path / "applicants.csv", keep_default_na=False)
    frame["sex"] = frame.sex.replace("", "Unknown")
    grouped = frame.groupby(["sex", "race"]).selected.agg(["size", "sum"]).reset_index()
    grouped.columns = ["sex", "race", "applicants", "selected"]
    grouped.to_csv(tmp_path / "counts.csv", index=False)
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"sex": SEX, "race_ethnicity": SPECS[1].model_dump()}))
    assert main(["ll144", str(tmp_path / "counts.csv"), "--settings", str(tmp_path / "settings.yaml"),
                 "--out", str(tmp_path / "counts_out")]) == 0
    from_rows = (tmp_path / "out" / "ll144.csv").read_text().splitlines()
    from_counts = (tmp_path / "counts_out" / "ll144.csv").read_text().splitlines()
    assert from_rows == from_counts


def _bad(code, capsys, out: Path, *needles):
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists() or not list(out.iterdir())


def test_a_value_outside_the_declared_categories(tmp_path, capsys):
    spec = _project(tmp_path, {"sex": {"column": "sex", "categories": ["Male", "Female"]}})
    code = main(["run", str(spec), "--out", str(tmp_path / "out")])
    _bad(code, capsys, tmp_path / "out", "'Unknown'", "outside the declared categories")


def test_a_scoring_profile_without_scores(tmp_path, capsys):
    spec = _project(tmp_path, {"method": "scoring", "sex": SEX},
                    model={"kind": "predictions", "decision_column": "selected", "decision_positive": [1]})
    _bad(main(["run", str(spec), "--out", str(tmp_path / "out")]), capsys, tmp_path / "out", "scoring", "no scores")


def test_profile_flag_without_settings(project, tmp_path, capsys):
    code = main(["run", str(project.spec()), "--out", str(tmp_path / "out"), "--profile", "ll144"])
    _bad(code, capsys, tmp_path / "out", "report.ll144 is missing")


@pytest.mark.parametrize("row, needle", [("Male,-3,0", "not a whole number"), ("Male,10,12", "above applicants"),
                                         ("Male,ten,1", "not a whole number"), ("Martian,10,1", "outside the declared")])
def test_bad_counts(tmp_path, capsys, row, needle):
    (tmp_path / "counts.csv").write_text(f"sex,applicants,selected\nFemale,10,3\n{row}\n")
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"sex": SEX}))
    code = main(["ll144", str(tmp_path / "counts.csv"), "--settings", str(tmp_path / "settings.yaml"), "--out", str(tmp_path / "o")])
    _bad(code, capsys, tmp_path / "o", needle)


def test_the_bundled_counts_example_reproduces_the_rule(tmp_path, capsys):
    from audit.resources import bundled

    folder = bundled("examples") / "ll144_counts"
    assert main(["ll144", str(folder / "counts.csv"), "--settings", str(folder / "settings.yaml"), "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "ll144.md").read_text()
    assert "| Male | 92 | 50 | 54.3% | 1.000 |" in summary and "| Female | 76 | 34 | 44.7% | 0.823 |" in summary
    assert "after **2024-04-06**" in summary
