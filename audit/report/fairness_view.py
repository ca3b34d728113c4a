"""The fairness section's view: plain sentences, disparity and group tables, ratio charts.

Reads the fairness check's :class:`~audit.results.Measurement` list and arranges it for
report.html; it measures nothing. Sentences are plain text that the template escapes; charts
are inline SVG from :mod:`audit.report.charts`. Everything here grows with the number of
groups (and classes), never with the number of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from audit.catalogue import Metric, catalogue
from audit.report import charts
from audit.report.facts import FOUR_FIFTHS, below_four_fifths
from audit.report.facts import confidence_label
from audit.results import AuditResult, Measurement

CHECK = "fairness"
REFERENCE_SENTENCES = 3  # sentences on single columns against the reference group, one per key rate at most
CROSSED_SENTENCES = 1  # and on intersections

# disparities told in sentences against the reference group, with the one rate each compares
SENTENCE_RATES = {
    "demographic_parity": "selection_rate",
    "equal_opportunity": "true_positive_rate",
    "false_positive_rate": "false_positive_rate",
    "false_negative_rate": "false_negative_rate",
}


def _disparities() -> dict[str, Metric]:
    """disparity -> its catalogue entry (the ``_ratio`` one; the ``_difference`` one says the same)."""
    return {m.name.removesuffix("_ratio"): m for m in catalogue().by_check.get(CHECK, ()) if m.unit == "ratio"}


def _compares(disparity: Metric) -> str:
    """The rate(s) a disparity compares, as a reader names them."""
    return disparity.short or " and ".join(catalogue().get(rate).short or rate for rate in disparity.compares)


def group_label(group: dict[str, str]) -> str:
    """``{"sex": "Female", "race": "Black"}`` -> ``"sex=Female, race=Black"``, as the check names groups."""
    return ", ".join(f"{column}={value}" for column, value in group.items())


@dataclass
class _Index:
    """The fairness measurements, looked up by grouping, class, group and metric."""

    groupings: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # name -> groups, in order
    classes: list[str | None] = field(default_factory=list)
    rates: dict[tuple, Measurement] = field(default_factory=dict)  # (class, label, metric)
    between: dict[tuple, Measurement] = field(default_factory=dict)  # (grouping, class, metric)
    reference: dict[tuple, Measurement] = field(default_factory=dict)  # (grouping, class, label, metric)
    references: dict[str, str] = field(default_factory=dict)  # grouping -> reference label

    def single(self, grouping: str) -> bool:
        """Whether a grouping is one sensitive column (not an intersection)."""
        groups = self.groupings.get(grouping)
        return bool(groups) and len(groups[0]) == 1

    def rate(self, target: str | None, label: str, metric: str) -> Measurement | None:
        """A group's rate for one class's view, or its class-free rate (a multiclass top-1 accuracy)."""
        return self.rates.get((target, label, metric)) or self.rates.get((None, label, metric))

    def add(self, m: Measurement) -> None:
        target = m.params.get("class")
        if m.metric != "count" and target not in self.classes:
            self.classes.append(target)
        method = m.params.get("method")
        if method == "between_groups":
            self.between[(m.params["sensitive"], target, m.metric)] = m
        elif method == "to_reference":
            self.reference[(m.params["sensitive"], target, group_label(m.group), m.metric)] = m
            self.references[m.params["sensitive"]] = m.params["reference"]
        elif m.group is not None:
            groups = self.groupings.setdefault("+".join(m.group), [])
            if m.metric == "count":
                groups.append(m.group)
            self.rates[(None if m.metric == "count" else target, group_label(m.group), m.metric)] = m


def _index(result: AuditResult) -> _Index:
    index = _Index()
    for m in result.select(CHECK):
        index.add(m)
    if len(index.classes) > 1 and None in index.classes:
        index.classes.remove(None)  # class-free measurements (counts) next to per-class ones
    return index


def fairness_view(result: AuditResult) -> dict[str, Any]:
    """Everything the fairness section shows, as plain data and escaped charts."""
    index = _index(result)
    level = confidence_label(result)
    multiclass = any(target is not None for target in index.classes)
    columns = [name for name in index.groupings if index.single(name)]
    crossed = len(columns) < len(index.groupings)
    failed = [f.message for f in result.failures if f.check == CHECK]
    return {
        "measured": bool(index.groupings),
        "failure": failed[0] if failed else None,
        "lead": _lead(columns, crossed, result.model.get("positive_class")) + _policy(result),
        "level": level,
        "multiclass": multiclass,
        "sentences": _sentences(index, level),
        "skipped": _skipped_sentence(index),
        "classes": [_class_view(index, target, level) for target in index.classes],
    }


def _lead(columns: list[str], crossed: bool, positive: str | None) -> str:
    named = (", ".join(columns) or "the sensitive columns") + (", and their combinations" if crossed else "")
    outcome = f'predicted "{positive}"' if positive is not None else "given each prediction"
    return (
        f"Whether the model treats groups ({named}) alike: how often each group is "
        f"{outcome}, and how often the model is wrong for each group."
    )


def _policy(result: AuditResult) -> str:
    """Which groups the between-group disparities compare, from the measurements' own params."""
    between = [m for m in result.measurements if m.check == CHECK and m.params.get("method") == "between_groups"]
    if not between:
        return ""
    params = between[0].params
    small = params.get("small_groups") == "exclude"
    missing = params.get("missing") == "exclude"
    if not (small or missing):
        return " Disparities between groups compare every group, small ones and (missing) included."
    left = "groups below the minimum group size" if small else ""
    left += (" and " if small and missing else "") + ("the (missing) group" if missing else "")
    names = sorted({m.params["left_out"] for m in between if m.params.get("left_out")})
    listed = f" Left out here: {'; '.join(names)}." if names else ""
    return f" Disparities between groups leave out {left}: those are reported with their own numbers, not judged.{listed}"


