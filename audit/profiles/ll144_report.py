"""The LL144 pack from a result: ``ll144.md`` (the public summary), ``ll144.csv`` and the HTML view.

Everything here reads the result's ``ll144`` measurements and the settings recorded in its
provenance; nothing is measured again, so the three renderings and result.json agree.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from audit.profiles.ll144 import BOUND_METRICS, CHECK, RATE, SMALL_SHARE
from audit.report.format import ci_text, number, percent
from audit.results import AuditResult

FOUR_FIFTHS = 0.8
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TABLE_TITLES = {"sex": "Sex categories", "race_ethnicity": "Race/ethnicity categories",
                "intersectional": "Intersectional categories (sex x race/ethnicity)"}
CSV_FIELDS = (
    "table", "classification", "sex", "race_ethnicity", "applicants", "selected", "rate", "rate_ci_low", "rate_ci_high",
    "impact_ratio", "impact_ratio_ci_low", "impact_ratio_ci_high", "p_value", "test", "excluded", "status",
    *BOUND_METRICS, "unknown_in_table",
)


def settings(result: AuditResult) -> dict[str, Any]:
    return result.provenance.get("profiles", {}).get("ll144", {})


def audit_dates(result: AuditResult) -> tuple[str, str]:
    """The date of the audit and the last date a tool may rely on it (one year later, 5-304)."""
    given = settings(result).get("audit_date")
    day = dt.date.fromisoformat(given) if given else dt.date.fromisoformat(result.provenance["finished"][:10])
    try:
        expiry = day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        expiry = day.replace(year=day.year + 1, day=28)
    return day.isoformat(), expiry.isoformat()


def tables(result: AuditResult) -> list[dict[str, Any]]:
    """One dict per table: its rows (one per category) and its unknown count, in measured order."""
    spec = settings(result)
    column_roles = {(spec.get(role) or {}).get("column"): role for role in ("sex", "race_ethnicity")}
    basis = spec.get("method", "selection")
    out: dict[tuple, dict[str, Any]] = {}
    for m in result.select(CHECK):
        if "table" not in m.params:
            continue
        key = (m.params["table"], m.params.get("classification"))
        table = out.setdefault(key, {"table": key[0], "classification": key[1], "title": TABLE_TITLES[key[0]],
                                     "rows": {}, "unknown": 0, "unknown_note": ""})
        if m.metric == "unknown_count":
            table["unknown"], table["unknown_note"] = int(m.value), m.note
            continue
        label = tuple(m.group.items())
        row = table["rows"].setdefault(label, _empty_row(m.group, column_roles))
        _fill(row, m, basis)
    for table in out.values():
        table["rows"] = list(table["rows"].values())
        table["below_four_fifths"] = [r for r in table["rows"] if _could_fall_below(r)]
    return list(out.values())


def _empty_row(group: dict[str, str], roles: dict[str, str]) -> dict[str, Any]:
    row = {"category": " / ".join(group.values()), "group": group, "excluded": False, "status": None, "note": None,
           "p_value": None, "test": None, "impact_ratio": None, "impact_ratio_ci": None, "rate": None, "rate_ci": None}
    for column, value in group.items():
        row[roles.get(column, column)] = value
    return row


def _fill(row: dict[str, Any], m, basis: str) -> None:
    count_metric, rate_metric = RATE[basis]
    if m.metric == "applicants":
        row["applicants"] = int(m.value)
    elif m.metric == count_metric:
        row["selected"] = int(m.value)
    elif m.metric == rate_metric:
        row["rate"], row["rate_ci"] = m.value, m.ci
    elif m.metric == "impact_ratio":
        row["impact_ratio"], row["impact_ratio_ci"], row["status"], row["note"] = m.value, m.ci, m.status, m.note
    elif m.metric == "impact_ratio_p_value":
        row["p_value"], row["test"] = m.value, m.params.get("test")
    elif m.metric == "excluded_share":
        row["excluded"], row["share"] = True, m.value
    elif m.metric in BOUND_METRICS:
        row[m.metric] = m.value


def _could_fall_below(row: dict[str, Any]) -> bool:
    lows = [row.get("impact_ratio_min_worst_case"), row.get("impact_ratio_min_proportional")]
    return any(v is not None and v < FOUR_FIFTHS for v in lows)


# ---------------------------------------------------------------- ll144.csv


def to_csv(result: AuditResult) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for table in tables(result):
        for row in table["rows"]:
            writer.writerow(_csv_row(table, row))
    return stream.getvalue()


def _csv_row(table: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    rate_ci, ratio_ci = row["rate_ci"] or (None, None), row["impact_ratio_ci"] or (None, None)
    values = {
        "table": table["table"], "classification": table["classification"], "sex": row.get("sex"),
        "race_ethnicity": row.get("race_ethnicity"), "applicants": row.get("applicants"), "selected": row.get("selected"),
        "rate": row["rate"], "rate_ci_low": rate_ci[0], "rate_ci_high": rate_ci[1], "impact_ratio": row["impact_ratio"],
        "impact_ratio_ci_low": ratio_ci[0], "impact_ratio_ci_high": ratio_ci[1], "p_value": row["p_value"],
        "test": row["test"], "excluded": row["excluded"], "status": row["status"], "unknown_in_table": table["unknown"],
    } | {name: row.get(name) for name in BOUND_METRICS}
    return {k: _csv_value(v) for k, v in values.items()}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # a spreadsheet must not run a category name as a formula
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else ""
    return value


# ---------------------------------------------------------------- ll144.md


def to_markdown(result: AuditResult) -> str:
    """The summary of results a bias audit publishes (5-303), then the auditor's detail."""
    from audit.report.markdown import cell

    spec = settings(result)
    basis = spec.get("method", "selection")
    day, expiry = audit_dates(result)
    lines = [f"# Bias audit summary (NYC Local Law 144): {cell(spec.get('tool') or result.name)}", ""]
    lines += [f"- **Date of this bias audit:** {day}. Under 6 RCNY 5-304 the tool may not be used relying on it after "
              f"**{expiry}** (one year).",
              f"- **Distribution date of the tool:** {cell(spec.get('distribution_date') or 'not stated in the spec')}",
              f"- **Independent auditor:** {cell(spec.get('auditor') or 'not stated in the spec')}",
              f"- **Data:** {cell(spec.get('data_type', 'historical'))} data; source and explanation: "
              f"{cell(spec.get('data_source') or 'not stated in the spec')}",
              f"- **Data period:** {cell(spec.get('data_period') or 'not stated in the spec')}"]
    if spec.get("data_type") == "test":
        lines.append(f"- **Why test data, and how it was made:** {cell(spec.get('test_data_explanation'))}")
    lines += [f"- **Method:** {_method_text(result, basis)}", ""]
    from audit.report.facts import confidence_label  # not at import: config imports the profiles

    level = confidence_label(result)
    for table in tables(result):
        lines += _markdown_table(table, basis, cell, level)
    lines += _exclusions(result, cell) + _bounds_section(result, cell) + _thresholds(result, cell)
    return "\n".join(lines).rstrip() + "\n"


