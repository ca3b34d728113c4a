"""Key-finding rules that read the explanations and weigh certainty: (weight, sentence) candidates.

Kept apart from the module that picks the top findings so any summary step can call them.
Weights rank a candidate by size and certainty: thresholds (80-100) outrank what the audit
infers; an inferred finding gains weight with its size and loses it when its interval cannot
tell it from no effect.
"""

from __future__ import annotations

from audit.results import AuditResult, Measurement

MEASURES = {"cramers_v": "Cramér's V", "correlation_ratio": "correlation ratio"}
PROXY_ASSOCIATION = 0.5
"""A model input this associated with a sensitive column (Cramér's V, correlation ratio) stands in for it."""


def proxies(result: AuditResult) -> list[tuple[float, str]]:
    """The strongest proxy of each sensitive column, and how much of the group gap it carries."""
    out = []
    strongest: dict[str, Measurement] = {}
    for m in result.select("explanations", "proxy_association"):
        column = m.params.get("sensitive")
        if m.value is not None and m.value >= PROXY_ASSOCIATION and (column not in strongest or m.value > strongest[column].value):
            strongest[column] = m
    for column, m in strongest.items():
        feature, measure = m.params["feature"], MEASURES.get(m.params.get("measure"), "association")
        text = (f"{feature} stands in for {column} (association {m.value:.2f}, {measure}): the model can tell "
                f"{column} groups apart through it even where {column} itself is not used.")
        carried = _gap_share(result, column, feature)
        if carried is not None:
            share, group, reference = carried
            text = text[:-1] + f"; it carries {share:.0%} of the model's output gap between {group} and {reference}."
        out.append((60.0 + 40 * (m.value - PROXY_ASSOCIATION), text))
    return out


def _gap_share(result: AuditResult, column: str, feature: str) -> tuple[float, str, str] | None:
    """The share of the largest group gap (signed attributions, first method) going to ``feature``."""
    rows = [m for m in result.select("explanations", "group_attribution_difference")
            if m.group and list(m.group) == [column] and m.value is not None]
    if not rows:
        return None
    method = rows[0].params.get("method")
    gaps: dict[str, dict[str, float]] = {}
    for m in rows:
        if m.params.get("method") == method:
            gaps.setdefault(str(m.group[column]), {})[m.params.get("feature")] = m.value
    group, parts = max(gaps.items(), key=lambda item: abs(sum(item[1].values())))
    total = sum(parts.values())
    if total == 0 or feature not in parts or parts[feature] / total <= 0:
        return None
    reference = next(m.params.get("reference") for m in rows if str(m.group[column]) == group)
    return parts[feature] / total, f"{column}={group}", str(reference)


def certainty(weight: float, m: Measurement, bound: float, *, below: bool) -> float:
    """``weight`` raised when the whole interval is past ``bound``, lowered when it reaches back across."""
    if not m.ci:
        return weight
    low, high = m.ci
    if (high < bound) if below else (low > bound):
        return weight + 5.0
    return weight - 15.0


def same_when_shown(a: float, b: float, digits: int = 3) -> bool:
    """Whether two numbers print the same (to ``digits`` significant digits): never compare them in words."""
    return f"{a:.{digits}g}" == f"{b:.{digits}g}"
