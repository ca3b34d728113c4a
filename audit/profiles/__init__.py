"""Regulatory report profiles: packs of files laid out as a regulation asks, from the same result.

``report.profiles: [ll144, eu_ai_act]`` in a spec (or ``rai-audit run --profile NAME``). The
``ll144`` profile also turns on the ``ll144`` check (its tables are measurements, so thresholds
such as ``impact_ratio >= 0.8`` work as any other); ``eu_ai_act`` only lays out what the audit
measured. The settings travel in ``provenance.profiles`` so a stored result renders the same.
"""

from __future__ import annotations

from typing import Any, Callable

from audit.profiles import eu_ai_act, ll144_report
from audit.results import AuditResult

FILES: dict[str, Callable[[AuditResult], dict[str, str]]] = {
    "ll144": lambda result: {"ll144.md": ll144_report.to_markdown(result), "ll144.csv": ll144_report.to_csv(result)},
    "eu_ai_act": lambda result: {"annex_iv.md": eu_ai_act.to_markdown(result)},
}


def with_profiles(config, names: list[str]):
    """The config with more profiles switched on (``--profile``), its source and hash kept."""
    wanted = list(dict.fromkeys([*config.report.profiles, *names]))
    return config.model_copy(update={"report": config.report.model_copy(update={"profiles": wanted})})


def provenance(config) -> dict[str, Any]:
    """What the renderers need later: the chosen profiles and their settings."""
    names = list(config.report.profiles)
    if not names:
        return {}
    block: dict[str, Any] = {"names": names}
    if "ll144" in names and config.report.ll144 is not None:
        block["ll144"] = config.report.ll144.model_dump(mode="json")
    if "eu_ai_act" in names:
        block["eu_ai_act"] = config.report.eu_ai_act.model_dump(mode="json")
    return {"profiles": block}


def chosen(result: AuditResult) -> list[str]:
    return list(result.provenance.get("profiles", {}).get("names", []))


def files(result: AuditResult) -> dict[str, str]:
    """Every profile file of the result, by name."""
    out: dict[str, str] = {}
    for name in chosen(result):
        out |= FILES[name](result)
    return out


def view(result: AuditResult) -> dict[str, Any]:
    """What the report's profile sections show (empty when no profile is chosen)."""
    names = chosen(result)
    out: dict[str, Any] = {}
    if "ll144" in names:
        day, expiry = ll144_report.audit_dates(result)
        out["ll144"] = {"tables": ll144_report.tables(result), "settings": ll144_report.settings(result),
                        "audit_date": day, "expiry": expiry}
    if "eu_ai_act" in names:
        out["eu_ai_act"] = {"sections": eu_ai_act.sections(result), "to_complete": eu_ai_act.TO_COMPLETE}
    return out
