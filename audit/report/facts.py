"""What the report says, computed once from the result; every renderer only renders it.

The HTML report, summary.md, junit.xml, the console and the model card all read :func:`facts`:
the verdict and the banner's level (as the gate's outcome states them), the confidence label
(from the audit's own ``ci_level``, never a hard-coded "95%"), the four-fifths breaches (every
sensitive column and, for a multiclass model, every class, named), and the key findings. So two
outputs cannot disagree: there is one place that decides what is true.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audit.gate import GATE_HEADLINES, GATE_WORDS
from audit.report import finding_rules
from audit.results import AuditResult, Measurement

FOUR_FIFTHS = 0.8
KEY_FINDINGS = 3
NOTHING_FOUND = ("No threshold failed, no group's selection rate fell below four-fifths of another's, "
                 "and performance shows no warning sign.")
HEADLINES = GATE_HEADLINES | {"none": "Measured, not judged"}
WORDS = GATE_WORDS | {"none": "NOT JUDGED"}


@dataclass(frozen=True)
class Breach:
    """A between-groups selection-rate ratio below four-fifths, on one sensitive column."""

    sensitive: str
    target: str | None  # the class of a multiclass model's one-vs-rest view, else None
    value: float
    lowest: str | None
    highest: str | None
    ci: tuple[float, float] | None

    def sentence(self, level: str) -> str:
        about = f"Selection rates differ by {self.sensitive}" + (f" for class {self.target}" if self.target is not None else "")
        return (f"{about}: {self.lowest} is selected {self.value:.2f} times as often as {self.highest}"
                f"{ci_words(self.ci, level)}, below the four-fifths rule.")


@dataclass(frozen=True)
class Facts:
    """Everything the outputs state, decided once."""

    level: str  # the gate's: pass, warn, fail, error, or none (no thresholds)
    headline: str
    word: str  # the outcome in one capitalised word or phrase (console, summary.md)
    confidence: str  # the interval level in words, e.g. "95%"
    four_fifths: tuple[Breach, ...]
    key_findings: tuple[str, ...]


def facts(result: AuditResult) -> Facts:
    confidence = confidence_label(result)
    breaches = tuple(four_fifths_breaches(result))
    level = banner_level(result)
    return Facts(
        level=level,
        headline=HEADLINES[level],
        word=WORDS[level],
        confidence=confidence,
        four_fifths=breaches,
        key_findings=tuple(key_findings(result, breaches, confidence)),
    )


def confidence_label(result: AuditResult) -> str:
    """The audit's interval level in words: 0.8 -> "80%"."""
    return f"{100 * float(result.provenance.get('ci_level') or 0.95):g}%"


def banner_level(result: AuditResult) -> str:
    """pass, warn, fail, error or none, as the gate's outcome says (a check error is always an error)."""
    if result.failures:
        return "error"
    outcome = result.gate
    if outcome is None or (not result.findings and outcome.verdict == "pass"):
        return "none"
    return outcome.level


def below_four_fifths(value: float | None) -> bool:
    return value is not None and value < FOUR_FIFTHS


def single_columns(result: AuditResult) -> set[str]:
    """The sensitive columns themselves (intersections are groupings of several)."""
    return {next(iter(m.group)) for m in result.select("data", "group_share") if m.group and len(m.group) == 1}


def four_fifths_breaches(result: AuditResult) -> list[Breach]:
    """Every sufficient between-groups selection-rate ratio below 0.8 on one column, per class."""
    columns = single_columns(result)
    out = []
    for m in result.select("fairness", "demographic_parity_ratio"):
        if m.params.get("method") != "between_groups" or m.params.get("sensitive") not in columns:
            continue
        if m.status is None and below_four_fifths(m.value):
            out.append(Breach(m.params["sensitive"], m.params.get("class"), m.value,
                              m.params.get("lowest_group"), m.params.get("highest_group"), m.ci))
    return sorted(out, key=lambda b: b.value)


def ci_words(ci: tuple[float, float] | None, level: str) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" ({level} CI {ci[0]:.2f} to {ci[1]:.2f})"


# ---------------------------------------------------------------- key findings


def key_findings(result: AuditResult, breaches: tuple[Breach, ...], confidence: str, limit: int = KEY_FINDINGS) -> list[str]:
    """The heaviest few of: a check that could not run, judged thresholds, fairness gaps, performance signs."""
    candidates = (_failures(result) + _thresholds(result) + _breaches(breaches, confidence)
                  + _reference_gaps(result, confidence) + finding_rules.proxies(result) + _performance(result))
    candidates.sort(key=lambda pair: -pair[0])
    chosen = list(dict.fromkeys(text for _, text in candidates))[:limit]
    return chosen or [NOTHING_FOUND]


def _failures(result: AuditResult) -> list[tuple[float, str]]:
    # the reason (an error message, perhaps an internal one) is in the summary's details, not here
    return [(100.0, f"The {f.check} check could not run, so its results are missing from this report.")
            for f in result.failures]


def _thresholds(result: AuditResult) -> list[tuple[float, str]]:
    # thresholds are what the spec's authors said matters: they outrank what the audit infers
    weight = {"error": 95.0, "fail": 90.0, "warn": 85.0, "inconclusive": 80.0}
    return [
        (weight[f.verdict], f"Threshold {f.threshold}: {f.verdict}, since {f.reason}.")
        for f in result.findings if f.verdict in weight
    ]


def _breaches(breaches: tuple[Breach, ...], confidence: str) -> list[tuple[float, str]]:
    # ranked by size and certainty: a breach whose whole interval is below the line comes first
    return [(finding_rules.certainty(65.0 + 10 * (FOUR_FIFTHS - b.value), b, FOUR_FIFTHS, below=True),
             b.sentence(confidence)) for b in breaches]


def _reference_gaps(result: AuditResult, confidence: str) -> list[tuple[float, str]]:
    """Error-rate ratios to the reference group whose interval clears a 25% gap either way."""
    columns = single_columns(result)
    out = []
    for m in result.select("fairness", "false_positive_rate_ratio") + result.select("fairness", "false_negative_rate_ratio"):
        if m.params.get("method") != "to_reference" or m.params.get("sensitive") not in columns:
            continue
        if m.status or not m.value or not m.ci or not (m.ci[0] > 1.25 or m.ci[1] < 0.8):
            continue
        rate = "false positive" if m.metric.startswith("false_positive") else "false negative"
        group = ", ".join(f"{k}={v}" for k, v in m.group.items())
        about = f" (class {m.params['class']})" if "class" in m.params else ""
        out.append((50.0 + 5 * abs(math.log(m.value)), (
            f"The {rate} rate for {group}{about} is {m.value:.2f} times that for {m.params['reference']} "
            f"({confidence} interval {m.ci[0]:.2f} to {m.ci[1]:.2f})."
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
