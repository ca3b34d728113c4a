"""The model card (Mitchell et al. 2019, "Model Cards for Model Reporting").

One structure, two renderings: model_card.md and a section of report.html. The spec's
``model_card`` fills the prose; every number comes from the audit's measurements. Where the
spec says nothing, the card says what is missing and why it matters, rather than inventing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.report.facts import facts
from audit.report.format import ci_text, number, percent
from audit.report.markdown import cell
from audit.results import AuditResult, Measurement

PERFORMANCE = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "expected_calibration_error")
GROUP_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
DISPARITIES = ("demographic_parity_ratio", "equalized_odds_difference", "equal_opportunity_difference")


@dataclass
class CardSection:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)  # (header, rows)


def _prose(result: AuditResult, key: str) -> str | None:
    return (result.model.get("card") or {}).get(key)


def _missing(key: str, why: str) -> str:
    return f"Not stated in the spec (model_card.{key}). {why}"


def build(result: AuditResult) -> list[CardSection]:
    return [
        _details(result),
        _intended_use(result),
        _factors(result),
        _metrics(result),
        _evaluation_data(result),
        CardSection("Training data", [_prose(result, "training_data") or _missing(
            "training_data", "Without it a reader cannot judge whether the evaluation data resemble what the model learned from.")]),
        _quantitative(result),
        _ethics(result),
        _caveats(result),
    ]


def _details(result: AuditResult) -> CardSection:
    model = result.model
    rows = [["Name", model.get("name", "")], ["Format", str(model.get("kind"))]]
    if model.get("path"):
        rows.append(["File", Path(model["path"]).name])
    files = result.provenance.get("files", {})
    if "model" in files:
        rows.append(["Model SHA-256", files["model"]["sha256"]])
    if model.get("parameters"):
        rows.append(["Parameters", f"{model['parameters']:,}"])
    rows.append(["Classes", ", ".join(map(str, model.get("classes", [])))])
    if model.get("positive_class") is not None:
        rows.append(["Decision", f"{model['positive_class']} when its {'probability' if model.get('has_probabilities') else 'score'} is at least {model.get('threshold')}"])
    for key, label in (("version", "Version"), ("owners", "Owners"), ("licence", "Licence")):
        if _prose(result, key):
            rows.append([label, _prose(result, key)])
    rows.append(["Audited", str(result.provenance.get("finished", ""))[:19].replace("T", " ") + " UTC"])
    paragraphs = [_prose(result, "overview")] if _prose(result, "overview") else []
    return CardSection("Model details", paragraphs, [(["Field", "Value"], rows)])


def _intended_use(result: AuditResult) -> CardSection:
    paragraphs = [_prose(result, "intended_use") or _missing(
        "intended_use", "A model whose intended use is undocumented should not be deployed.")]
    if _prose(result, "out_of_scope_uses"):
        paragraphs.append("Out of scope: " + _prose(result, "out_of_scope_uses"))
    return CardSection("Intended use", paragraphs)


def _factors(result: AuditResult) -> CardSection:
    groups: dict[str, list[Measurement]] = {}
    for m in result.select("data", "group_share"):
        groups.setdefault(next(iter(m.group)), []).append(m)
    paragraphs = [_prose(result, "factors")] if _prose(result, "factors") else []
    if groups:
        paragraphs.append(f"The audit compares groups by {', '.join(groups)}; intersections of these are in the report.")
    else:
        paragraphs.append("No sensitive columns were declared, so no groups were compared.")
    rows = [[column, m.group[column], f"{m.n:,}", percent(m.value)] for column, ms in groups.items() for m in ms]
    return CardSection("Factors", paragraphs, [(["Attribute", "Group", "Examples", "Share"], rows)] if rows else [])


def _metrics(result: AuditResult) -> CardSection:
    card_facts = facts(result)
    paragraphs = [
        "Performance: accuracy, balanced accuracy, precision, recall and F1, ROC-AUC where scores exist, "
        "and calibration where probabilities exist. Fairness: each group's selection rate and error rates, and "
        "their disparities between groups (demographic parity, equalized odds, equal opportunity, predictive parity).",
        f"Every value carries a {card_facts.confidence} interval from {result.provenance.get('bootstrap', 0)} seeded bootstrap "
        f"replicates (seed {result.provenance.get('seed')}), resampled within each group for group metrics.",
    ]
    if result.findings:
        paragraphs.append("Release thresholds: " + "; ".join(f"{f.threshold} ({f.verdict})" for f in result.findings) + ".")
    return CardSection("Metrics", paragraphs)


def _evaluation_data(result: AuditResult) -> CardSection:
    data = result.data
    text = f"{Path(str(data.get('source', ''))).name}: {data.get('rows_read', 0):,} rows read"
    if data.get("filter"):
        text += f", {data.get('rows_after_filter', 0):,} after the filter `{data['filter']}`"
    text += f", {data.get('rows_used', 0):,} audited."
    paragraphs = ([_prose(result, "evaluation_data")] if _prose(result, "evaluation_data") else []) + [text]
    return CardSection("Evaluation data", paragraphs)


def _overall(result: AuditResult, check: str, metric: str) -> Measurement | None:
    return next((m for m in result.select(check, metric) if m.group is None and "class" not in m.params), None)


def _quantitative(result: AuditResult) -> CardSection:
    section = CardSection("Quantitative analyses")
    rows = [[m.metric, number(m.value), ci_text(m.ci)] for name in PERFORMANCE if (m := _overall(result, "performance", name))]
    if rows:
        section.tables.append((["Metric", "Value", "Interval"], rows))
    columns = [c for c in dict.fromkeys(next(iter(m.group)) for m in result.select("data", "group_share"))]
    rates = _group_rates(result)
    counts: dict[str, list[Measurement]] = {}
    for count in result.select("fairness", "count"):
        if count.group and len(count.group) == 1:
            counts.setdefault(next(iter(count.group)), []).append(count)
    group_rows = []
    for column in columns:
        for count in counts.get(column, []):
            key = _group_key(count.group)
            values = [number(rates[(rate, key)].value) if (rate, key) in rates else "-" for rate in GROUP_RATES]
            group_rows.append([column, count.group[column], f"{int(count.value):,}", *values])
    if group_rows:
        section.tables.append((["Attribute", "Group", "Examples", "Selection rate", "TPR", "FPR", "Accuracy"], group_rows))
    disparity_rows = [
        [m.metric, m.params.get("sensitive", ""), number(m.value), ci_text(m.ci), m.status or ""]
        for m in result.select("fairness")
        if m.group is None and m.metric in DISPARITIES and "+" not in m.params.get("sensitive", "+") and "class" not in m.params
    ]
    if disparity_rows:
        section.tables.append((["Disparity", "Between groups of", "Value", "Interval", "Status"], disparity_rows))
    if not section.tables:
        section.paragraphs.append("No measurements to summarise.")
    return section


def _group_rates(result: AuditResult) -> dict[tuple[str, tuple], Measurement]:
    """One pass over the measurements: (metric, group) -> the first per-group rate, not per class.

    Looking each value up by scanning every measurement made the card quadratic in groups.
    """
    index: dict[tuple[str, tuple], Measurement] = {}
    for m in result.select("fairness"):
        if m.metric in GROUP_RATES and m.group and "class" not in m.params:
            index.setdefault((m.metric, _group_key(m.group)), m)
    return index


def _group_key(group: dict[str, str]) -> tuple:
    return tuple(sorted(group.items()))


def _ethics(result: AuditResult) -> CardSection:
    paragraphs = [_prose(result, "ethical_considerations")] if _prose(result, "ethical_considerations") else []
    inputs = result.model.get("sensitive_inputs") or []
    if inputs:
        paragraphs.append(f"The model takes sensitive attributes as inputs: {', '.join(inputs)}.")
    card_facts = facts(result)
    paragraphs += [breach.sentence(card_facts.confidence) for breach in card_facts.four_fifths]
    if not paragraphs:
        paragraphs.append(_missing("ethical_considerations", "The audit found no selection-rate ratio below 0.8 between groups of a single attribute."))
    return CardSection("Ethical considerations", paragraphs)


def _caveats(result: AuditResult) -> CardSection:
    paragraphs = []
    for key, label in (("caveats", "Caveats"), ("recommendations", "Recommendations")):
        if _prose(result, key):
            paragraphs.append(f"{label}: {_prose(result, key)}")
    paragraphs += [f"Audit warning: {w}" for w in result.warnings]
    paragraphs += [f"A check could not run ({f.check}): {f.message}" for f in result.failures]
    undecided = [f.threshold for f in result.findings if f.verdict == "inconclusive"]
    if undecided:
        paragraphs.append("The audit could not decide: " + "; ".join(undecided) + ". More evaluation data would narrow the intervals.")
    if not paragraphs:
        paragraphs.append(_missing("caveats", "The audit itself raised no warnings."))
    return CardSection("Caveats and recommendations", paragraphs)


def markdown(result: AuditResult) -> str:
    lines = [f"# Model card: {cell(result.model.get('name', result.name))}", "",
             "_Structure of Mitchell et al. (2019), Model Cards for Model Reporting. Numbers from the rai-audit run "
             f"with spec SHA-256 `{str(result.provenance.get('spec_sha256', ''))[:12]}`._", ""]
    for section in build(result):
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [cell(paragraph), ""]
        for header, rows in section.tables:
            lines += ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
