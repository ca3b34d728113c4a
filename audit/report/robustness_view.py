"""The robustness section's view: curves, sentences, per-group tables, flags and examples.

Reads the robustness check's measurements and lays them out for report.html; it measures
nothing. Text is plain (the template escapes it); the curve is inline SVG in the Okabe-Ito
palette, example images tiny PNG data URIs scaled up by the browser. Everything grows with
attacks, epsilons, groups and the few kept examples, never with the data.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from audit.catalogue import catalogue
from audit.report import charts, finding_rules
from audit.report.facts import confidence_label
from audit.results import AuditResult, Measurement, Reason

CHECK = "robustness"
GROUP_EPSILONS = 5  # epsilon columns in the per-group table (the rest stay in result.json)
PIXEL_SCALE = 96  # displayed size of an example image, in CSS pixels along its longer side
FLAG_NAMES = {
    "not_falling": "Robust accuracy falls as epsilon grows",
    "black_box_stronger": "The black-box attack does not beat the gradient attacks",
    "single_step_stronger": "One gradient step does not beat many",
    "large_epsilon": "An unbounded attack brings accuracy near zero",
}
SKIPPED = {Reason.NO_MODEL.value: "Skipped: a predictions-only audit has no model to attack."}  # by the check's reason code
CONCEPTS = {  # the section's words beside its metrics, whose meaning the catalogue gives
    "epsilon": "The largest change the attacker may make: in the model's input units for images; for tabular data in "
    "standard deviations of each feature, so 0.5 lets every movable feature move by half its spread.",
    "gradient masking": "A model whose gradients are useless to an attacker looks robust to gradient attacks without "
    "being robust; the flags look for its symptoms.",
}


def glossary() -> dict[str, str]:
    return catalogue().glossary((CHECK,)) | CONCEPTS


def robustness_view(result: AuditResult) -> dict[str, Any]:
    """Everything the robustness section shows, as plain data and escaped charts."""
    found = result.select(CHECK)
    failed = [f.message for f in result.failures if f.check == CHECK]
    curves = _curves(found)
    view: dict[str, Any] = {
        "measured": bool(curves),
        "failure": failed[0] if failed else None,
        "skipped": SKIPPED.get(result.skipped.get(CHECK)),
        "glossary": glossary(),
    }
    if not curves:
        return view
    level = confidence_label(result)
    first = next(iter(curves.values()))[0]
    units, norm = first.params["units"], first.params["norm"]
    headline = _headline_attack(curves)
    return view | {
        "level": level,
        "settings": _settings(curves, first, units, norm, result),
        "notes": sorted({m.note for ms in curves.values() for m in ms if m.note}),
        "chart": _chart(curves, units, norm, level),
        "table": _table(curves, found),
        "sentences": _sentences(found, curves, headline, units),
        "groups": _groups(found, headline),
        "headline": headline,
        "flags": [_flag(m) for m in found if m.metric == "gradient_masking_flag"],
        "large": next((m for m in found if m.metric == "large_epsilon_accuracy"), None),
        "examples": [_example(m, result.artefact(m), units) for m in found if m.metric == "adversarial_example"],
    }


# ---------------------------------------------------------------- curves


def _curves(found: list[Measurement]) -> dict[str, list[Measurement]]:
    """Overall robust accuracy per attack, in epsilon order."""
    out: dict[str, list[Measurement]] = {}
    for m in found:
        if m.metric == "robust_accuracy" and m.group is None:
            out.setdefault(m.params["attack"], []).append(m)
    return {attack: sorted(ms, key=lambda m: m.params["eps"]) for attack, ms in out.items()}


def _headline_attack(curves: dict[str, list[Measurement]]) -> str:
    for name in ("PGD", "PGDL2", "AutoAttack", "APGD"):
        if name in curves:
            return name
    return next(iter(curves))


def _settings(curves, first: Measurement, units: str, norm: str, result: AuditResult) -> str:
    rows = first.n
    total = result.data.get("rows_used")
    share = f"{rows:,} of {total:,} rows" if total and total != rows else f"{rows:,} rows"
    return (
        f"Attacks {', '.join(curves)} on {share} (a seeded sample); perturbations measured in the {norm} norm, "
        f"epsilon in {units}."
    )


def _chart(curves: dict[str, list[Measurement]], units: str, norm: str, level: str) -> Markup:
    """Robust accuracy against epsilon, one line per attack, interval whiskers; epsilons evenly spaced."""
    epsilons = sorted({m.params["eps"] for ms in curves.values() for m in ms})
    left, right, top, bottom = 56, 150, 16, 52
    width, height = 660, 300
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(eps: float) -> float:
        return left + (epsilons.index(eps) / max(len(epsilons) - 1, 1)) * plot_w

    def py(value: float) -> float:
        return top + (1 - value) * plot_h

    body = _axes(epsilons, px, py, left, top, plot_w, plot_h, units, norm)
    for index, (attack, ms) in enumerate(curves.items()):
        colour = charts.PALETTE[index % len(charts.PALETTE)]
        body += _line(ms, px, py, colour, dash=index % 2 == 1)
        y = top + 10 + 18 * index
        body.append(
            f'<line x1="{width - right + 14}" x2="{width - right + 38}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2.5"'
            + (' stroke-dasharray="6 3"' if index % 2 == 1 else "") + "/>"
            f'<text x="{width - right + 44}" y="{y + 4}">{escape(attack)}</text>'
        )
    title = f"Robust accuracy against epsilon ({units}, {norm}) for {', '.join(curves)}, with {level} intervals"
    return charts._svg(width, height, title, body)


def _axes(epsilons, px, py, left, top, plot_w, plot_h, units: str, norm: str) -> list[str]:
    bottom_y = top + plot_h
    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{charts.GRID}"/>']
    for step in range(5):
        value = step / 4
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(value):.1f}" y2="{py(value):.1f}" stroke="{charts.GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{py(value) + 4:.1f}" text-anchor="end">{value:.0%}</text>')
    for eps in epsilons:
        body.append(f'<text x="{px(eps):.1f}" y="{bottom_y + 16}" text-anchor="middle">{eps:.3g}</text>')
    body.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{bottom_y + 36}" text-anchor="middle">'
        f"epsilon, {escape(units)} ({escape(norm)}; tried values, evenly spaced)</text>"
    )
    body.append(
        f'<text x="14" y="{top + plot_h / 2:.0f}" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
        f'text-anchor="middle">robust accuracy</text>'
    )
    return body


def _line(ms: list[Measurement], px, py, colour: str, *, dash: bool) -> list[str]:
    points = [(px(m.params["eps"]), py(m.value)) for m in ms if m.value is not None]
    style = ' stroke-dasharray="6 3"' if dash else ""
    body = [f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="none" stroke="{colour}" stroke-width="2.5"{style}/>']
    for m in ms:
        if m.value is None:
            continue
        x = px(m.params["eps"])
        if m.ci:
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{py(m.ci[0]):.1f}" y2="{py(m.ci[1]):.1f}" stroke="{colour}" stroke-width="1.5"/>'
            )
        body.append(f'<circle cx="{x:.1f}" cy="{py(m.value):.1f}" r="3.5" fill="{colour}"/>')
    return body


def _table(curves: dict[str, list[Measurement]], found: list[Measurement]) -> dict[str, Any]:
    """Rows: epsilons; per attack, robust accuracy and attack success rate with intervals."""
    success = {(m.params["attack"], m.params["eps"]): m for m in found if m.metric == "attack_success_rate" and m.group is None}
    epsilons = sorted({m.params["eps"] for ms in curves.values() for m in ms})
    by = {(m.params["attack"], m.params["eps"]): m for ms in curves.values() for m in ms}
    rows = [
        {"eps": eps, "cells": [(by.get((a, eps)), success.get((a, eps))) for a in curves]}
        for eps in epsilons
    ]
    medians = [(a, _overall_median(found, a)) for a in curves]
    return {"attacks": list(curves), "rows": rows, "medians": medians}


def _overall_median(found: list[Measurement], attack: str) -> Measurement | None:
    wanted = [m for m in found if m.metric == "median_minimal_perturbation" and m.group is None]
    return next((m for m in wanted if m.params["attack"] == attack), None)


# ---------------------------------------------------------------- sentences and groups


def _sentences(found: list[Measurement], curves, headline: str, units: str) -> list[str]:
    out = []
    ms = [m for m in curves[headline] if m.value is not None]
    if ms:
        clean, last = ms[0], ms[-1]
        half = next((m for m in ms if m.value <= clean.value / 2), None)
        text = (
            f"Under {headline}, robust accuracy falls from {clean.value:.1%} at epsilon {clean.params['eps']:g} "
            f"to {last.value:.1%} at epsilon {last.params['eps']:g} ({units})."
        )
        if half is not None:
            text += f" It halves by epsilon {half.params['eps']:g}."
        out.append(text)
    median = _overall_median(found, headline)
    if median is not None:
        if median.reason == Reason.NOT_BROKEN:  # the code, not the note, says why there is no median
            out.append(f"More than half of the correctly classified examples withstand every epsilon tried with {headline}.")
        elif median.value is not None:
            out.append(
                f"Half of the correctly classified examples change decision under a {headline} perturbation of "
                f"size {median.value:.3g} or less ({units})."
            )
    out += [_gap_sentence(found, m, units) for m in found if m.metric == "robustness_gap" and m.params["attack"] == headline]
    return out


def _gap_sentence(found: list[Measurement], gap: Measurement, units: str) -> str:
    """Which group's decisions flip under smaller perturbations, in words."""
    column = gap.params["sensitive"]
    medians = [
        m for m in found
        if m.metric == "median_minimal_perturbation" and m.group and column in m.group and m.params["attack"] == gap.params["attack"]
    ]
    finite = sorted((m for m in medians if m.value is not None), key=lambda m: m.value)
    held = [_label(m.group) for m in medians if m.reason == Reason.NOT_BROKEN]
    if gap.value is None or len(finite) < 2:
        if finite and held:
            return (
                f"By {column}: decisions for {_label(finite[0].group)} flip under a median perturbation of "
                f"{finite[0].value:.3g} {units}, while more than half of {', '.join(held)} withstand every epsilon tried."
            )
        return f"By {column}: the groups cannot be compared (fewer than two groups have a median perturbation)."
    low, high = finite[0], finite[-1]
    if gap.value == 0 or finding_rules.same_when_shown(low.value, high.value):
        # never "median 2 than ... median 2": equal as printed means no comparison in words
        return f"By {column}: decisions flip at about the same median perturbation in every group ({low.value:.3g} {units})."
    text = (
        f"By {column}: decisions for {_label(low.group)} flip under smaller perturbations (median {low.value:.3g} {units}) "
        f"than for {_label(high.group)} (median {high.value:.3g})."
    )
    if gap.ci and gap.ci[0] <= 0:
        text += " The interval of the gap includes 0, so it may be chance."
    if gap.status == "insufficient":
        text += " Insufficient: a group in this comparison is small."
    return text