# ---------------------------------------------------------------- sentences


def _sentences(index: _Index, level: str) -> list[dict[str, Any]]:
    ranges = _widest_selection_ranges(index)
    # a range already states its two groups' selection rates: do not repeat them against the reference
    told = {
        (m.params["sensitive"], m.params.get("class"), frozenset((m.params["highest_group"], m.params["lowest_group"])))
        for m in ranges
    }
    return [_range_sentence(index, m, level) for m in ranges] + _reference_sentences(index, level, told)


def _widest_selection_ranges(index: _Index) -> list[Measurement]:
    """Per sensitive column, the between-groups selection-rate ratio (for multiclass: the lowest class's)."""
    out = []
    for name in (n for n in index.groupings if index.single(n) and len(index.groupings[n]) > 1):
        found = [index.between.get((name, target, "demographic_parity_ratio")) for target in index.classes]
        defined = [m for m in found if m is not None and m.value is not None and "highest_group" in m.params]
        if defined:
            out.append(min(defined, key=lambda m: m.value))
    return out


def _range_sentence(index: _Index, ratio: Measurement, level: str) -> dict[str, Any]:
    target = ratio.params.get("class")
    high, low = ratio.params["highest_group"], ratio.params["lowest_group"]
    high_rate = index.rates.get((target, high, "selection_rate"))
    low_rate = index.rates.get((target, low, "selection_rate"))
    if ratio.value == 1:
        same = f"selection rate is the same in every {ratio.params['sensitive']} group: {_percent(high_rate)}."
        return _sentence(_for_class(target, same), ratio)
    rule = "below" if below_four_fifths(ratio.value) else "at or above"
    text = (
        f"selection rate by {ratio.params['sensitive']} ranges from {_percent(low_rate)} ({low}) "
        f"to {_percent(high_rate)} ({high}): a ratio of {ratio.value:.2f}{_ci_words(ratio.ci, level)}, "
        f"{rule} the four-fifths (0.8) rule of thumb."
    )
    high_base = index.rates.get((target, high, "base_rate"))
    low_base = index.rates.get((target, low, "base_rate"))
    if high_base is not None and low_base is not None:
        text += f" In the data itself, the share truly positive is {_percent(low_base)} and {_percent(high_base)} respectively."
    return _sentence(_for_class(target, text), ratio)


def _reference_sentences(index: _Index, level: str, told: set[tuple]) -> list[dict[str, Any]]:
    """The ratios to the reference group that depart furthest from 1, sufficient groups only.

    Single columns first (the largest departure of each key rate, at most
    :data:`REFERENCE_SENTENCES`), then the largest among intersections, which a reader would
    otherwise only find in the collapsed tables.
    """
    single = _largest_departures(index, told, crossed=False)[:REFERENCE_SENTENCES]
    crossed = _largest_departures(index, told, crossed=True)[:CROSSED_SENTENCES]
    return [_reference_sentence(index, m, level) for m in single + crossed]


