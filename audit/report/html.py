"""report.html: one self-contained file rendered from the Jinja2 templates, autoescape on.

This module turns an :class:`~audit.results.AuditResult` into plain view data (rows, charts,
sentences); the templates only lay it out. Nothing here measures anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from audit import profiles
from audit.catalogue import catalogue
from audit.report import charts
from audit.report import modelcard
from audit.report.facts import facts as audit_facts
from audit.report.explanations_view import explanations_view
from audit.report.fairness_view import fairness_view
from audit.report.format import ci_text, number, percent
from audit.report.robustness_view import robustness_view
from audit.errors import ConfigError
from audit.report.text_view import text_view
from audit.resources import bundled
from audit.results import AuditResult, Measurement

HEADLINE = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "f1_macro")
SCALAR_ORDER = (
    "accuracy", "balanced_accuracy", "precision", "recall", "f1",
    "precision_macro", "recall_macro", "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
    "roc_auc", "average_precision", "log_loss", "expected_calibration_error",
)
# what the report's words mean, beside the catalogue's metrics (which say what each metric is)
CONCEPTS = {
    "confidence interval": "Range that would contain the value in {level} of repeated samples (bootstrap, by default).",
    "macro / weighted": "Macro averages classes equally; weighted averages them by how often each class occurs.",
    "disparity difference / ratio": "Difference: highest group's rate minus lowest's (0 is equal). Ratio: lowest divided by highest (1 is equal).",
    "disparate impact / four-fifths rule": "The ratio of the lowest group's selection rate to the highest's; below 0.8 is a common rule of thumb "
    "(from US employment guidance) for a closer look, not a verdict.",
    "reference group": "The group named in the spec that the others are compared to, for example race=White; a ratio of 2 means "
    "twice the reference group's rate.",
    "intersection": "A group defined by several sensitive attributes at once, such as sex=Female, race=Black.",
    "insufficient group": "A group with fewer rows than the spec's minimum group size: its numbers are shown, but they are too "
    "uncertain to judge, and so is any disparity resting on it.",
    "undefined rate": "A rate whose denominator is zero in a group, for example a true positive rate in a group with no actual "
    "positives; shown as 'undefined', never as 0.",
}
GLOSSARY_CHECKS = ("performance", "fairness")  # explanations and robustness keep theirs in their own sections


def glossary(level: str) -> dict[str, str]:
    """The report's glossary: the catalogue's metrics, then the concepts, with the audit's interval level."""
    terms = catalogue().glossary(GLOSSARY_CHECKS)
    return terms | {term: text.format(level=level) for term, text in CONCEPTS.items()}


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The bundled templates, with a user's folder in front of them when the spec names one.

    A spec (and its templates folder) may come from a pull request, so user templates render
    in Jinja2's sandbox, which refuses attribute tricks that reach Python internals, and their
    loader never reads outside the folder (no '..', no symlink pointing elsewhere).
    """
    bundled_loader = jinja2.FileSystemLoader(str(bundled("templates")))
    options = dict(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    if templates is None:
        env = jinja2.Environment(loader=bundled_loader, **options)
    else:
        loader = jinja2.ChoiceLoader([ConfinedLoader(templates), bundled_loader])
        env = ImmutableSandboxedEnvironment(loader=loader, **options)
    env.filters.update(number=number, percent=percent, ci=ci_text)
    return env


class ConfinedLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader for one folder that refuses files resolving outside it."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = Path(folder).resolve()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.folder):
            raise jinja2.TemplateNotFound(template)
        return source, filename, uptodate


PAPER = {"a4": "A4", "letter": "letter"}


def render(result: AuditResult, *, templates: Path | None = None, paper: str = "a4") -> str:
    """report.html; a broken or hostile user template is one ConfigError naming it."""
    try:
        env = environment(templates)
        css = env.loader.get_source(env, "report.css")[0]
        return env.get_template("report.html.j2").render(view=build_view(result), css=css, page=print_page(result, paper))
    except (jinja2.TemplateError, SecurityError) as exc:
        if templates is None:
            raise
        raise ConfigError(
            f"report.templates: a template in {templates} failed: {type(exc).__name__}: {_first_line(exc)}",
            hint="fix the template, or remove report.templates to use the bundled ones",
        ) from None


def check_templates(templates: Path | None) -> None:
    """Compile every user template before the audit runs, so a syntax error costs no audit."""
    if templates is None:
        return
    env = environment(templates)
    for path in sorted(Path(templates).rglob("*.j2")):
        name = path.relative_to(templates).as_posix()
        try:
            env.get_template(name)
        except (jinja2.TemplateError, SecurityError) as exc:
            raise ConfigError(
                f"report.templates: {name} failed: {type(exc).__name__}: {_first_line(exc)}",
                hint="fix the template, or remove report.templates to use the bundled ones",
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 200 else line[:197] + "..."


def print_page(result: AuditResult, paper: str) -> dict[str, str]:
    """What every printed page carries in its margins: the verdict, the date, the model's hash.

    Returned as CSS string literals (see :func:`css_string`): they go into an ``@page`` rule.
    """
    if result.failures:
        verdict = "incomplete audit"
    elif result.gate is None or not result.findings:
        verdict = "no thresholds set"
    else:
        verdict = "gate passed" if result.gate.passed else "gate FAILED"
    model = (result.provenance.get("files") or {}).get("model") or {}
    digest = model.get("sha256")
    return {
        "size": PAPER[paper],
        "title": css_string(f"{result.name}: {verdict}"),
        "date": css_string(f"audited {str(result.provenance.get('finished', ''))[:10]}"),
        "model": css_string(f"model sha256 {digest[:16]}…" if digest else "no model file"),
    }


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string that cannot end the string, the rule or the style element."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;-_()…" else f"\\{ord(ch):06x}" for ch in text)
    return f'"{escaped}"'


def build_view(result: AuditResult) -> dict[str, Any]:
    facts = audit_facts(result)
    return {
        "result": result,
        "headline": [m for name in HEADLINE for m in _overall(result, name)],
        "data": _data_view(result),
        "performance": _performance_view(result),
        "fairness": fairness_view(result),
        "explanations": explanations_view(result),
        "robustness": robustness_view(result),
        "text": text_view(result),
        "model_card": modelcard.build(result),
        "facts": facts,
        "key_findings": facts.key_findings,
        "provenance": result.provenance,
        "glossary": glossary(facts.confidence),
        "profiles": profiles.view(result),
    }


def _overall(result: AuditResult, metric: str) -> list[Measurement]:
    return [m for m in result.select("performance", metric) if m.group is None and "class" not in m.params]


def _data_view(result: AuditResult) -> dict[str, Any]:
    groups: dict[str, list[Measurement]] = {}
    for m in result.select("data", "group_share"):
        column = next(iter(m.group))
        groups.setdefault(column, []).append(m)
    return {
        "summary": result.data,
        "classes": result.select("data", "class_share"),
        "groups": groups,
    }


def _performance_view(result: AuditResult) -> dict[str, Any]:
    scalars = [m for name in SCALAR_ORDER for m in _overall(result, name)]
    bounded = [m for m in scalars if m.value is not None and m.metric not in {"log_loss"}]
    per_class = [m for m in result.select("performance") if "class" in m.params and m.metric in {"precision", "recall", "f1"}]
    return {
        "scalars": scalars,
        "chart": charts.interval_bars(
            [charts.Bar(m.metric, m.value, *(m.ci or (None, None))) for m in bounded],
            title="Performance metrics with confidence intervals",
            axis="value (0 to 1)",
        )
        if bounded
        else None,
        "per_class": _per_class_rows(per_class),
        "confusion": _confusion_chart(result),
        "reliability": _reliability_chart(result),
    }


def _per_class_rows(measurements: list[Measurement]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for m in measurements:
        rows.setdefault(m.params["class"], {"class": m.params["class"]})[m.metric] = m
    return list(rows.values())


def _confusion_chart(result: AuditResult) -> Any:
    cells = result.select("performance", "confusion_matrix")
    if not cells:
        return None
    classes = list(result.model.get("classes") or dict.fromkeys(m.params["true"] for m in cells))
    index = {name: i for i, name in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for m in cells:
        counts[index[m.params["true"]]][index[m.params["predicted"]]] = int(m.value)
    return charts.confusion_matrix(classes, counts, title="Confusion matrix: true class by predicted class")


def _reliability_chart(result: AuditResult) -> Any:
    bins = result.select("performance", "calibration_bin")
    if not bins:
        return None
    binary = result.model.get("positive_class") is not None
    label = "mean predicted probability of the positive class" if binary else "mean confidence of the predicted class"
    points = [(m.params["mean_predicted"], m.value, m.n or 0) for m in bins]
    return charts.reliability_diagram(points, title="Reliability diagram", x_label=label)