def _label(group: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (group or {}).items())


def _groups(found: list[Measurement], attack: str) -> list[dict[str, Any]]:
    """Per sensitive column: a row per group, robust accuracy at a few epsilons and the median perturbation."""
    cells: dict[str, dict[str, dict]] = {}
    epsilons: set[float] = set()
    for m in found:
        if m.group is None or m.params.get("attack") != attack:
            continue
        column = "+".join(m.group)
        row = cells.setdefault(column, {}).setdefault(_label(m.group), {"label": _label(m.group), "n": m.n, "status": m.status, "eps": {}})
        if m.metric == "robust_accuracy":
            row["eps"][m.params["eps"]] = m
            epsilons.add(m.params["eps"])
        elif m.metric == "median_minimal_perturbation":
            row["median"] = m
    shown = _spread(sorted(epsilons), GROUP_EPSILONS)
    return [
        {"column": column, "epsilons": shown, "rows": [r | {"cells": [r["eps"].get(e) for e in shown]} for r in rows.values()]}
        for column, rows in cells.items()
    ]


def _spread(values: list[float], count: int) -> list[float]:
    if len(values) <= count:
        return values
    picks = np.unique(np.round(np.linspace(0, len(values) - 1, count)).astype(int))
    return [values[i] for i in picks]


