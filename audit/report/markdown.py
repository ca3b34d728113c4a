"""summary.md: the gate as a Markdown table for pull-request comments and $GITHUB_STEP_SUMMARY.

GitHub renders HTML inside Markdown, so user text is HTML-escaped, and pipes and line breaks
are neutralised so a value cannot break the table.
"""

from __future__ import annotations

import html

from audit.gate import SEVERITY
from audit.report.facts import confidence_label
from audit.report.format import ci_text, number
from audit.results import AuditResult

ICONS = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}


def cell(text: object) -> str:
    escaped = html.escape(str(text), quote=False)
    for raw, safe in (("|", "\\|"), ("\r", " "), ("\n", " "), ("`", "\\`"), ("*", "\\*"), ("_", "\\_"), ("[", "\\["), ("]", "\\]")):
        escaped = escaped.replace(raw, safe)
    return escaped


def render(result: AuditResult) -> str:
    lines = [f"## rai-audit: {cell(result.name)}", "", _headline(result), ""]
    if result.findings:
        lines += [f"| Verdict | Threshold | Value | {confidence_label(result)} CI | Why |", "|---|---|---|---|---|"]
        for finding in result.findings:
            worst = _worst_match(finding)
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
    if result.failures:
        return f"**Audit incomplete: {len(result.failures)} check(s) could not run.**"
    if not result.findings:
        return "**Measured, not judged:** no thresholds are set."
    counts = result.gate.counts
    summary = ", ".join(f"{counts[v]} {v}" for v in ("pass", "warn", "fail", "inconclusive") if counts.get(v))
    verdict = "PASSED" if result.gate.passed else "FAILED"
    return f"**Gate {verdict}** ({summary}; inconclusive counts as {result.gate.inconclusive_policy})."


def _worst_match(finding):
    if not finding.matches:
        return None
    return max(finding.matches, key=lambda m: SEVERITY[m.verdict])
