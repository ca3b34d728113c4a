"""The explanations check's Measurement records: names, params and how each value is computed.

Global (``params: method, feature``)
  ``feature_importance``: mean |attribution| of a feature (source column; image region) over
  the sampled rows, in the units of the explained output. ``rows_explained``: how many rows
  a method explained, with its settings and any cap in the note.
Per group (the first method; ``group: {column: value}``)
  ``group_feature_importance``; ``group_importance_difference`` (mean |attribution| in the
  group minus in the reference group, ``params.reference``); for binary models
  ``group_attribution_difference``, the same for signed attributions toward the positive class:
  these sum, over features, to the gap in mean explained output between the groups, so they
  say which features carry a disparity.
Reliance (``params: method, sensitive``)
  ``sensitive_reliance``: the share of all |attribution| that goes to the sensitive column
  itself (0, with a note, when it is not a model input); ``proxy_association`` (``feature``,
  ``measure``): association of each input with the sensitive column; ``proxy_reliance``
  (``feature``): the share going to each of its :data:`PROXIES` most associated inputs;
  ``sensitive_and_proxy_reliance``: the sensitive column and those proxies together.
Trust (``params: method``)
  ``completeness_gap``, ``infidelity``, ``sensitivity``, ``method_agreement`` (``methods``,
  ``kind``: spearman or top_k), ``randomization_similarity``; see :mod:`audit.explain.trust`.
Local (``params: method, row, reason``)
  ``local_attribution`` (``feature``, ``value``: the row's value) and ``local_output`` (the
  explained output, with ``base_value``) for tabular rows; ``attribution_map`` for images, and
  ``group_attribution_map`` per group; a map is stored compactly (see
  :func:`audit.explain.aggregate.compact_map`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from audit import sampling
from audit.checks import metric_names
from audit.explain import registry
from audit.explain.aggregate import (
    Bootstrap, Estimate, GroupFigures, by_group, compact_map, grey_image, importance, shares,
)
from audit.explain.attribution import Attribution
from audit.explain.proxies import associations
from audit.results import Measurement, Reason

if TYPE_CHECKING:
    from audit.context import AuditContext
    from audit.explain.plan import Plan

CHECK = "explanations"
PROXIES = 3
PROXY_ROWS = sampling.PROXY_ROWS
"""Rows that proxy associations are measured on (a seeded sample beyond that)."""
CATALOGUE = metric_names.EXPLANATIONS_CATALOGUE
METRICS = metric_names.EXPLANATIONS


def emit(ctx: "AuditContext", plan: "Plan", found: dict[str, Attribution], tests: dict[str, dict]) -> list[Measurement]:
    bootstrap = Bootstrap(ctx.config.statistics.bootstrap, ctx.config.statistics.ci_level, np.random.default_rng([ctx.seed, 6]))
    sampled = {name: a.at_rows(plan.sample[: plan.caps[name]]) for name, a in found.items()}
    features = {name: plan.layout.sum(a.values) for name, a in sampled.items()}
    out = _settings(ctx, plan, found)
    for name in plan.methods:
        out += _importance(plan, name, features[name], bootstrap)
    primary = plan.methods[0]
    out += _groups(ctx, plan, primary, sampled[primary], features[primary], bootstrap)
    out += _reliance(ctx, plan, features, bootstrap)
    out += _trust(tests, bootstrap)
    out += _local(ctx, plan, found)
    return out


NO_ROWS = (Reason.NO_ROWS, "undefined: no rows to average")


def _measure(metric: str, estimate: Estimate, k: int, why: tuple[Reason, str] = NO_ROWS, **fields: Any) -> Measurement:
    """The estimate's k-th value; undefined (with ``why``: a reason code and its sentence) where it is NaN."""
    value = float(estimate.value[k])
    if np.isnan(value):
        return Measurement(CHECK, metric, None, n=estimate.n, note=why[1], status="undefined", reason=why[0], **fields)
    return Measurement(CHECK, metric, value, ci=estimate.interval(k), n=estimate.n, **fields)


# ---------------------------------------------------------------- settings and global importance


