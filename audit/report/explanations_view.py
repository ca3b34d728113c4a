"""The explanations section's view: sentences, importance charts, group tables, trust, local charts.

Reads the explanations check's measurements (see :mod:`audit.explain.measurements`) and lays
them out for report.html; it measures nothing. Text is plain (the template escapes it);
charts are inline SVG, heatmaps tiny PNG data URIs scaled up by the browser, so the section's
size grows with features, groups and chosen rows, never with the data.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections import defaultdict
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from audit.catalogue import catalogue
from audit.report import charts
from audit.report.facts import confidence_label
from audit.results import AuditResult, Measurement

CHECK = "explanations"
WATERFALL_FEATURES = 8  # the rest of a row's columns are drawn as one bar
SENTENCE_FEATURES = 3
POSITIVE, NEGATIVE = charts.PALETTE[3], charts.PALETTE[0]  # vermillion pushes up, blue pushes down
CONCEPTS = {  # the section's words beside its metrics, whose meaning the catalogue gives
    "attribution": "How much one input moved the model's output for one row, relative to a reference "
    "(the baseline input, or the average output over background rows).",
    "mean |attribution|": "The average size of a feature's attributions over rows, whatever their sign: how much the model's "
    "output moves with that feature.",
    "randomisation check": "The same method on a copy of the model with random weights: explanations that stay similar "
    "describe the input rather than what the model learned.",
    "proxy": "A model input strongly associated with a sensitive column (Cramér's V for categories, the correlation ratio "
    "for numbers), through which a model can use the sensitive column without seeing it.",
}


def glossary() -> dict[str, str]:
    return CONCEPTS | catalogue().glossary((CHECK,))


def explanations_view(result: AuditResult) -> dict[str, Any]:
    """Everything the explanations section shows, as plain data and escaped charts."""
    found = result.select(CHECK)
    failed = [f.message for f in result.failures if f.check == CHECK]
    settings = [m for m in found if m.metric == "rows_explained"]
    if not settings:
        return {"measured": False, "failure": failed[0] if failed else None, "glossary": glossary()}
    by_metric: dict[str, list[Measurement]] = defaultdict(list)
    for m in found:
        by_metric[m.metric].append(m)
    primary = settings[0].params["method"]
    level = confidence_label(result)
    image = bool(by_metric["attribution_map"] or by_metric["group_attribution_map"])
    additive = bool(settings[0].params.get("additive", False))
    groups = _groups(by_metric, primary, level, additive, result.artefact)
    return {
        "measured": True,
        "failure": failed[0] if failed else None,
        "primary": primary,
        "output": settings[0].params.get("output", "the model's output"),
        "level": level,
        "image": image,
        "methods": [_method_row(m) for m in settings],
        "importance": _importance(by_metric["feature_importance"], [m.params["method"] for m in settings], level),
        "sentences": _sentences(by_metric, primary, level, groups, image),
        "groups": groups,
        "trust": _trust(by_metric, [m.params["method"] for m in settings], level),
        "local": _local_images(by_metric, result.artefact) if image else _waterfalls(by_metric, primary),
        "glossary": glossary(),
    }


def _method_row(m: Measurement) -> dict[str, Any]:
    hidden = {"method", "library", "output", "target", "additive", "reference"}
    shown = {k: v for k, v in m.params.items() if k not in hidden}
    return {
        "name": m.params["method"],
        "library": m.params.get("library", ""),
        "rows": int(m.value or 0),
        "note": m.note,
        "settings": ", ".join(f"{k.replace('_', ' ')} {_setting(v)}" for k, v in shown.items()),
        "target": m.params.get("target", "predicted"),
        "additive": bool(m.params.get("additive", False)),
        "reference": m.params.get("reference", ""),
    }


def _setting(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


# ---------------------------------------------------------------- global importance


def _importance(measured: list[Measurement], methods: list[str], level: str) -> dict[str, Any]:
    table: dict[str, dict[str, Measurement]] = defaultdict(dict)
    for m in measured:
        table[m.params["feature"]][m.params["method"]] = m
    first = methods[0]
    order = sorted(table, key=lambda f: -(table[f].get(first).value or 0) if table[f].get(first) else 0)
    bars = [charts.Bar(f, table[f][first].value, *(table[f][first].ci or (None, None)))
            for f in order if first in table[f] and table[f][first].value is not None]
    top = max((b.high if b.high is not None else b.value for b in bars), default=1.0) or 1.0
    chart = charts.interval_bars(
        bars, title=f"Mean absolute attribution per feature ({first}), with {level} intervals",
        axis="mean |attribution|", domain=(0.0, _nice(top)),
    ) if bars else None
    rows = [{"feature": f, "cells": [table[f].get(method) for method in methods]} for f in order]
    return {"chart": chart, "methods": methods, "rows": rows}


def _nice(value: float) -> float:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value))


# ---------------------------------------------------------------- groups


def _groups(by_metric: dict[str, list[Measurement]], primary: str, level: str, additive: bool,
            figure) -> list[dict[str, Any]]:
    columns: dict[str, dict[str, Any]] = {}
    for m in by_metric["group_feature_importance"]:
        column, label = next(iter(m.group.items()))
        entry = columns.setdefault(column, {"name": column, "labels": [], "cells": defaultdict(dict), "small": set()})
        if label not in entry["labels"]:
            entry["labels"].append(label)
        entry["cells"][m.params["feature"]][label] = m
        if m.status == "insufficient":
            entry["small"].add(label)
    out = []
    for column, entry in columns.items():
        features = list(entry["cells"])
        out.append({
            "name": column,
            "labels": entry["labels"],
            "small": sorted(entry["small"]),
            "rows": [{"feature": f, "cells": [entry["cells"][f].get(label) for label in entry["labels"]]} for f in features],
            "drivers": _drivers(by_metric, column, additive),
            "reliance": _reliance(by_metric, column, primary, level),
            "maps": _group_maps(by_metric, column, figure),
        })
    return out


def _drivers(by_metric: dict[str, list[Measurement]], column: str, additive: bool) -> list[dict[str, Any]]:
    """Per group compared with the reference: the total gap and the features carrying most of it."""
    signed = [m for m in by_metric["group_attribution_difference"] if column in m.group]
    kind = "signed"
    if not signed:
        signed, kind = [m for m in by_metric["group_importance_difference"] if column in m.group], "absolute"
    per_group: dict[str, list[Measurement]] = defaultdict(list)
    for m in signed:
        per_group[m.group[column]].append(m)
    out = []
    for label, found in per_group.items():
        defined = [m for m in found if m.value is not None]
        if not defined:
            continue
        ranked = sorted(defined, key=lambda m: -abs(m.value))
        out.append({
            "group": f"{column}={label}",
            "reference": found[0].params.get("reference", ""),
            "kind": kind,
            "total": float(sum(m.value for m in defined)),
            "top": [{"feature": m.params["feature"], "value": m.value, "ci": m.ci} for m in ranked[:SENTENCE_FEATURES]],
            "status": next((m.status for m in found if m.status), None),
            "output": found[0].params.get("output"),
            "additive": additive,
        })
    return sorted(out, key=lambda d: (d["status"] is not None, -abs(d["total"])))


def _reliance(by_metric: dict[str, list[Measurement]], column: str, primary: str, level: str) -> dict[str, Any]:
    direct = next((m for m in by_metric["sensitive_reliance"] if m.params.get("sensitive") == column
                   and m.params.get("method") == primary), None)
    together = next((m for m in by_metric["sensitive_and_proxy_reliance"] if m.params.get("sensitive") == column
                     and m.params.get("method") == primary), None)
    associations = [m for m in by_metric["proxy_association"] if m.params.get("sensitive") == column]
    proxies = list(together.params["proxies"]) if together else []
    strength = {m.params["feature"]: m for m in associations}
    return {
        "direct": direct,
        "together": together,
        "proxies": [{"feature": p, "association": strength[p].value, "measure": strength[p].params["measure"]}
                    for p in proxies if p in strength],
        "associations": sorted(associations, key=lambda m: -(m.value or 0)),
        "is_input": direct is not None and direct.note is None,
    }


def _group_maps(by_metric: dict[str, list[Measurement]], column: str, figure) -> list[dict[str, Any]]:
    out = []
    for m in by_metric["group_attribution_map"]:
        if column in m.group:
            found = figure(m)
            out.append({"label": f"{column}={m.group[column]}", "n": m.n,
                        "png": heat_png(None, found["map"], found["shape"], signed=False)})
    return out


# ---------------------------------------------------------------- sentences


def _sentences(by_metric, primary: str, level: str, groups: list[dict[str, Any]], image: bool) -> list[str]:
    out = []
    ranked = sorted((m for m in by_metric["feature_importance"] if m.params["method"] == primary and m.value is not None),
                    key=lambda m: -m.value)
    if ranked:
        named = _join([f"{m.params['feature']} ({m.value:.3g})" for m in ranked[:SENTENCE_FEATURES]])
        what = "regions of the image" if image else "features"
        out.append(f"By {primary}, the {what} that move the model's output most are {named} (mean absolute attribution).")
    for group in groups:
        out += _reliance_sentences(group["name"], group["reliance"], level)
        if group["drivers"]:
            out.append(_driver_sentence(group["drivers"][0], "regions" if image else "features"))
    return out


def _reliance_sentences(column: str, reliance: dict[str, Any], level: str) -> list[str]:
    direct, together = reliance["direct"], reliance["together"]
    if direct is None:
        return []
    if not reliance["is_input"]:
        text = f"{column} is not a model input, so the model cannot use it directly."
    else:
        text = f"{column} is a model input and carries {_pct(direct.value)} of all attribution{_ci_pct(direct.ci, level)}."
    if together is not None and reliance["proxies"]:
        named = _join([f"{p['feature']} ({_measure_name(p['measure'])} {p['association']:.2f})" for p in reliance["proxies"]])
        share = _pct(together.value)
        scope = f"{column} and these columns together" if reliance["is_input"] else "these columns"
        text += (f" The inputs most associated with {column} are {named}; {scope} carry {share} of the attribution"
                 f"{_ci_pct(together.ci, level)}, an upper bound on what the model could draw from {column} through them.")
    return [text]


def _driver_sentence(driver: dict[str, Any], what: str) -> str:
    named = _join([f"{t['feature']} ({t['value']:+.3g})" for t in driver["top"]])
    reference, group = driver["reference"], driver["group"]
    if driver["kind"] == "signed" and driver["additive"]:
        direction = "higher" if driver["total"] > 0 else "lower"
        text = (f"For {group}, {driver['output'] or 'the output'} is {abs(driver['total']):.3g} {direction} on average "
                f"than for {reference}; the {what} carrying most of that gap are {named}.")
    elif driver["kind"] == "signed":
        text = (f"Compared with {reference}, the attributions toward the positive class for {group} differ most in {named} "
                "(mean attribution, group minus reference).")
    else:
        text = (f"Compared with {reference}, the {what} whose importance differs most for {group} are {named} "
                "(mean absolute attribution, group minus reference).")
    if driver["status"] == "insufficient":
        text += " Insufficient: one of the groups has too few explained rows to judge."
    return text


def _measure_name(measure: str) -> str:
    return {"cramers_v": "Cramér's V", "correlation_ratio": "correlation ratio"}.get(measure, measure)


def _pct(value: float | None) -> str:
    return "an undefined share" if value is None else f"{100 * value:.1f}%"


def _ci_pct(ci, level: str) -> str:
    if not ci or ci[0] is None:
        return ""
    return f" ({level} CI {100 * ci[0]:.1f}% to {100 * ci[1]:.1f}%)"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- trust


def _trust(by_metric: dict[str, list[Measurement]], methods: list[str], level: str) -> dict[str, Any]:
    cells: dict[str, dict[str, Measurement]] = defaultdict(dict)
    for metric in ("completeness_gap", "infidelity", "sensitivity", "randomization_similarity"):
        for m in by_metric[metric]:
            cells[m.params["method"]][metric] = m
    rows = [{"method": name, **{k: cells[name].get(k) for k in ("completeness_gap", "infidelity", "sensitivity",
                                                                 "randomization_similarity")}} for name in methods]
    pairs: dict[str, dict[str, Measurement]] = defaultdict(dict)
    for m in by_metric["method_agreement"]:
        pairs[m.params["methods"]][m.params["kind"]] = m
    agreement = [{"methods": pair, "spearman": found.get("spearman"), "top_k": found.get("top_k"),
                  "k": found["top_k"].params.get("k") if "top_k" in found else None} for pair, found in pairs.items()]
    return {"rows": rows, "agreement": agreement, "sentences": _trust_sentences(rows, agreement),
            "randomization": any(r["randomization_similarity"] for r in rows), "measured": bool(by_metric["infidelity"])}


def _trust_sentences(rows: list[dict[str, Any]], agreement: list[dict[str, Any]]) -> list[str]:
    out = []
    for pair in agreement:
        rho, overlap = pair["spearman"], pair["top_k"]
        if rho is None or rho.value is None or overlap is None:
            continue
        word = "largely agree" if rho.value >= 0.7 else ("partly agree" if rho.value >= 0.4 else "disagree")
        out.append(f"{pair['methods'].replace(' vs ', ' and ')} {word} on the order of features (Spearman {rho.value:.2f}); "
                   f"on average {overlap.value * pair['k']:.1f} of their top {pair['k']} features are the same.")
    for row in rows:
        gap = row["completeness_gap"]
        if gap is not None and gap.value is not None:
            quality = "exactly" if gap.value < 1e-4 else f"to within {100 * gap.value:.1f}%"
            out.append(f"{row['method']} attributions add up {quality} to the change in output they explain.")
        similar = row["randomization_similarity"]
        if similar is not None and similar.value is not None:
            verdict = ("so they depend on what the model learned" if similar.value < 0.5
                       else "so treat them with caution: they may describe the input more than the model")
            out.append(f"With random weights, {row['method']} attributions keep a rank correlation of "
                       f"{similar.value:.2f} with the trained model's, {verdict}.")
    return out


# ---------------------------------------------------------------- local explanations


def _waterfalls(by_metric: dict[str, list[Measurement]], primary: str) -> list[dict[str, Any]]:
    outputs = {(m.params["row"], m.params["method"]): m for m in by_metric["local_output"]}
    features: dict[tuple, list[Measurement]] = defaultdict(list)
    for m in by_metric["local_attribution"]:
        features[(m.params["row"], m.params["method"])].append(m)
    out = []
    for (row, method), head in outputs.items():
        if method != primary:
            continue
        others = sorted({name for (r, name) in outputs if r == row and name != primary})
        out.append({
            "row": row,
            "title": _row_title(head),
            "chart": waterfall(features[(row, method)], head),
            "compare": _compare_methods(features, row, [primary, *others]),
        })
    return out


def _row_title(head: Measurement) -> str:
    p = head.params
    probability = f" (probability {p['probability']:.3f})" if "probability" in p else ""
    return f"Row {p['row']}, {p['reason']}: predicted '{p['predicted']}'{probability}, true label '{p['label']}'; explained toward '{p['class']}'"


def _compare_methods(features: dict[tuple, list[Measurement]], row: int, methods: list[str]) -> dict[str, Any] | None:
    if len(methods) < 2:
        return None
    values = {name: {m.params["feature"]: m.value for m in features[(row, name)]} for name in methods}
    order = sorted(values[methods[0]], key=lambda f: -abs(values[methods[0]][f]))
    return {"methods": methods, "rows": [{"feature": f, "values": [values[name].get(f) for name in methods]} for f in order]}


def waterfall(parts: list[Measurement], head: Measurement) -> Markup:
    """From the base value, each feature's push up or down, to the explained output."""
    ranked = sorted(parts, key=lambda m: -abs(m.value))
    shown = [(f"{m.params['feature']} = {m.params.get('value', '')}".rstrip(" ="), m.value) for m in ranked[:WATERFALL_FEATURES]]
    rest = ranked[WATERFALL_FEATURES:]
    if rest:
        shown.append((f"{len(rest)} other columns", float(sum(m.value for m in rest))))
    base = float(head.params["base_value"])
    steps = [base]
    for _, value in shown:
        steps.append(steps[-1] + value)
    low, high = min(steps + [head.value]), max(steps + [head.value])
    pad = (high - low) * 0.08 or 1.0
    return _waterfall_svg(shown, steps, head.value, (low - pad, high + pad), head.params.get("class", ""))


