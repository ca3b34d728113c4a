"""The text section's view: bias AUCs, counterfactual swaps, token attributions and attacks.

Reads the text checks' measurements and lays them out for report.html; it measures nothing.
Every text (posts, rewritten posts, highlighted words) is plain data here, escaped by the
template; highlighting is a colour per word computed from its attribution.
"""

from __future__ import annotations

from typing import Any

from audit.results import AuditResult, Measurement

CHECKS = ("identity_bias", "counterfactual", "token_attributions", "text_robustness")


def text_view(result: AuditResult) -> dict[str, Any]:
    failures = {f.check: f.message for f in result.failures if f.check in CHECKS}
    ran = [c for c in CHECKS if c in result.checks_run]
    return {
        "ran": bool(ran),
        "failures": failures,
        "summary": result.data.get("text", {}),
        "bias": _bias(result),
        "counterfactual": _counterfactual(result),
        "attributions": _attributions(result),
        "attacks": _attacks(result),
    }


def _bias(result: AuditResult) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for m in result.select("identity_bias"):
        if m.group:
            rows.setdefault(m.group["identity"], {"group": m.group["identity"], "n": m.n})[m.metric] = m
    summary = {m.metric: m for m in result.select("identity_bias") if m.group is None}
    return {"rows": list(rows.values()), "summary": summary}


def _counterfactual(result: AuditResult) -> dict[str, Any]:
    rows: dict[tuple, dict[str, Any]] = {}
    for m in result.select("counterfactual"):
        if m.metric == "counterfactual_example":
            continue
        key = (m.params["swap"], m.params["direction"])
        rows.setdefault(key, {"swap": key[0], "direction": key[1]})[m.metric] = m
    examples = [
        {"swap": m.params["swap"], "direction": m.params["direction"], "row": m.params["row"],
         "text": m.params["text"], "counterfactual": m.params["counterfactual"],
         "score": m.params["score"], "counterfactual_score": m.params["counterfactual_score"], "change": m.value}
        for m in result.select("counterfactual", "counterfactual_example")
    ]
    return {"rows": list(rows.values()), "examples": examples}


def _attributions(result: AuditResult) -> dict[str, Any]:
    importance = result.select("token_attributions", "token_importance")
    return {
        "tokens": [m for m in importance if m.group is None],
        "groups": _group_tokens([m for m in importance if m.group]),
        "identity": result.select("token_attributions", "identity_attribution_share"),
        "trust": result.select("token_attributions", "completeness_gap") + result.select("token_attributions", "method_agreement"),
        "texts": [_highlighted(m) for m in result.select("token_attributions", "highlighted_text")],
        "explained": result.select("token_attributions", "texts_explained"),
    }


def _group_tokens(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per group (identity mention or metadata value), its top words in ranked order."""
    groups: dict[tuple, dict[str, Any]] = {}
    for m in measurements:
        key = tuple(sorted(m.group.items()))
        label = ", ".join(f"{column}: {value}" for column, value in key)
        groups.setdefault(key, {"group": label, "tokens": []})["tokens"].append(m)
    return list(groups.values())


def _highlighted(m: Measurement) -> dict[str, Any]:
    """A highlighted text; a counterfactual one also has its rewritten text, coloured on the same scale."""
    words = m.params["words"]
    swapped = m.params.get("counterfactual_words") or []
    scale = max((abs(v) for _, v in words + swapped), default=0.0) or 1.0
    return {
        "row": m.params["row"], "reason": m.params["reason"], "label": m.params["label"], "score": m.value,
        "method": m.params["method"], "words": _coloured(words, scale),
        "counterfactual_words": _coloured(swapped, scale), "direction": m.params.get("direction"),
        "counterfactual_change": m.params.get("counterfactual_change"),
    }


def _coloured(words: list, scale: float) -> list[dict[str, Any]]:
    return [{"text": w, "value": v, "style": _colour(v / scale)} for w, v in words]


def _colour(share: float) -> str:
    # orange pushes towards the explained class, blue away (Okabe-Ito), alpha by strength
    red, green, blue = (230, 159, 0) if share > 0 else (0, 114, 178)
    return f"background-color: rgba({red}, {green}, {blue}, {min(abs(share), 1.0) * 0.6:.2f})"


def _attacks(result: AuditResult) -> dict[str, Any]:
    rows: dict[tuple, dict[str, Any]] = {}
    for m in result.select("text_robustness"):
        if m.group is None and "budget" in m.params:
            key = (m.params["attack"], m.params["budget"])
            rows.setdefault(key, {"attack": key[0], "budget": key[1]})[m.metric] = m
    groups = [m for m in result.select("text_robustness", "robust_accuracy") if m.group]
    examples = [m.params | {"adversarial_score": m.value} for m in result.select("text_robustness", "adversarial_text")]
    attacked = result.select("text_robustness", "texts_attacked")
    return {"rows": [rows[k] for k in sorted(rows)], "groups": groups, "examples": examples,
            "attacked": int(attacked[0].value) if attacked else None}
