"""Key findings: proxies found by the explanations, ranked by size and certainty; no sentence
compares two values that print the same."""

from __future__ import annotations

from audit.report import finding_rules
from audit.report.facts import facts
from audit.report.robustness_view import _gap_sentence
from audit.results import AuditResult, Measurement


def _result(*measurements: Measurement) -> AuditResult:
    return AuditResult(name="hand-built", measurements=measurements, provenance={"ci_level": 0.95}, data={}, model={})


def _association(feature: str, value: float) -> Measurement:
    return Measurement(check="explanations", metric="proxy_association", value=value,
                       params={"sensitive": "sex", "feature": feature, "measure": "cramers_v"})


def _gap(feature: str, value: float, group: str = "female") -> Measurement:
    return Measurement(check="explanations", metric="group_attribution_difference", value=value, group={"sex": group},
                       params={"method": "IntegratedGradients", "feature": feature, "reference": "sex=male"})


def test_a_strong_proxy_is_a_key_finding_with_its_share_of_the_gap():
    result = _result(_association("personal_status", 1.0), _association("age", 0.2),
                     _gap("personal_status", -0.6), _gap("age", -0.15), _gap("duration", -0.05))
    (weight, text), = finding_rules.proxies(result)
    # -0.6 of a -0.8 gap: 75%, by hand
    assert text == ("personal_status stands in for sex (association 1.00, Cramér's V): the model can tell sex groups "
                    "apart through it even where sex itself is not used; it carries 75% of the model's output gap "
                    "between sex=female and sex=male.")
    assert text in facts(result).key_findings


def test_weak_associations_are_not_proxy_findings():
    assert finding_rules.proxies(_result(_association("age", 0.49), _gap("age", -0.5))) == []


def test_a_proxy_working_against_the_gap_gets_no_share():
    (_, text), = finding_rules.proxies(_result(_association("status", 0.9), _gap("status", 0.2), _gap("age", -0.8)))
    assert "carries" not in text


def test_certainty_ranks_a_clear_breach_above_an_uncertain_bigger_one():
    clear = Measurement(check="fairness", metric="demographic_parity_ratio", value=0.7, ci=(0.65, 0.75))
    unsure = Measurement(check="fairness", metric="demographic_parity_ratio", value=0.6, ci=(0.3, 0.95))
    assert finding_rules.certainty(65 + 10 * 0.1, clear, 0.8, below=True) > finding_rules.certainty(65 + 10 * 0.2, unsure, 0.8, below=True)


def test_medians_that_print_the_same_are_not_compared_in_words():
    medians = [Measurement(check="robustness", metric="median_minimal_perturbation", value=v, group={"sex": g},
                           params={"attack": "PGD"}) for g, v in (("female", 2.0001), ("male", 2.0004))]
    gap = Measurement(check="robustness", metric="robustness_gap", value=0.0003, ci=(0.0, 0.001),
                      params={"attack": "PGD", "sensitive": "sex"})
    sentence = _gap_sentence(medians, gap, "standard deviations")
    assert "than" not in sentence and "about the same median perturbation" in sentence