def _waterfall_svg(shown, steps, output: float, domain: tuple[float, float], target: str) -> Markup:
    left, right, row, top = 230, 70, 22, 26
    width = 660
    height = top + row * (len(shown) + 2) + 40

    def x(value: float) -> float:
        return left + (value - domain[0]) / (domain[1] - domain[0]) * (width - left - right)

    body = _axis(x, domain, top=top - 6, bottom=height - 40, label=f"explained output toward '{target}'", width=width)
    body.append(_bar_row("base value", steps[0], steps[0], top, row, x, left, charts.INK))
    for index, (label, value) in enumerate(shown):
        start, end = steps[index], steps[index + 1]
        body.append(_bar_row(label, start, end, top + row * (index + 1), row, x, left, POSITIVE if value >= 0 else NEGATIVE, value))
    body.append(_bar_row("model output", output, output, top + row * (len(shown) + 1), row, x, left, charts.INK))
    return _svg(width, height, f"Waterfall: how each column moves the output from the base value {steps[0]:.3g} "
                                      f"to {output:.3g}", body)


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" class="chart"><title>{escape(title)}</title>'
            f'<style>text{{font:12px system-ui,sans-serif;fill:{charts.INK}}}</style>')
    return Markup(head + "".join(body) + "</svg>")


def _ticks(low: float, high: float) -> list[float]:
    """About five round values between low and high."""
    raw = (high - low) / 5 or 1.0
    power = 10 ** np.floor(np.log10(raw))
    step = min((c * power for c in (1, 2, 2.5, 5, 10)), key=lambda c: abs(c - raw))
    first = np.ceil(low / step) * step
    return [float(v) + 0.0 for v in np.arange(first, high + step * 1e-9, step)]