def _largest_departures(index: _Index, told: set[tuple], *, crossed: bool) -> list[Measurement]:
    """Per key rate, the ratio departing furthest from 1; ranked by :func:`_departure`."""
    best: dict[str, Measurement] = {}
    for (grouping, target, label, metric), m in index.reference.items():
        disparity = metric.removesuffix("_ratio")
        if index.single(grouping) == crossed or disparity not in SENTENCE_RATES or not metric.endswith("_ratio"):
            continue
        if m.value is None or m.status or _departure(m) == (0.0, 0.0):
            continue
        if disparity == "demographic_parity" and (grouping, target, frozenset((label, m.params["reference"]))) in told:
            continue
        if disparity not in best or _departure(m) > _departure(best[disparity]):
            best[disparity] = m
    return sorted(best.values(), key=_departure, reverse=True)


def _departure(m: Measurement) -> tuple[float, float]:
    """(firm departure from 1, point departure from 1), on the log scale."""

    def far(ratio: float) -> float:
        return math.inf if ratio <= 0 else abs(math.log(ratio))

    point = far(m.value)
    # no interval, one that spans 1, or one collapsed to a point (a zero count is never resampled)
    if not m.ci or m.ci[0] is None or m.ci[1] is None or m.ci[0] <= 1 <= m.ci[1] or m.ci[0] == m.ci[1]:
        return (0.0, point)
    return (min(far(m.ci[0]), far(m.ci[1])), point)


def _reference_sentence(index: _Index, ratio: Measurement, level: str) -> dict[str, Any]:
    target = ratio.params.get("class")
    rate = SENTENCE_RATES[ratio.metric.removesuffix("_ratio")]
    label, reference = group_label(ratio.group), ratio.params["reference"]
    mine = _percent(index.rates.get((target, label, rate)))
    theirs = _percent(index.rates.get((target, reference, rate)))
    start = f"the {catalogue().label(rate)} for {label}"
    if ratio.value == 0:
        text = f"{start} is {mine}, against {theirs} for {reference}."
    else:
        lower = f", {100 * (1 - ratio.value):.0f}% lower" if ratio.value < 1 else ""
        times = f"{ratio.value:.2f} times that for {reference}{_ci_words(ratio.ci, level)}"
        text = f"{start} is {times}: {mine} against {theirs}{lower}."
    if ratio.ci and ratio.ci[0] <= 1 <= ratio.ci[1]:
        text += " The interval includes 1 (no difference), so this gap may be chance."
    return _sentence(_for_class(target, text), ratio)


def _skipped_sentence(index: _Index) -> str | None:
    weak = [
        m for (_, _, _, metric), m in index.reference.items()
        if metric.endswith("_ratio") and metric.removesuffix("_ratio") in SENTENCE_RATES and m.status == "insufficient"
    ]
    if not weak:
        return None
    return (
        f"{len(weak)} further comparison(s) with the reference group rest on groups smaller than the minimum "
        "group size; they are left out of these sentences and marked insufficient in the tables below."
    )


def _sentence(text: str, m: Measurement) -> dict[str, Any]:
    if m.status == "insufficient":
        text += " Insufficient: this rests on a group smaller than the minimum group size, so treat it as inconclusive."
    return {"text": text, "status": m.status, "note": m.note}


def _for_class(target: str | None, text: str) -> str:
    return text[:1].upper() + text[1:] if target is None else f"For class {target}, {text}"


def _percent(m: Measurement | None) -> str:
    return "undefined" if m is None or m.value is None else f"{100 * m.value:.1f}%"


def _ci_words(ci: tuple[float, float] | None, level: str) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" ({level} CI {ci[0]:.2f} to {ci[1]:.2f})"


# ---------------------------------------------------------------- tables and charts


def _class_view(index: _Index, target: str | None, level: str) -> dict[str, Any]:
    views = [_grouping_view(index, name, target, level) for name in index.groupings]
    single = [v for v in views if len(v["columns"]) == 1]
    return {
        "name": target,
        "headline": _lowest_ratio(single),
        "single": single,
        "crossed": [v for v in views if len(v["columns"]) > 1],
    }


def _lowest_ratio(views: list[dict[str, Any]]) -> str | None:
    """The smallest between-groups ratio of single columns, to say which class to open first."""
    rows = [
        (row["ratio"].value, row["name"], view["name"])
        for view in views
        for row in view["disparities"]
        if row["ratio"].value is not None
    ]
    if not rows:
        return None
    value, name, grouping = min(rows)
    return f"lowest ratio {value:.2f}: {name.lower()} by {grouping}"