def _settings(ctx: "AuditContext", plan: "Plan", found: dict[str, Attribution]) -> list[Measurement]:
    config = ctx.config.checks.explanations
    out = []
    for name in plan.methods:
        cap, sampled = plan.caps[name], len(plan.sample)
        method = registry.get(name)
        params = {"method": name, "library": method.library, "output": plan.explains, "target": str(config.target),
                  "additive": found[name].additive, "reference": _reference(method.reference, config.baseline, plan)}
        # settings identify the measurement (compare matches on params); the work done does not
        params |= {k: v for k, v in found[name].settings.items()
                   if isinstance(v, (int, float, str, bool)) and k != "model_evaluations"}
        note = (f"capped at costly_rows={config.costly_rows}: {cap} of the {sampled} sampled rows"
                if cap < sampled else None)
        out.append(Measurement(CHECK, "rows_explained", float(cap), n=cap, params=params, note=note))
    return out


def _reference(kind: str, baseline: str, plan: "Plan") -> str:
    if kind == "background":
        return f"mean output over {plan.background.shape[0]} background rows"
    if kind == "baseline":
        return f"the {baseline} input" if baseline != "zeros" else "an all-zero input"
    return "none (not additive)"


def _importance(plan: "Plan", name: str, features: np.ndarray, bootstrap: Bootstrap) -> list[Measurement]:
    estimate = importance(features, bootstrap)
    return [_measure("feature_importance", estimate, k, params={"method": name, "feature": feature})
            for k, feature in enumerate(plan.layout.names)]


# ---------------------------------------------------------------- groups


def _group_codes(ctx: "AuditContext", column: str, rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], int]:
    """Each row's group, the group labels in display order, and the reference group's index."""
    values = ctx.data.sensitive[column]
    chosen = values.iloc[rows].astype(str).to_numpy()  # only the explained rows: cost follows them
    order = [str(c) for c in values.cat.categories] if isinstance(values.dtype, pd.CategoricalDtype) else sorted(set(chosen))
    labels = tuple(v for v in order if v in set(chosen))
    codes = pd.Index(labels).get_indexer(chosen)
    declared = {s.column: s.reference for s in ctx.config.data.sensitive}.get(column)
    sizes = np.bincount(codes, minlength=len(labels))
    reference = labels.index(declared) if declared in labels else int(sizes.argmax())
    return codes, labels, reference


def _groups(ctx: "AuditContext", plan: "Plan", name: str, attribution: Attribution, features: np.ndarray,
            bootstrap: Bootstrap) -> list[Measurement]:
    if ctx.data.sensitive.empty or attribution.n == 0:
        return []
    model_binary = ctx.data.is_binary and registry.get(name).signed
    toward = features * np.where(attribution.targets == ctx.data.positive_index, 1.0, -1.0)[:, None] if model_binary else None
    minimum = ctx.config.checks.fairness.min_group_size
    out = []
    for column in ctx.data.sensitive.columns:
        codes, labels, reference = _group_codes(ctx, column, attribution.rows)
        if len(labels) < 1:
            continue
        figures = by_group(features, toward, codes, labels, reference, bootstrap)
        out += _group_measurements(column, name, plan, figures, minimum)
        if plan.layout.kind == "image":
            out += _group_maps(ctx, column, name, attribution, codes, labels)
    return out


def _group_measurements(column: str, name: str, plan: "Plan", figures: GroupFigures, minimum: int) -> list[Measurement]:
    out = []
    reference = figures.labels[figures.reference]
    for g, label in enumerate(figures.labels):
        group = {column: label}
        small = int(figures.sizes[g]) < minimum
        extra = ({"status": "insufficient", "reason": Reason.SMALL_GROUP,
                  "note": f"insufficient: {figures.sizes[g]} explained rows, fewer than {minimum}"}
                 if small else {})
        for k, feature in enumerate(plan.layout.names):
            params = {"method": name, "feature": feature}
            out.append(_with(_measure("group_feature_importance", figures.importance[g], k, group=group, params=params), extra))
            against = params | {"reference": f"{column}={reference}"}
            weak = extra or (_small(figures, figures.reference, minimum))
            if figures.importance_differences[g] is not None:
                out.append(_with(_measure("group_importance_difference", figures.importance_differences[g], k,
                                          group=group, params=against), weak))
            if figures.signed_differences[g] is not None:
                toward = against | {"output": plan.positive_output}
                out.append(_with(_measure("group_attribution_difference", figures.signed_differences[g], k,
                                          group=group, params=toward), weak))
    return out