def _axis(x, domain: tuple[float, float], *, top: float, bottom: float, label: str, width: int) -> list[str]:
    body = []
    for value in _ticks(*domain):
        body.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{top}" y2="{bottom}" stroke="{charts.GRID}"/>'
                    f'<text x="{x(value):.1f}" y="{bottom + 14}" text-anchor="middle">{value:.3g}</text>')
    if domain[0] < 0 < domain[1]:
        body.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{bottom}" stroke="{charts.INK}" stroke-width="0.6"/>')
    body.append(f'<text x="{width / 2:.0f}" y="{bottom + 30}" text-anchor="middle">{escape(label)}</text>')
    return body


def _bar_row(label: str, start: float, end: float, y: float, row: int, x, left: int, colour: str,
             value: float | None = None) -> str:
    x0, x1 = sorted((x(start), x(end)))
    width = max(x1 - x0, 2.0)
    text = f"{value:+.3g}" if value is not None else f"{end:.3g}"
    return (f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(_short(label))}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{width:.1f}" height="{row - 8}" fill="{colour}"/>'
            f'<text x="{x1 + 4:.1f}" y="{y + 14}">{escape(text)}</text>')


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _local_images(by_metric: dict[str, list[Measurement]], figure) -> list[dict[str, Any]]:
    """One entry per explained image: the image and each method's heatmap, from the result's artefacts."""
    rows: dict[int, dict[str, Any]] = {}
    for m in by_metric["attribution_map"]:
        p, f = m.params, figure(m)
        entry = rows.setdefault(p["row"], {"row": p["row"], "title": _row_title(m), "reason": p["reason"],
                                           "image": grey_png(f["image"], f["shape"]), "maps": []})
        entry["maps"].append({"method": p["method"], "png": heat_png(f["image"], f["map"], f["shape"], signed=True),
                              "scale": f["scale"]})
    ordered = sorted(rows.values(), key=lambda r: (r["reason"] == "class example", r["row"]))
    return ordered


