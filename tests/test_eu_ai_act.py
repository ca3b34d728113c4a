"""The EU AI Act pack and the hiring-screen illustration that produces both packs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from audit.cli import main
from audit.profiles import eu_ai_act
from audit.report.format import number
from audit.resources import bundled
from audit.results import read_result
from tests.test_ll144 import SEX, SPECS, _project


def test_annex_iv_never_invents_what_the_provider_must_state(tmp_path):
    spec = _project(tmp_path, profiles=["ll144", "eu_ai_act"],
                    eu_ai_act={"intended_purpose": "Screening <script>alert(1)</script> CVs"})
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    annex = (tmp_path / "out" / "annex_iv.md").read_text()
    page = (tmp_path / "out" / "report.html").read_text()
    result = read_result(tmp_path / "out" / "result.json")
    statements = dict(eu_ai_act.sections(result)[0].items)
    assert statements["Human oversight measures (Annex IV 2(e); Article 14)"] == eu_ai_act.TO_COMPLETE
    assert "Screening &lt;script&gt;" in annex and "<script>alert" not in annex
    assert 'id="eu-ai-act"' in page and "<script>alert(1)" not in page
    # predictions-only: no robustness was tested, and the pack says so instead of inventing it
    robustness = dict(eu_ai_act.sections(result)[5].items)
    assert "Not tested by this audit" in robustness["Adversarial robustness"]
    accuracy = next(m for m in result.select("performance", "accuracy") if m.group is None)
    assert f"**accuracy:** {number(accuracy.value, 4)}" in annex


def test_the_hiring_screen_illustration_produces_both_packs(tmp_path, capsys):
    out = tmp_path / "hiring"
    assert main(["run", str(bundled("examples") / "hiring_screen.yaml"), "--out", str(out), "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"ll144.md", "ll144.csv", "annex_iv.md", "report.html", "result.json"} <= names
    result = json.loads((out / "result.json").read_text())
    ratios = [m for m in result["measurements"] if m["check"] == "ll144" and m["metric"] == "impact_ratio"
              and m["params"] == {"table": "sex"}]
    female = next(m for m in ratios if m["group"] == {"sex": "Female"})
    summary = (out / "ll144.md").read_text()
    assert "ILLUSTRATION" in (bundled("examples") / "hiring_screen.yaml").read_text()
    assert f"| Female | 5,421 | 412 | 7.6% | {female['value']:.3f} |" in summary
    assert "left out of this table: **135**" in summary  # race "Other" is declared unknown
    annex = (out / "annex_iv.md").read_text()
    assert "robust\\_accuracy" in annex and "Demonstrating the audit packs" in annex
