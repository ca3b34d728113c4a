"""The fairness section of report.html: plain sentences, small groups and undefined rates
marked, every value escaped, and a size that grows with groups, never with rows."""

from __future__ import annotations

import html as html_lib
import re

import numpy as np
import pandas as pd
from markupsafe import escape

from audit.config import load_config
from audit.report import charts
from audit.report.fairness_view import fairness_view, group_label
from audit.report.html import environment, render
from audit.results import AuditResult, Measurement
from audit.runner import run_audit
from tests.conftest import make_frame

SCRIPT_PAYLOAD = "<script>alert(1)</script>"
WITH_REFERENCES = {"sensitive": [{"column": "sex", "reference": "M"}, {"column": "age", "bins": [0, 40, 120]}]}
SCORES = {"kind": "predictions", "score_column": "score"}


def _frame(rows: int = 300) -> pd.DataFrame:
    """The conftest data with an Adult-like score: it favours sex=M, so groups differ."""
    frame = make_frame(rows)
    rng = np.random.default_rng(1)
    logit = 1.5 * (frame.x1 - 1) - 0.5 * frame.x2 + 1.0 * (frame.sex == "M") - 0.8 + rng.normal(0, 1, rows)
    frame["score"] = 1 / (1 + np.exp(-logit))
    return frame


def _audit(project, frame: pd.DataFrame | None = None, name: str = "spec.yaml", **data) -> AuditResult:
    (_frame() if frame is None else frame).to_csv(project.root / "data.csv", index=False)
    return run_audit(load_config(project.spec(name, model=SCORES, data=WITH_REFERENCES | data)))


def _section(page: str) -> str:
    found = re.search(r'<section id="fairness">.*?</section>', page, flags=re.DOTALL)
    assert found, "no fairness section"
    return found.group(0)


def _text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", fragment))


def _sentences(section: str) -> list[str]:
    found = re.search(r'<ul class="findings">(.*?)</ul>', section, flags=re.DOTALL)
    assert found, "no sentences"
    return [" ".join(_text(item).split()) for item in re.findall(r"<li\b.*?</li>", found.group(1), flags=re.DOTALL)]


def _group_row(section: str, label: str) -> list[str]:
    """The cells of a group's row in its group table (the one with a Count column)."""
    for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", section, flags=re.DOTALL):
        cells = re.findall(r"<td\b[^>]*>(.*?)</td>", row, flags=re.DOTALL)
        if len(cells) >= 7 and _text(cells[0]).split()[0] == label:
            return cells
    raise AssertionError(f"no group row for {label}")


def test_section_opens_with_sentences_built_from_the_measurements(project):
    result = _audit(project)
    page = render(result)
    section = _section(page)
    assert '<a href="#fairness">' in page
    assert '<p class="lead">Whether the model treats groups (sex, age, and their combinations) alike' in section
    sentences = _sentences(section)
    ratio = next(
        m for m in result.select("fairness", "demographic_parity_ratio")
        # the policy params (issue 10.5: small_groups, missing, left_out) say which groups took part
        if {k: v for k, v in m.params.items() if k not in ("small_groups", "missing", "left_out")}
        == {"sensitive": "sex", "method": "between_groups"} | {k: m.params[k] for k in ("highest_group", "lowest_group")}
    )
    low_rate = next(m for m in result.select("fairness", "selection_rate") if m.group and group_label(m.group) == ratio.params["lowest_group"])
    expected = (
        f"Selection rate by sex ranges from {100 * low_rate.value:.1f}% ({ratio.params['lowest_group']}) to "
    )
    told = next(s for s in sentences if s.startswith("Selection rate by sex"))
    assert told.startswith(expected)
    assert f"a ratio of {ratio.value:.2f}" in told
    assert ("below" if ratio.value < 0.8 else "at or above") + " the four-fifths (0.8) rule of thumb" in told
    assert any(s.startswith("Selection rate by age ranges from") for s in sentences)
    # against the reference group, sex=M
    assert any(re.search(r"for sex=F is .*(times that for|against .* for) sex=M", s) for s in sentences), sentences
    assert "<svg" in section and "four-fifths rule (0.8)" in section


def test_an_insufficient_group_is_marked(project):
    frame = _frame()
    frame.loc[:9, "sex"] = "X"  # 10 rows, under the default minimum group size of 30
    section = _section(render(_audit(project, frame)))
    titles = re.findall(r'<tr class="insufficient">\s*<td>sex=X <span class="badge insufficient" title="([^"]*)">insufficient</span>', section)
    assert "insufficient: 10 rows, fewer than 30" in titles  # its row in the group table
    assert "a group in this comparison is smaller than the minimum group size" in titles  # against the reference
    assert re.search(r"<tr>\s*<td>sex=F</td>", section)  # a sufficient group is not marked
    assert not any("sex=X" in s for s in _sentences(section) if not s.startswith("insufficient"))
    assert "rest on groups smaller than the minimum group size" in section