def _flag(m: Measurement) -> dict[str, Any]:
    return {
        "name": FLAG_NAMES.get(m.params["test"], m.params["test"]),
        "attack": m.params.get("attack"),
        "raised": bool(m.value),
        "text": m.note,
    }


# ---------------------------------------------------------------- examples


def _example(m: Measurement, figure: dict[str, Any], units: str) -> dict[str, Any]:
    params = m.params
    eps = params.get("eps")
    caption = (
        f"Row {params['row']}: {params['true_class']} becomes {params['adversarial_class']} under {params['attack']}"
        + (f" at epsilon {eps:g}" if eps is not None else "")
        + f" (perturbation {m.value:.3g} {units}, {params['norm']})."
    )
    out: dict[str, Any] = {"caption": caption, "changes": figure.get("changes"), "images": None}
    image = figure.get("image")
    if image:
        shape = image["shape"]
        out["images"] = [
            ("clean", _png_uri(_pixels(image["clean"], shape))),
            ("adversarial", _png_uri(_pixels(image["adversarial"], shape))),
            (f"difference (x{_amplify(image['difference_scale'])})", _png_uri(_difference(image["difference"], shape))),
        ]
        height, width = shape[1], shape[2]
        scale = PIXEL_SCALE / max(height, width)
        out["size"] = (round(width * scale), round(height * scale))
    return out


def _amplify(scale: float) -> str:
    """How much the difference image is stretched: its largest change is drawn at full colour."""
    return f"{1 / scale:.3g}" if scale else "1"


def _pixels(levels: list[int], shape: list[int]) -> np.ndarray:
    channels, height, width = shape
    array = np.asarray(levels, dtype=np.uint8).reshape(channels, height, width).transpose(1, 2, 0)
    return np.repeat(array, 3, axis=2) if channels == 1 else array


def _difference(levels: list[int], shape: list[int]) -> np.ndarray:
    """Signed change as colour on white: vermillion where pixels rose, blue where they fell."""
    channels, height, width = shape
    signed = np.asarray(levels, dtype=np.float64).reshape(channels, height, width).mean(axis=0) / 127
    up, down = np.array([0xD5, 0x5E, 0x00]), np.array([0x00, 0x72, 0xB2])
    white = np.array([255, 255, 255])
    strength = np.abs(signed)[..., None]
    colour = np.where(signed[..., None] >= 0, up, down)
    return np.round(white + (colour - white) * strength).astype(np.uint8)


def _png_uri(rgb: np.ndarray) -> str:
    """A tiny RGB PNG as a data URI: no imaging library needed."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