def _small(figures: GroupFigures, g: int, minimum: int) -> dict[str, str]:
    if int(figures.sizes[g]) >= minimum:
        return {}
    return {"status": "insufficient", "reason": Reason.SMALL_GROUP,
            "note": f"insufficient: the reference group has {figures.sizes[g]} explained rows"}


def _with(m: Measurement, extra: dict[str, str]) -> Measurement:
    """Mark a measurement insufficient (a small group), unless it is already undefined."""
    if not extra or m.status == "undefined":
        return m
    return replace(m, **extra)


def _group_maps(ctx: "AuditContext", column: str, name: str, attribution: Attribution, codes: np.ndarray,
                labels: tuple[str, ...]) -> list[Measurement]:
    out = []
    for g, label in enumerate(labels):
        chosen = np.abs(attribution.values[codes == g])
        if chosen.shape[0] == 0:
            continue
        shape, cells, scale = compact_map(chosen.mean(axis=0))
        m = Measurement(CHECK, "group_attribution_map", float(chosen.reshape(len(chosen), -1).sum(axis=1).mean()),
                        group={column: label}, n=int(chosen.shape[0]), params={"method": name})
        ctx.illustrate(m, {"shape": shape, "map": cells, "scale": scale})
        out.append(m)
    return out


# ---------------------------------------------------------------- reliance on sensitive columns and proxies


def _reliance(ctx: "AuditContext", plan: "Plan", features: dict[str, np.ndarray], bootstrap: Bootstrap) -> list[Measurement]:
    layout = plan.layout
    out = []
    rows = _proxy_rows(ctx)
    for column in ctx.data.sensitive.columns:
        proxies = _proxies(ctx, plan, column, rows)
        out += [Measurement(CHECK, "proxy_association", a.value, n=len(rows),
                            params={"sensitive": column, "feature": a.feature, "measure": a.measure}) for a in proxies]
        top = [a.feature for a in proxies[:PROXIES]]
        for name, values in features.items():
            out += _reliance_of(column, name, values, layout.names, top, bootstrap)
    return out


def _proxy_rows(ctx: "AuditContext") -> np.ndarray:
    """All rows up to :data:`PROXY_ROWS`, else a seeded sample of that many.

    An association's sampling error at 50,000 rows is about 0.005, far below what separates a
    proxy from an innocent column, and the cost then stops growing with the data.
    """
    if ctx.data.n <= PROXY_ROWS:
        return np.arange(ctx.data.n)
    # a hash sample of row ids (audit.sampling): a sharded run measures the same rows
    return sampling.sorted_sample(sampling.ids_of(ctx.data), ctx.seed, "proxies", PROXY_ROWS)


def _proxies(ctx: "AuditContext", plan: "Plan", column: str, rows: np.ndarray):
    if plan.layout.kind != "tabular" or ctx.data.frame is None:
        return []
    inputs = [(name, categorical) for name, categorical in zip(plan.layout.names, plan.layout.categorical) if name != column]
    frame = ctx.data.frame if len(rows) == ctx.data.n else ctx.data.frame.iloc[rows]
    return associations(frame, ctx.data.sensitive[column].iloc[rows], inputs)


def _reliance_of(column: str, name: str, values: np.ndarray, names: tuple[str, ...], top: list[str],
                 bootstrap: Bootstrap) -> list[Measurement]:
    params = {"method": name, "sensitive": column}
    if values.shape[0] == 0:
        return []
    direct = [names.index(column)] if column in names else []
    out = []
    if direct:
        out.append(_measure("sensitive_reliance", shares(values, direct, bootstrap), 0, params=params))
    else:
        out.append(Measurement(CHECK, "sensitive_reliance", 0.0, n=values.shape[0], params=params,
                               note=f"'{column}' is not a model input: the model cannot use it directly"))
    if top:
        together = shares(values, direct + [names.index(f) for f in top], bootstrap)
        out += [_measure("proxy_reliance", together, len(direct) + i, params=params | {"feature": f}) for i, f in enumerate(top)]
        out.append(_measure("sensitive_and_proxy_reliance", together, together.value.shape[0] - 1,
                            params=params | {"proxies": list(top)}))
    return out


