"""EU AI Act technical documentation (Regulation 2024/1689): what the audit can supply, mapped.

Annex IV point 2(g) asks for the validation and testing procedures, data and metrics, test logs
and reports; point 3 for the degrees of accuracy for specific persons or groups and overall, and
the foreseeable unintended outcomes; Article 15(3) for the declared accuracy levels and metrics.
:func:`sections` reads the result (never measures) into one list that both ``annex_iv.md`` and the
HTML section lay out. Whatever the spec and the audit cannot supply is said to be "to be completed
by the provider", never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.report.format import ci_text, number, percent
from audit.results import AuditResult, Measurement

TO_COMPLETE = "To be completed by the provider."
DECLARED = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "expected_calibration_error")
PROVIDER_ITEMS = (
    ("provider", "Provider (Annex IV 1(a))"),
    ("system_name", "AI system name and version (Annex IV 1(a))"),
    ("intended_purpose", "Intended purpose (Annex IV 1(a); Article 13(3)(b)(i))"),
    ("human_oversight", "Human oversight measures (Annex IV 2(e); Article 14)"),
    ("risk_management", "Risk-management system (Annex IV 5; Article 9)"),
    ("foreseeable_misuse", "Known or foreseeable circumstances of risk and misuse (Annex IV 3)"),
    ("cybersecurity", "Cybersecurity measures beyond the tested attacks (Article 15(4)-(5))"),
)


@dataclass(frozen=True)
class Section:
    title: str
    reference: str
    items: list[tuple[str, str]] = field(default_factory=list)  # (label, text); text TO_COMPLETE when missing


def sections(result: AuditResult) -> list[Section]:
    statements = result.provenance.get("profiles", {}).get("eu_ai_act", {})
    return [
        Section("Provider statements", "Annex IV 1, 2(e), 5", [(label, statements.get(key) or TO_COMPLETE) for key, label in PROVIDER_ITEMS]),
        Section("Validation and testing data and their main characteristics", "Annex IV 2(g)", _data_items(result, statements)),
        Section("Metrics used to measure accuracy, robustness and potentially discriminatory impacts", "Annex IV 2(g)",
                _metric_items(result)),
        Section("Degrees of accuracy for specific persons or groups, and the overall expected level", "Annex IV 3",
                _group_accuracy_items(result)),
        Section("Foreseeable unintended outcomes found by the audit", "Annex IV 3", _finding_items(result)),
        Section("Robustness evidence", "Article 15(1), 15(4); Annex IV 2(g)", _robustness_items(result)),
        Section("Declared accuracy levels and metrics, for the instructions for use", "Article 15(3); Article 13(3)(b)(ii)",
                _declared_items(result)),
        Section("Test log", "Annex IV 2(g): test logs and reports, dated and signed", _log_items(result)),
    ]


def _value(m: Measurement) -> str:
    text = number(m.value, 4)
    if m.ci is not None and m.ci[0] is not None:
        text += f" (interval {ci_text(m.ci, 4)})"
    return text + (f", n = {m.n:,}" if m.n else "")


def _label(m: Measurement) -> str:
    parts = [m.metric] + [f"{k}={v}" for k, v in (m.params or {}).items()]
    group = ", ".join(f"{k}={v}" for k, v in (m.group or {}).items())
    return " ".join(parts) + (f" [{group}]" if group else "")


def _data_items(result: AuditResult, statements: dict[str, Any]) -> list[tuple[str, str]]:
    data, files = result.data, result.provenance.get("files", {})
    items = [("Source", f"{data.get('source')} (SHA-256 {files.get('data', {}).get('sha256', 'not recorded')})"),
             ("Rows read / after filter / audited", f"{data.get('rows_read')} / {data.get('rows_after_filter')} / {data.get('rows_used')}"),
             ("Row filter", str(data.get("filter") or "none")), ("Sampling", str(data.get("sample") or "none"))]
    items += [(f"Class share {m.params.get('class')}", f"{percent(m.value)} ({m.n:,} rows)") for m in result.select("data", "class_share")]
    items += [(f"Group share {_label(m)}", f"{percent(m.value)} ({m.n:,} rows)") for m in result.select("data", "group_share")]
    items.append(("How the data was obtained and selected, and its suitability", statements.get("validation_data_description") or TO_COMPLETE))
    return items


def _overall(result: AuditResult, check: str) -> list[Measurement]:
    return [m for m in result.select(check) if m.group is None and m.value is not None and m.metric != "confusion_matrix"
            and m.metric != "calibration_bin"]


def _metric_items(result: AuditResult) -> list[tuple[str, str]]:
    items = [(f"Accuracy: {_label(m)}", _value(m)) for m in _overall(result, "performance")]
    items += [(f"Robustness: {_label(m)}", _value(m)) for m in _overall(result, "robustness") if m.metric != "adversarial_example"]
    disparities = [m for m in _overall(result, "fairness") if m.metric.endswith(("_difference", "_ratio"))]
    items += [(f"Discriminatory impact: {_label(m)}", _value(m)) for m in disparities]
    items += [(f"Bias audit (LL144): {_label(m)}", _value(m)) for m in result.select("ll144", "impact_ratio") if m.value is not None]
    return items or [("Metrics", "The audit measured none of these; enable the performance, fairness and robustness checks.")]


def _group_accuracy_items(result: AuditResult) -> list[tuple[str, str]]:
    overall = [m for m in _overall(result, "performance") if m.metric == "accuracy"]
    items = [("Overall expected level of accuracy", _value(overall[0]))] if overall else []
    items += [(f"Accuracy {_label(m)}", _value(m) + (f" ({m.status})" if m.status else ""))
              for m in result.select("fairness", "accuracy") if m.group]
    return items or [("Accuracy by group", "Not measured: declare sensitive columns and enable the fairness check.")]


def _finding_items(result: AuditResult) -> list[tuple[str, str]]:
    items = [(f"Threshold {f.verdict.upper()}: {f.threshold}", f.reason) for f in result.findings]
    items += [(f"Check that could not run: {f.check}", f.message) for f in result.failures]
    items += [("Warning", w) for w in result.warnings]
    from audit.profiles.ll144_report import tables

    for table in tables(result):
        for row in table["below_four_fifths"]:
            items.append((f"LL144 {table['title']}: {row['category']}",
                          "at the low end of the missing-data bounds (individuals of unknown category) an impact ratio is below 0.8"))
    items.append(("Outcomes the audit cannot see", TO_COMPLETE))
    return items


def _robustness_items(result: AuditResult) -> list[tuple[str, str]]:
    rows = [m for m in result.select("robustness") if m.metric in ("robust_accuracy", "robustness_gap") and m.group is None]
    if not rows:
        return [("Adversarial robustness", "Not tested by this audit (no robustness check ran). " + TO_COMPLETE)]
    return [(f"{_label(m)}", _value(m)) for m in rows]


def _declared_items(result: AuditResult) -> list[tuple[str, str]]:
    chosen = [m for name in DECLARED for m in _overall(result, "performance") if m.metric == name and not m.params]
    source = result.data.get("source")
    items = [(m.metric, f"{_value(m)}, measured on {source}") for m in chosen]
    return items or [("Declared accuracy", "Not measured by this audit. " + TO_COMPLETE)]


def _log_items(result: AuditResult) -> list[tuple[str, str]]:
    p = result.provenance
    items = [("Spec", f"{p.get('spec_path')} (SHA-256 {p.get('spec_sha256')})"), ("Command", str(p.get("command"))),
             ("Started / finished (UTC)", f"{p.get('started')} / {p.get('finished')}"), ("Seed", str(p.get("seed"))),
             ("Python / platform / device", f"{p.get('python')} / {p.get('platform')} / {p.get('device')}")]
    items += [(f"File {role}", f"{entry.get('path')} (SHA-256 {entry.get('sha256')})") for role, entry in p.get("files", {}).items()]
    versions = ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items() if v)
    items += [("Package versions", versions),
              ("Signature", "sign this folder with `rai-audit sign DIR --key KEY`; verify with `rai-audit verify DIR --pub PUB`"),
              ("Responsible persons", TO_COMPLETE)]
    return items


def to_markdown(result: AuditResult) -> str:
    from audit.report.markdown import cell

    lines = [f"# Technical documentation (EU AI Act, Annex IV): {cell(result.name)}", "",
             "Generated by rai-audit from the audit's result. Items marked *to be completed by the provider* are outside "
             "what an audit can establish; nothing here is invented.", ""]
    for section in sections(result):
        lines += [f"## {cell(section.title)}", "", f"*{cell(section.reference)}*", ""]
        lines += [f"- **{cell(label)}:** {'*' + TO_COMPLETE + '*' if text == TO_COMPLETE else cell(text)}" for label, text in section.items]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