def test_an_undefined_rate_shows_undefined_with_its_reason(project):
    frame = _frame()
    negatives = frame.index[frame.label == 0][:40]
    frame.loc[negatives, "sex"] = "X"  # a group with no actual positives: its true positive rate has no denominator
    result = _audit(project, frame)
    tpr = next(m for m in result.select("fairness", "true_positive_rate") if m.group == {"sex": "X"})
    assert tpr.value is None and tpr.status == "undefined"
    section = _section(render(result))
    cells = _group_row(section, "sex=X")
    # Group, Count, Selection rate, TPR, ...
    assert "undefined" in cells[3] and "0.000" not in cells[3]
    assert 'title="undefined: no actual positives in the group"' in cells[3]
    assert re.search(r'<p class="footnote"><sup>\d</sup> undefined: no actual positives in the group</p>', section)


def test_sensitive_values_are_escaped_in_the_fairness_section(project):
    frame = _frame()
    frame.loc[::7, "sex"] = SCRIPT_PAYLOAD
    page = render(_audit(project, frame))
    section = _section(page)
    assert SCRIPT_PAYLOAD not in page
    assert "<script>" not in section
    assert f"sex={escape(SCRIPT_PAYLOAD)}" in section  # rendered, escaped: the test would see a leak


def test_fairness_section_size_does_not_grow_with_rows(project):
    pages, sections = [], []
    for rows in (300, 30_000):
        _frame(rows).to_csv(project.root / f"rows{rows}.csv", index=False)
        result = _audit(project, name=f"rows{rows}.yaml", path=f"rows{rows}.csv")
        page = render(result)
        assert f"{rows:,}" in page  # the report really describes this data set
        pages.append(len(page.encode()))
        sections.append(len(_section(page).encode()))
    assert max(pages) <= 1.1 * min(pages), pages
    assert max(sections) <= 1.1 * min(sections), sections


def _multiclass_result() -> AuditResult:
    """Two classes' one-vs-rest rates for two groups, written by hand."""
    measurements = []
    for value in ("a", "b"):
        group = {"site": value}
        measurements.append(Measurement("fairness", "count", 50.0, group=group, n=50))
        for target, rate in (("0", 0.2 if value == "a" else 0.1), ("1", 0.5)):
            measurements.append(Measurement("fairness", "selection_rate", rate, group=group, ci=(rate - 0.05, rate + 0.05), n=50, params={"class": target}))
            measurements.append(Measurement("fairness", "base_rate", rate, group=group, n=50, params={"class": target}))
            measurements.append(Measurement("fairness", "true_positive_rate", None, group=group, n=50, params={"class": target},
                                            note="undefined: no actual positives in the group", status="undefined"))
    for target, ratio in (("0", 0.5), ("1", 1.0)):
        params = {"sensitive": "site", "method": "between_groups", "class": target, "highest_group": "site=a", "lowest_group": "site=b"}
        measurements.append(Measurement("fairness", "demographic_parity_difference", 0.1 if ratio < 1 else 0.0, n=100, params=params))
        measurements.append(Measurement("fairness", "demographic_parity_ratio", ratio, ci=(0.3, 0.7) if ratio < 1 else None, n=100, params=params))
    return AuditResult(name="hand", measurements=tuple(measurements), provenance={"ci_level": 0.9}, data={}, model={}, checks_run=("fairness",))


def test_multiclass_is_organised_by_class():
    view = fairness_view(_multiclass_result())
    assert view["multiclass"] and [c["name"] for c in view["classes"]] == ["0", "1"]
    assert view["sentences"][0]["text"].startswith("For class 0, selection rate by site ranges from 10.0% (site=b) to 20.0% (site=a)")
    assert "(90% CI 0.30 to 0.70)" in view["sentences"][0]["text"]
    section = environment().get_template("sections/fairness.html.j2").render(view={"fairness": view})
    assert len(re.findall(r'<details class="class"><summary>Class [01]', section)) == 2
    assert "undefined" in section


def test_ratio_bars_escape_labels_and_never_draw_undefined_as_zero():
    svg = charts.ratio_bars(
        [charts.StatusBar("<b>x</b>", 0.5, 0.4, 0.6), charts.StatusBar("gap", None), charts.StatusBar("weak", 0.9, status="insufficient")],
        title="t <i>", axis="ratio", line=0.8, line_label="four-fifths rule (0.8)",
    )
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    assert "<title>t &lt;i&gt;</title>" in svg
    assert svg.count("<rect") == 2  # no bar for the undefined value
    assert ">undefined</text>" in svg and "0.9 insufficient" in svg


def test_a_grouping_with_one_group_compares_nothing(project):
    frame = _frame()
    frame["sex"] = "F"
    section = _section(render(_audit(project, frame, sensitive=[{"column": "sex"}, {"column": "age", "bins": [0, 40, 120]}])))
    assert "Every row is in one group of sex, so there is nothing to compare it with." in section
    assert not any("by sex" in s for s in _sentences(section))