# ---------------------------------------------------------------- trust


def _trust(tests: dict[str, dict], bootstrap: Bootstrap) -> list[Measurement]:
    out = []
    for name, (gaps, scale) in tests.get("completeness", {}).items():
        out.append(_measure("completeness_gap", bootstrap.ratio(gaps, scale), 0, params={"method": name},
                            why=(Reason.ZERO_SCALE, "undefined: the explained output equals its base value on every row")))
    for name, (error, effect) in tests.get("infidelity", {}).items():
        out.append(_measure("infidelity", bootstrap.ratio(error, effect), 0, params={"method": name},
                            why=(Reason.ZERO_SCALE, "undefined: removing features never changed the output")))
    for name, values in tests.get("sensitivity", {}).items():
        out.append(_measure("sensitivity", bootstrap.mean(values[:, None]), 0, params={"method": name}))
    for (first, second), (spearman, overlap, k) in tests.get("agreement", {}).items():
        pair = f"{first} vs {second}"
        rows = ~np.isnan(spearman)
        out.append(_measure("method_agreement", bootstrap.mean(spearman[rows][:, None]), 0,
                            params={"methods": pair, "kind": "spearman"},
                            why=(Reason.CONSTANT, "undefined: every shared row has constant attributions")))
        out.append(_measure("method_agreement", bootstrap.mean(overlap[:, None]), 0,
                            params={"methods": pair, "kind": "top_k", "k": k}))
    for name, similarity in tests.get("randomization", {}).items():
        rows = ~np.isnan(similarity)
        out.append(_measure("randomization_similarity", bootstrap.mean(similarity[rows][:, None]), 0,
                            params={"method": name}, why=(Reason.CONSTANT, "undefined: constant attributions on every row")))
    return out


# ---------------------------------------------------------------- local explanations


def _local(ctx: "AuditContext", plan: "Plan", found: dict[str, Attribution]) -> list[Measurement]:
    out = []
    for local in plan.local:
        for name, attribution in found.items():
            one = attribution.at_rows([local.row])
            row_id = int(sampling.ids_of(ctx.data)[local.row])  # the row's id, whatever the filter or sample
            about = _row_params(ctx, local.row, int(one.targets[0])) | {"method": name, "row": row_id, "reason": local.reason}
            if plan.layout.kind == "tabular":
                out += _tabular_row(ctx, plan, one, about, local.row)
            else:
                out.append(_image_row(ctx, one, about, local.row))
    return out


def _row_params(ctx: "AuditContext", row: int, target: int) -> dict[str, Any]:
    classes = ctx.data.classes
    params: dict[str, Any] = {"class": classes[target], "label": classes[int(ctx.data.labels[row])],
                              "predicted": classes[int(ctx.predictions.decisions[row])]}
    if ctx.predictions.probabilities is not None:
        params["probability"] = round(float(ctx.predictions.probabilities[row, int(ctx.predictions.decisions[row])]), 4)
    return params


def _tabular_row(ctx: "AuditContext", plan: "Plan", one: Attribution, about: dict[str, Any], position: int) -> list[Measurement]:
    values = plan.layout.sum(one.values)[0]
    frame = ctx.data.frame
    out = [Measurement(CHECK, "local_output", float(one.outputs[0]), n=1,
                       params=about | {"base_value": float(one.base_values[0])})]
    base = {k: about[k] for k in ("method", "row", "reason")}
    for k, feature in enumerate(plan.layout.names):
        shown = _shown(frame[feature].iloc[position]) if frame is not None and feature in frame else ""
        out.append(Measurement(CHECK, "local_attribution", float(values[k]), n=1,
                               params=base | {"feature": feature, "value": shown}))
    return out


def _shown(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def _image_row(ctx: "AuditContext", one: Attribution, about: dict[str, Any], position: int) -> Measurement:
    shape, cells, scale = compact_map(one.values[0])
    image = ctx.data.features[position].numpy()
    params = about | {"base_value": float(one.base_values[0]), "output": float(one.outputs[0])}
    m = Measurement(CHECK, "attribution_map", float(one.values[0].sum()), n=1, params=params)
    ctx.illustrate(m, {"shape": shape, "map": cells, "scale": scale,
                       "image": grey_image(image, tuple(ctx.config.data.value_range))})
    return m