def _grouping_view(index: _Index, name: str, target: str | None, level: str) -> dict[str, Any]:
    groups = index.groupings[name]
    single = index.single(name)
    # one group has nothing to be compared with, whatever numbers the check wrote for it
    disparities = _disparity_rows(index, name, target) if len(groups) > 1 else []
    counts = [index.rates[(None, group_label(g), "count")] for g in groups]
    return {
        "name": name,
        "columns": list(groups[0]),
        "size": len(groups),
        "insufficient": sum(m.status == "insufficient" for m in counts),
        "reference": index.references.get(name),
        "disparities": disparities,
        "chart": _ratio_chart(name, target, disparities, level) if single else None,
        "against_reference": _reference_table(index, name, target, groups),
        "groups": _group_table(index, target, groups),
    }


def _disparity_rows(index: _Index, name: str, target: str | None) -> list[dict[str, Any]]:
    rows = []
    for disparity, entry in _disparities().items():
        difference = index.between.get((name, target, f"{disparity}_difference"))
        ratio = index.between.get((name, target, f"{disparity}_ratio"))
        if difference is None or ratio is None:
            continue
        # an insufficient half outweighs an undefined one: the row is then shown as insufficient
        worst = min((m for m in (difference, ratio) if m.status), key=lambda m: m.status != "insufficient", default=None)
        rows.append({
            "name": entry.label,
            "compares": _compares(entry),
            "difference": difference,
            "ratio": ratio,
            "below_rule": below_four_fifths(ratio.value),
            "highest": difference.params.get("highest_group"),
            "lowest": difference.params.get("lowest_group"),
            "tied": difference.value == 0,
            "status": worst.status if worst else None,
            "note": worst.note if worst else None,
        })
    return rows


def _ratio_chart(name: str, target: str | None, rows: list[dict[str, Any]], level: str) -> Markup | None:
    if not rows:
        return None
    bars = []
    for row in rows:
        ratio = row["ratio"]
        bars.append(charts.StatusBar(row["name"].lower(), ratio.value, *(ratio.ci or (None, None)), status=ratio.status))
    about = f"{name} groups" + ("" if target is None else f", class {target}")
    return charts.ratio_bars(
        bars,
        title=f"Disparity ratios between {about}: lowest group's rate over highest's, with {level} intervals",
        axis="ratio, lowest group over highest (1 = equal)",
        line=FOUR_FIFTHS,
        line_label="four-fifths rule (0.8)",
    )


def _cell(m: Measurement | None, footnotes: list[str]) -> dict[str, Any]:
    """One table cell: value and interval, or 'undefined' with a numbered reason."""
    if m is None:
        return {"value": None, "ci": None, "status": "missing", "note": None, "mark": None}
    mark = None
    if m.value is None and m.note:
        if m.note not in footnotes:
            footnotes.append(m.note)
        mark = footnotes.index(m.note) + 1
    return {"value": m.value, "ci": m.ci, "status": m.status, "note": m.note, "mark": mark}


def _group_table(index: _Index, target: str | None, groups: list[dict[str, str]]) -> dict[str, Any]:
    labels = [group_label(g) for g in groups]
    columns = [(m.name, m.header) for m in catalogue().columns(CHECK) if any(index.rate(target, lb, m.name) for lb in labels)]
    footnotes: list[str] = []
    rows = []
    for label in labels:
        count = index.rates[(None, label, "count")]
        rows.append({
            "label": label,
            "count": count.value,
            "status": count.status,
            "note": count.note,
            "cells": [_cell(index.rate(target, label, metric), footnotes) for metric, _ in columns],
        })
    return {"headers": [header for _, header in columns], "rows": rows, "footnotes": footnotes}


def _reference_columns() -> list[tuple[str, str]]:
    """(disparity, header) of every disparity of one rate: its ratio to the reference is that rate's ratio."""
    rates = {m.name: m for m in catalogue().by_check.get(CHECK, ())}
    return [(name, rates[d.compares[0]].header) for name, d in _disparities().items() if len(d.compares) == 1]


def _reference_table(
    index: _Index, name: str, target: str | None, groups: list[dict[str, str]]
) -> dict[str, Any] | None:
    reference = index.references.get(name)
    if reference is None:
        return None
    columns = _reference_columns()
    footnotes: list[str] = []
    rows = []
    for label in (group_label(g) for g in groups):
        if label == reference:
            continue
        found = [index.reference.get((name, target, label, f"{disparity}_ratio")) for disparity, _ in columns]
        cells = [_cell(m, footnotes) for m in found]
        status = "insufficient" if any(c["status"] == "insufficient" for c in cells) else None
        rows.append({"label": label, "status": status, "cells": cells})
    return {"reference": reference, "headers": [h for _, h in columns], "rows": rows, "footnotes": footnotes}
