"""The metric catalogue and the facts step: one place says what a metric is, one place what the report says.

A new per-group rate is a catalogue entry beside the code that counts it, and it reaches the HTML
table, the glossary, ``compare`` and the gate without a renderer edit; every measurement an audit
emits is catalogued; every output states the audit's own interval level; the key findings, the
model card and the fairness section state the same four-fifths breaches, class by class.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from audit import checks, groups, load_config, run_audit
from audit.catalogue import Catalogue, Metric, catalogue
from audit.checks import fairness
from audit.cli import main
from audit.compare import compare, direction
from audit.config import Threshold
from audit.gate import check_metric_names
from audit.report import html, modelcard
from audit.report.facts import facts
from audit.report.fairness_view import fairness_view
from audit.results import AuditResult, Measurement
from tests.test_fairness import make_context

NEW_RATE = Metric("false_discovery_rate", "false discovery rate",
                  "Of a group's examples predicted positive, the share that are truly negative.",
                  better="lower", denominator="predicted positives", short="FDR", column=True, term="false discovery rate (FDR)")


@pytest.fixture
def fresh_catalogue():
    catalogue.cache_clear()
    yield
    catalogue.cache_clear()


def test_every_measurement_of_an_audit_is_catalogued(project):
    result = run_audit(load_config(project.spec()))
    assert set(result.checks_run) >= {"data", "performance", "fairness"}
    for m in result.measurements:
        entry = catalogue().get(m.metric)
        assert entry is not None and m.metric in catalogue().names(m.check), m
        if m.status == "undefined" and entry.denominator and m.check == "fairness" and m.group is not None:
            assert m.note == f"undefined: no {entry.denominator} in the group"


def test_catalogue_refuses_one_name_with_two_meanings_and_unknown_directions():
    with pytest.raises(ValueError, match="catalogued twice"):
        Catalogue({"a": (Metric("x", "x", better="higher"),), "b": (Metric("x", "x", better="lower"),)})
    with pytest.raises(ValueError, match="direction 'up'"):
        Metric("x", "x", better="up")


def test_a_new_group_rate_is_one_catalogue_entry(project, tmp_path, monkeypatch, fresh_catalogue):
    """The engine counts it, the check names it; the table, glossary, compare and gate follow unedited."""
    counted = groups.rate_parts

    def with_fdr(counts):
        parts = counted(counts)
        tp, fp = (counts[..., i].astype(np.float64) for i in (0, 1))
        return parts | {"false_discovery_rate": (fp, tp + fp)}

    monkeypatch.setattr(groups, "rate_parts", with_fdr)
    extended = (*fairness.CATALOGUE, NEW_RATE)
    monkeypatch.setattr(fairness, "CATALOGUE", extended)
    monkeypatch.setitem(checks.CHECKS, "fairness", dataclasses.replace(checks.CHECKS["fairness"], catalogue=extended))
    catalogue.cache_clear()

    config = load_config(project.spec(checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}}))
    result = run_audit(config)
    fdr = [m for m in result.select("fairness", "false_discovery_rate") if m.group == {"sex": "F"}]
    rows = project.frame.sex == "F"
    assert len(fdr) == 1 and fdr[0].n == rows.sum()
    page = html.render(result)
    table = re.search(r'id="fairness".*?</section>', page, flags=re.S).group(0)
    assert "<th>FDR</th>" in table.replace(' class="num"', "")
    assert "false discovery rate (FDR)" in page and str(escape(NEW_RATE.glossary)) in page
    assert direction("false_discovery_rate", {}) == "lower"
    worse = dataclasses.replace(result, measurements=tuple(
        dataclasses.replace(m, value=m.value + 0.1) if m.metric == "false_discovery_rate" and m.value is not None else m
        for m in result.measurements))
    changes = compare(result, worse, max_regression={"false_discovery_rate": 0.05}).changes
    judged = [c for c in changes if c.metric == "false_discovery_rate" and c.verdict == "fail"]
    assert judged and all(c.worsening == pytest.approx(0.1) for c in judged)
    check_metric_names([Threshold(metric="false_discovery_rate", max=0.5, group="each")], checks.metrics())


# ---------------------------------------------------------------- the audit's own interval level


def test_every_output_states_the_audits_interval_level(project, tmp_path, capsys):
    spec = project.spec(statistics={"bootstrap": 50, "ci_level": 0.8},
                        thresholds=[{"metric": "accuracy", "min": 0.1}],
                        checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 0
    console = capsys.readouterr().out
    assert "80% CI" in console and "95%" not in console
    files = {name: (tmp_path / "out" / name).read_text() for name in ("report.html", "summary.md", "model_card.md")}
    for name, text in files.items():
        assert "95%" not in text, name
    assert "80% CI" in files["summary.md"]
    assert "80% interval" in files["model_card.md"]
    assert "80% interval" in files["report.html"] and "in 80% of repeated samples" in files["report.html"]


# ---------------------------------------------------------------- multiclass: one set of facts


def _multiclass_result() -> AuditResult:
    """Three classes; class c is predicted for F far less often than for M."""
    rng = np.random.default_rng(5)
    n = 3000
    sex = rng.choice(["F", "M"], n)
    labels = rng.integers(0, 3, n)
    decisions = np.where(rng.random(n) < 0.8, labels, rng.integers(0, 3, n))
    decisions = np.where((sex == "F") & (decisions == 2) & (rng.random(n) < 0.8), 0, decisions)
    out = fairness.run(make_context(pd.DataFrame({"sex": sex}), labels, decisions, classes=("a", "b", "c"), bootstrap=50))
    shares = [Measurement("data", "group_share", float(np.mean(sex == v)), group={"sex": v}, n=int(np.sum(sex == v)))
              for v in ("F", "M")]
    return AuditResult(name="multiclass", measurements=tuple(shares + out), provenance={"ci_level": 0.9},
                       data={}, model={"classes": ["a", "b", "c"]})


def test_multiclass_key_findings_model_card_and_section_state_the_same_breach():
    result = _multiclass_result()
    ratio = next(m for m in result.select("fairness", "demographic_parity_ratio")
                 if m.params.get("class") == "c" and m.params["method"] == "between_groups")
    assert ratio.value < 0.8  # the case is what it claims
    found = facts(result)
    # class a is predicted more often for F (what c loses), so it breaches too; c is the widest gap
    assert [(b.sensitive, b.target) for b in found.four_fifths] == [("sex", "c"), ("sex", "a")]
    sentence = found.four_fifths[0].sentence(found.confidence)
    assert "for class c" in sentence and found.confidence == "90%"
    assert sentence in found.key_findings
    ethics = next(s for s in modelcard.build(result) if s.title == "Ethical considerations")
    assert sentence in ethics.paragraphs
    told = " ".join(s["text"] for s in fairness_view(result)["sentences"])
    assert "For class c" in told and f"ratio of {ratio.value:.2f}" in told and "below the four-fifths" in told


def test_figures_travel_as_artefacts_that_compare_never_reads(tmp_path):
    """Heatmaps and examples are artefacts: identical measurements compare as unchanged whatever the figures."""
    from audit.results import Artefact
    from tests.test_robustness import tabular_spec

    result = run_audit(load_config(tabular_spec(tmp_path, robustness_check={"examples": 2})))
    examples = result.select("robustness", "adversarial_example")
    assert examples and all(result.artefact(m).get("changes") is not None for m in examples)
    assert all(not isinstance(v, (dict, list)) for m in result.measurements for v in m.params.values() if m.check == "robustness")
    redrawn = dataclasses.replace(result, artefacts=tuple(Artefact(a.check, a.metric, a.key, {"changes": []}) for a in result.artefacts))
    comparison = compare(result, redrawn, max_regression={})
    assert comparison.only_baseline == comparison.only_candidate == 0
    assert all(c.delta in (0, None) for c in comparison.changes)
    stored = AuditResult.from_dict(json.loads(result.to_json()))
    assert [stored.artefact(m) for m in stored.select("robustness", "adversarial_example")] == \
        [json.loads(json.dumps(result.artefact(m))) for m in examples]
