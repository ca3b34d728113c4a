"""compare.md and compare.html for `rai-audit compare`: regressions first, then every change."""

from __future__ import annotations

from typing import Any

from audit.compare import Change, Comparison
from audit.report.format import ci_text, number
from audit.report.markdown import ICONS, cell


def _where(change: Change) -> str:
    parts = [", ".join(f"{k}={v}" for k, v in change.group.items())] if change.group else []
    parts += [f"{k}={v}" for k, v in change.params.items() if k not in {"highest_group", "lowest_group"}]
    return "; ".join(parts) or "overall"


def _delta(change: Change) -> str:
    return "-" if change.delta is None else f"{change.delta:+.4f}"


def _significance(change: Change) -> str:
    return {True: "yes", False: "no", None: "unknown"}[change.significant]


def markdown(comparison: Comparison) -> str:
    judged = [c for c in comparison.changes if c.verdict is not None]
    notable = [c for c in comparison.changes if c.significant and c.verdict is None]
    lines = [
        f"## rai-audit compare: {cell(comparison.baseline)} → {cell(comparison.candidate)}",
        "",
        f"**{'Regression gate FAILED' if comparison.verdict == 'fail' else 'No regression beyond the allowances'}** "
        f"({len(comparison.changes)} shared measurements, {len(notable)} other significant changes).",
        "",
    ]
    lines += [f"- warning: {cell(w)}" for w in comparison.warnings]
    if judged:
        lines += ["", "| Verdict | Metric | Where | Baseline | Candidate | Change | Allowed worsening | Significant |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in sorted(judged, key=lambda c: (c.verdict != "fail", c.verdict != "inconclusive", c.metric)):
            lines.append(
                f"| {ICONS[c.verdict]} | {cell(c.metric)} | {cell(_where(c))} | {number(c.baseline)} | "
                f"{number(c.candidate)} | {_delta(c)} | {c.allowed:g} | {_significance(c)} |"
            )
    if comparison.left_out:
        lines += ["", "Not judged: groups below min_group_size (listed, never judged; `--small-groups include` judges them):", ""]
        lines += [f"- {cell(c.metric)} ({cell(_where(c))}): {number(c.baseline)} → {number(c.candidate)}"
                  for c in comparison.left_out[:50]]
    if notable:
        lines += ["", "Other significant changes:", "", "| Check | Metric | Where | Baseline | Candidate | Change |", "|---|---|---|---|---|---|"]
        for c in notable[:50]:
            lines.append(f"| {cell(c.check)} | {cell(c.metric)} | {cell(_where(c))} | {number(c.baseline)} | {number(c.candidate)} | {_delta(c)} |")
    return "\n".join(lines).rstrip() + "\n"


def html_view(comparison: Comparison) -> dict[str, Any]:
    rows = []
    for c in comparison.changes:
        rows.append({
            "check": c.check, "metric": c.metric, "where": _where(c), "baseline": number(c.baseline),
            "baseline_ci": ci_text(c.baseline_ci), "candidate": number(c.candidate), "candidate_ci": ci_text(c.candidate_ci),
            "delta": _delta(c), "significant": _significance(c), "verdict": c.verdict or "",
            "allowed": "" if c.allowed is None else f"{c.allowed:g}", "note": c.note or "",
        })
    order = {"fail": 0, "inconclusive": 1, "warn": 2, "pass": 3, "": 4}
    rows.sort(key=lambda r: (order[r["verdict"]], r["significant"] != "yes", r["check"], r["metric"]))
    return {"comparison": comparison, "rows": rows}


def html(comparison: Comparison) -> str:
    from audit.report.html import environment

    env = environment()
    css = env.loader.get_source(env, "report.css")[0]
    return env.get_template("compare.html.j2").render(view=html_view(comparison), css=css)
