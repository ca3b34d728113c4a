"""summary.md: the gate as a Markdown table for pull-request comments and $GITHUB_STEP_SUMMARY.

GitHub renders HTML inside Markdown, so user text is HTML-escaped, and pipes and line breaks
are neutralised so a value cannot break the table.
"""

from __future__ import annotations

import html
import re

from audit.report.facts import confidence_label, facts
from audit.report.format import ci_text, number
from audit.results import AuditResult

UNSAFE_SCHEME = re.compile(r"\b(javascript|vbscript|data|file|blob)\s*:", re.IGNORECASE)
ICONS = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "inconclusive": "❔ inconclusive", "error": "⛔ error"}


def cell(text: object) -> str:
    """User text as inert Markdown: no HTML, no emphasis, links, headings or table breaks."""
    escaped = html.escape(str(text), quote=False)
    for raw, safe in (("|", "\\|"), ("\r", " "), ("\n", " "), ("`", "\\`"), ("*", "\\*"), ("_", "\\_"), ("[", "\\["), ("]", "\\]"),
                      ("#", "\\#"), ("~", "\\~"), ("!", "\\!")):
        escaped = escaped.replace(raw, safe)
    # a lax renderer may still link a bare scheme; only http(s) links are ever wanted
    return UNSAFE_SCHEME.sub(lambda m: m.group(1) + "&#58;", escaped)


def render(result: AuditResult) -> str:
    lines = [f"## rai-audit: {cell(result.name)}", "", _headline(result), ""]
    if result.findings:
        lines += [f"| Verdict | Threshold | Value | {confidence_label(result)} CI | Why |", "|---|---|---|---|---|"]
        for finding in result.findings:
            worst = finding.decisive
            value = number(worst.value) if worst else "-"
            interval = ci_text(worst.ci) if worst else "-"
            lines.append(
                f"| {ICONS[finding.verdict]} | {cell(finding.threshold)} | {value} | {interval} | {cell(finding.reason)} |"
            )
        lines.append("")
    for failure in result.failures:
        lines.append(f"- **check error** in {cell(failure.check)}: {cell(failure.message)}")
    for warning in result.warnings:
        lines.append(f"- warning: {cell(warning)}")
    rows = result.data.get("rows_used")
    lines += ["", f"{rows:,} rows audited; spec SHA-256 `{str(result.provenance.get('spec_sha256', ''))[:12]}`."]
    return "\n".join(lines).rstrip() + "\n"


def _headline(result: AuditResult) -> str:
    said, gate = facts(result), result.gate
    if said.level == "error":
        problems = len(gate.errors) if gate is not None else len(result.failures)
        return f"**Gate {said.word}**: the audit is incomplete ({problems} problem(s); {len(result.failures)} check(s) could not run)."
    if said.level == "none":
        return "**Measured, not judged:** no thresholds are set."
    counts = gate.counts
    summary = ", ".join(f"{counts[v]} {v}" for v in ("pass", "warn", "fail", "inconclusive") if counts.get(v))
    return f"**Gate {said.word}** ({summary}; inconclusive counts as {gate.inconclusive_policy})."
