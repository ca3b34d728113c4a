"""The three most important findings, for the top of the report.

Candidates come from the measurements, each with a weight: a check that could not run, then
failed and warned thresholds, then the widest fairness gaps, then performance and calibration
warnings. The heaviest three are shown; every sentence is plain text (the template escapes it).
"""

from __future__ import annotations

import math

from audit.report import finding_rules
from audit.results import AuditResult, Measurement

LIMIT = 3


def key_findings(result: AuditResult, limit: int = LIMIT) -> list[str]:
    candidates = (_failures(result) + _thresholds(result) + _fairness(result) + finding_rules.proxies(result)
                  + _performance(result))
    candidates.sort(key=lambda pair: -pair[0])
    chosen = list(dict.fromkeys(text for _, text in candidates))[:limit]
    return chosen or ["No threshold failed, no group's selection rate fell below four-fifths of another's, "
                      "and performance shows no warning sign."]


def _failures(result: AuditResult) -> list[tuple[float, str]]:
    # the reason (an error message, perhaps an internal one) is in the summary's details, not here
    return [(100.0, f"The {f.check} check could not run, so its results are missing from this report.") for f in result.failures]


def _thresholds(result: AuditResult) -> list[tuple[float, str]]:
    # thresholds are what the spec's authors said matters: they outrank what the audit infers
    weight = {"error": 95.0, "fail": 90.0, "warn": 85.0, "inconclusive": 80.0}
    return [
        (weight[f.verdict], f"Threshold {f.threshold}: {f.verdict}, since {f.reason}.")
        for f in result.findings if f.verdict in weight
    ]


def _single_column(m: Measurement) -> bool:
    return "+" not in str(m.params.get("sensitive", "+")) and "class" not in m.params


def _fairness(result: AuditResult) -> list[tuple[float, str]]:
    out = []
    for m in result.select("fairness", "demographic_parity_ratio"):
        between = m.params.get("method") == "between_groups"
        if between and _single_column(m) and m.value is not None and m.value < 0.8 and m.status is None:
            out.append((finding_rules.certainty(65.0 + 10 * (0.8 - m.value), m, 0.8, below=True), (
                f"Selection rates differ by {m.params['sensitive']}: {m.params.get('lowest_group')} is selected "
                f"{m.value:.2f} times as often as {m.params.get('highest_group')}, below the four-fifths rule."
            )))
    for m in result.select("fairness", "false_positive_rate_ratio") + result.select("fairness", "false_negative_rate_ratio"):
        if m.params.get("method") != "to_reference" or not _single_column(m) or m.status or not m.value or not m.ci:
            continue
        if m.ci[0] > 1.25 or m.ci[1] < 0.8:  # the interval clears a 25% gap either way
            rate = "false positive" if m.metric.startswith("false_positive") else "false negative"
            group = ", ".join(f"{k}={v}" for k, v in m.group.items())
            out.append((50.0 + 5 * abs(math.log(m.value)), (
                f"The {rate} rate for {group} is {m.value:.2f} times that for {m.params['reference']} "
                f"(interval {m.ci[0]:.2f} to {m.ci[1]:.2f})."
            )))
    return out


def _overall(result: AuditResult, metric: str) -> Measurement | None:
    return next((m for m in result.select("performance", metric) if m.group is None and "class" not in m.params), None)


def _performance(result: AuditResult) -> list[tuple[float, str]]:
    out = []
    accuracy, balanced = _overall(result, "accuracy"), _overall(result, "balanced_accuracy")
    if accuracy and balanced and accuracy.value is not None and balanced.value is not None and accuracy.value - balanced.value > 0.05:
        out.append((45.0, (
            f"Accuracy ({accuracy.value:.3f}) flatters the model: averaged over classes it is {balanced.value:.3f}, "
            "because the rarer class is recognised less often."
        )))
    calibration = _overall(result, "expected_calibration_error")
    if calibration and calibration.value is not None and calibration.value > 0.05:
        out.append((40.0, f"Predicted probabilities are off by {calibration.value:.3f} on average (calibration error): do not read them as chances."))
    return out