def _method_text(result: AuditResult, basis: str) -> str:
    if basis == "selection":
        return ("the tool selects or classifies: selection rate = selected / applicants in the category; impact ratio = "
                "the category's selection rate / the selection rate of the most selected category.")
    median = next((m.value for m in result.select(CHECK, "median_score")), None)
    shown = number(median, 4) if median is not None else "computed by the data provider"
    return ("the tool scores: scoring rate = the share of the category scoring above the median score of the full "
            f"sample ({shown}); impact ratio = the category's scoring rate / the highest scoring rate.")


def _markdown_table(table: dict[str, Any], basis: str, cell, level: str) -> list[str]:
    count_name, rate_name = ("Selected", "Selection rate") if basis == "selection" else ("Above median", "Scoring rate")
    title = table["title"] + (f", classification group {cell(table['classification'])}" if table["classification"] else "")
    lines = [f"## {title}", "", f"| Category | Applicants | {count_name} | {rate_name} | Impact ratio |", "|---|---:|---:|---:|---:|"]
    for row in table["rows"]:
        ratio = "excluded (under 2%)" if row["excluded"] else _ratio_text(row["impact_ratio"])
        lines.append(f"| {cell(row['category'])} | {row.get('applicants', 0):,} | {row.get('selected', 0):,} | "
                     f"{percent(row['rate'])} | {ratio} |")
    lines += ["", f"Individuals in an unknown category, left out of this table: **{table['unknown']:,}**.", "",
              "<details><summary>Intervals, tests and missing-data bounds</summary>", "",
              f"| Category | {rate_name} {level} CI | Impact ratio {level} CI | p-value (test) | Impact ratio, worst case | "
              "Impact ratio, proportional |", "|---|---|---|---|---|---|"]
    for row in table["rows"]:
        test = f"{row['p_value']:.3g} ({'z' if row['test'] == 'z' else 'Fisher'})" if row["p_value"] is not None else "-"
        lines.append(f"| {cell(row['category'])} | {ci_text(row['rate_ci'])} | {ci_text(row['impact_ratio_ci'])} | "
                     f"{test} | {_range(row, 'impact_ratio', 'worst_case')} | {_range(row, 'impact_ratio', 'proportional')} |")
    return lines + ["", "</details>", ""]


