"""Model card, key findings, custom templates and PDF output of the report."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from audit import write_report
from audit.cli import main
from audit.config import load_config
from audit.errors import ConfigError
from audit.report import modelcard
from audit.report.facts import facts
from audit.results import AuditResult, Measurement
from audit.runner import run_audit

HEADINGS = [
    "Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
    "Quantitative analyses", "Ethical considerations", "Caveats and recommendations",
]


def _written(project, **spec):
    """The audit's folder, written by the library call (these tests are not about the CLI)."""
    out = project.root / "out"
    config = load_config(project.spec(**spec))
    write_report(run_audit(config), out, templates=config.report.templates)
    return out


def _run(project, capsys, *extra, **spec):
    out = project.root / "out"
    code = main(["run", str(project.spec(**spec)), "--out", str(out), *extra])
    return code, out, capsys.readouterr()


def test_model_card_follows_mitchell_and_takes_prose_from_the_spec(project, capsys):
    card = {"intended_use": "Ranking <b>test</b> applicants | internal", "training_data": "Synthetic rows."}
    out = _written(project, model_card=card)
    text = (out / "model_card.md").read_text()
    positions = [text.index(f"## {heading}\n") for heading in HEADINGS]
    assert positions == sorted(positions)
    assert "Ranking &lt;b&gt;test&lt;/b&gt; applicants \\| internal" in text  # escaped for Markdown
    assert "Synthetic rows." in text
    report = (out / "report.html").read_text()
    assert 'id="model-card"' in report and "Ranking &lt;b&gt;test&lt;/b&gt;" in report


def test_model_card_numbers_are_the_measurements(project):
    result = run_audit(load_config(project.spec()))
    sections = {s.title: s for s in modelcard.build(result)}
    header, rows = sections["Quantitative analyses"].tables[0]
    accuracy = next(m for m in result.select("performance", "accuracy") if m.group is None)
    assert ["accuracy", f"{accuracy.value:.3f}", f"[{accuracy.ci[0]:.3f}, {accuracy.ci[1]:.3f}]"] in rows
    assert "Not stated in the spec (model_card.intended_use)" in sections["Intended use"].paragraphs[0]
    factors = sections["Factors"].tables[0][1]
    female = next(r for r in factors if r[:2] == ["sex", "F"])
    assert female[2] == f"{int((project.frame.sex == 'F').sum()):,}"


def _result(measurements, findings=()):
    from audit.gate import GateOutcome

    counts = {v: sum(f.verdict == v for f in findings) for v in ("pass", "warn", "fail", "inconclusive")}
    return AuditResult(
        name="x", measurements=tuple(measurements), provenance={}, data={}, model={},
        findings=tuple(findings), gate=GateOutcome("pass", counts, "fail"),
    )


def test_key_findings_rank_thresholds_first_then_fairness():
    from audit.gate import Finding

    failed = Finding("accuracy >= 0.9", "accuracy", None, 0.9, None, "fail", "point", "fail", "0.85 violates >= 0.9", ())
    ratio = Measurement("fairness", "demographic_parity_ratio", 0.5, params={
        "sensitive": "sex", "method": "between_groups", "lowest_group": "sex=F", "highest_group": "sex=M"})
    to_reference = Measurement("fairness", "demographic_parity_ratio", 0.1, group={"sex": "F"},
                               params={"sensitive": "sex", "method": "to_reference", "reference": "sex=M"})
    share = Measurement("data", "group_share", 0.5, group={"sex": "F"})  # sex is one column, not an intersection
    found = facts(_result([share, ratio, to_reference], [failed])).key_findings
    assert found[0].startswith("Threshold accuracy >= 0.9: fail")
    assert "sex=F is selected 0.50 times as often as sex=M" in found[1]
    assert len(found) == 2  # the against-the-reference value is not an extremes sentence


def test_key_findings_say_so_when_nothing_stands_out():
    assert facts(_result([])).key_findings[0].startswith("No threshold failed")


def test_spec_templates_folder_restyles_the_report(project, capsys):
    folder = project.root / "mytemplates"
    folder.mkdir()
    (folder / "report.css").write_text("body { background: #fafafa; } /* house-style-marker */")
    out = _written(project, report={"templates": "mytemplates"})
    report = (out / "report.html").read_text()
    assert "house-style-marker" in report and 'id="summary"' in report


def test_templates_folder_must_exist(project):
    with pytest.raises(ConfigError, match="report.templates: file not found"):
        load_config(project.spec(report={"templates": "nowhere"}))


def test_pdf_without_chromium_is_bad_input_and_writes_nothing(project, capsys, monkeypatch):
    monkeypatch.setenv("RAI_AUDIT_CHROMIUM", str(project.root / "no-such-chromium"))
    code, out, captured = _run(project, capsys, "--pdf")
    assert code == 2
    assert captured.err.count("\n") == 1 and "Chromium" in captured.err
    assert not out.exists()  # no empty folder left behind either (issue 18)


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"), reason="Chromium is not installed")
def test_pdf_is_printed_by_chromium(project, capsys):
    code, out, _ = _run(project, capsys, "--pdf")
    assert code == 0
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert not any(p.name.startswith(".") for p in Path(out).iterdir())