# ---------------------------------------------------------------- tiny PNG images


def heat_png(image: list[int] | None, cells: list[int], shape: list[int], *, signed: bool) -> str:
    """A heatmap as a PNG data URI: positive cells vermillion, negative blue, over a dimmed grey image."""
    height, width = shape
    strength = np.asarray(cells, dtype=np.float64).reshape(height, width) / 99.0
    # a faint copy of the image (dark where it is bright) on white, so the colours stay readable
    grey = np.full((height, width), 250.0) if image is None else 245 - 0.4 * np.asarray(image, dtype=np.float64).reshape(height, width)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    hot = np.array([int(POSITIVE[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    cold = np.array([int(NEGATIVE[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    alpha = np.abs(strength)[:, :, None] if signed else np.clip(strength, 0, 1)[:, :, None]
    colour = np.where((strength >= 0)[:, :, None], hot, cold)
    return png_data_uri(np.rint((1 - alpha) * rgb + alpha * colour).astype(np.uint8))


def grey_png(image: list[int], shape: list[int]) -> str:
    plane = np.asarray(image, dtype=np.uint8).reshape(shape)
    return png_data_uri(np.repeat(plane[:, :, None], 3, axis=2))


def png_data_uri(rgb: np.ndarray) -> str:
    """An (h, w, 3) uint8 array as a ``data:image/png`` URI (8-bit RGB, no library needed)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