def _ratio_text(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _range(row: dict[str, Any], what: str, kind: str) -> str:
    low, high = row.get(f"{what}_min_{kind}"), row.get(f"{what}_max_{kind}")
    return "-" if low is None or high is None else f"{low:.3f} to {high:.3f}"


def _exclusions(result: AuditResult, cell) -> list[str]:
    excluded = [(t, r) for t in tables(result) for r in t["rows"] if r["excluded"]]
    if not excluded:
        return []
    lines = ["## Categories excluded from the impact ratios (6 RCNY 5-301(d))", "",
             f"Each represents less than {SMALL_SHARE:.0%} of the data. Auditor's justification: "
             f"{cell(settings(result).get('exclusion_justification'))}", ""]
    for table, row in excluded:
        lines.append(f"- {cell(table['title'])}: {cell(row['category'])}: {row['applicants']:,} applicants, rate "
                     f"{percent(row['rate'])} ({percent(row.get('share'), 2)} of the data)")
    return lines + [""]


def _bounds_section(result: AuditResult, cell) -> list[str]:
    lines = ["## What the unknown categories could change", "",
             "Bounds as in Gerchick et al. (FAccT 2025), 'Auditing the Audits': *worst case*, every unknown individual "
             "in one category, all selected or none; *proportional*, the unknowns shared out in proportion to the known "
             "category sizes, each share all selected or none. The four-fifths rule (0.8) is a common screen, not the law.", ""]
    any_table = False
    for table in tables(result):
        below = table["below_four_fifths"]
        if not below:
            continue
        any_table = True
        names = ", ".join(cell(r["category"]) for r in below)
        lines.append(f"- {cell(table['title'])}: at the low end of the bounds an impact ratio is below 0.8 for {names}.")
    if not any_table:
        lines.append("- No impact ratio falls below 0.8 even at the low end of these bounds.")
    return lines + [""]


def _thresholds(result: AuditResult, cell) -> list[str]:
    lines = ["## Thresholds", "", "The law sets no pass mark for an impact ratio. Thresholds on `impact_ratio` are the "
             "user's choice, set in the audit spec."]
    own = [f for f in result.findings if f.metric in set(BOUND_METRICS) | {"impact_ratio", "selection_rate", "scoring_rate"}
           and (f.check in (None, CHECK))]
    if result.gate is not None and result.findings:
        lines.append(f"The audit's gate: **{'PASSED' if result.gate.passed else 'FAILED'}**.")
    for finding in own:
        lines.append(f"- {finding.verdict.upper()}: {cell(finding.threshold)}: {cell(finding.reason)}")
    if not result.findings:
        lines.append("This audit sets none: it measures and does not judge.")
    return lines + [""]
