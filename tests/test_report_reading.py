"""The report reads as findings: warnings folded into one line, a failed check named without
its error message in the findings, no empty columns, class names in full."""

from __future__ import annotations

import dataclasses
import re

from audit.cli import main
from audit.report import charts, html
from audit.results import CheckFailure, read_result


def _audit(project, tmp_path, capsys, **spec):
    assert main(["run", str(project.spec(**spec)), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    capsys.readouterr()
    return read_result(tmp_path / "out" / "result.json")


def _summary(page: str) -> str:
    return page[page.index('<section id="summary">'):page.index("</section>")]


def test_warnings_are_one_line_with_the_list_behind_a_toggle(project, tmp_path, capsys):
    result = _audit(project, tmp_path, capsys, checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})
    result = dataclasses.replace(result, warnings=("first <warning>", "second warning", "third warning"))
    summary = _summary(html.render(result))
    toggle = re.search(r'<details class="warnings"><summary>(.*?)</summary>(.*?)</details>', summary, flags=re.S)
    assert toggle and toggle.group(1).startswith("3 warnings from the checks")
    assert toggle.group(2).count("<li>") == 3 and "first &lt;warning&gt;" in toggle.group(2)
    assert "Warning:" not in summary


def test_a_failed_check_is_named_and_its_message_stays_in_the_details(project, tmp_path, capsys):
    result = _audit(project, tmp_path, capsys, checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})
    message = "internal error: ZeroDivisionError: division by zero"
    result = dataclasses.replace(result, failures=(CheckFailure("fairness", message),))
    summary = _summary(html.render(result))
    findings = re.search(r'<ol class="key-findings">(.*?)</ol>', summary, flags=re.S).group(1)
    assert "The fairness check could not run" in findings and "internal error" not in findings
    reasons = re.search(r'<details class="reasons">(.*?)</details>', summary, flags=re.S).group(1)
    assert message in reasons


def _disparity_tables(page: str) -> list[str]:
    tables = re.findall(r'<table class="fair">(.*?)</table>', page, flags=re.S)
    return [t for t in tables if "<th>Disparity</th>" in t]


def test_the_status_column_appears_only_when_a_row_has_a_status(project, tmp_path, capsys):
    checks = {"explanations": {"enabled": False}, "robustness": {"enabled": False},
              "fairness": {"min_group_size": 1, "intersections": "none"}}
    result = _audit(project, tmp_path, capsys, checks=checks)
    # this model's false negative rates are 0 in some groups, so those ratios are undefined (a status)
    flagged = _disparity_tables(html.render(result))
    assert flagged and all("<th>Status</th>" in t and 'class="badge' in t for t in flagged)
    clean = dataclasses.replace(result, measurements=tuple(
        m for m in result.measurements if m.status is None and not m.metric.startswith("false_negative_rate")))
    plain = _disparity_tables(html.render(clean))
    assert plain and all("<th>Status</th>" not in t and 'class="badge' not in t for t in plain)


def test_confusion_matrix_labels_are_not_cut():
    classes = ["approved after manual review", "declined", "referred to a human underwriter"]
    svg = str(charts.confusion_matrix(classes, [[5, 1, 0], [2, 7, 1], [0, 1, 4]], title="t"))
    shown = re.findall(r"<text[^>]*><title>[^<]*</title>([^<]*)</text>", svg)
    assert sorted(set(shown)) == sorted(classes)
    width = int(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    # the row labels end at `left - 6`, so at ~7 px a character they start inside the picture
    left = int(re.search(r'<text x="(\d+)" y="\d+" text-anchor="end">', svg).group(1)) + 6
    assert left >= 7 * len(classes[2]) and width > left
