"""The explanations check: why the model decides, for whom, and how far to trust the answer.

For each method (spec ``checks.explanations.methods``, or defaults chosen for the model):
global importance of each feature (mean |attribution| over a seeded sample of rows, with
bootstrap intervals); per sensitive group, the same, and how it differs from the reference
group; how much of the attribution goes to a sensitive column that is a model input, and to
its strongest proxies; local explanations of chosen rows (tabular: per source column; images:
heatmaps); and the trust tests of :mod:`audit.explain.trust`. Everything is a Measurement
(see :mod:`audit.explain.measurements` for the names).

Bad input fails before anything runs (exit code 2): an unknown method or one that does not
fit the data (``validate``), a target class that does not exist, a method the model cannot
support (gradients or hooks on a black box), or a local row id that is not in the data
(``prepare``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit import progress, sampling
from audit.errors import ConfigError, DataError, ModelError
from audit.explain import chunked, measurements, registry, trust
from audit.explain.attribution import Attribution
from audit.explain.model import ExplainedModel, Request, rows_for_budget
from audit.explain.plan import Plan, layout_for, make_plan, methods_for
from audit.results import Measurement
from audit.scale.executor import executor_for

if TYPE_CHECKING:
    from audit.config import AuditConfig
    from audit.context import AuditContext

CHECK = measurements.CHECK
CATALOGUE = measurements.CATALOGUE
METRICS = measurements.METRICS
TRUST_ROWS = 100
SENSITIVITY_ROWS = 20
SENSITIVITY_ROWS_COSTLY = 10
"""Sensitivity re-runs a method on every nudged copy: fewer rows and copies for costly methods."""


# ---------------------------------------------------------------- input rules


def validate(config: "AuditConfig") -> None:
    """Rules that need only the spec: method names, method and data kind, the target class."""
    section = config.checks.explanations
    if config.model.kind == "predictions":
        return
    kind = config.data.kind
    for name in section.methods or []:
        method = registry.get(name)
        if kind not in method.data:
            fits = [m for m, found in registry.METHODS.items() if kind in found.data]
            raise ConfigError(
                f"checks.explanations.methods: {name} works on {' and '.join(method.data)} data, not {kind} data",
                hint=f"use one of {', '.join(fits)}",
            )
    _validate_target(section.target, [str(c) for c in config.data.label.classes])
    negative = [i for i in section.local.ids if i < 0]
    if negative:
        raise ConfigError(f"checks.explanations.local.ids: row ids are positions from 0; found {negative}")


def _validate_target(target: int | str, classes: list[str]) -> None:
    where = "checks.explanations.target"
    if target in ("predicted", "label"):
        return
    if target == "positive":
        if len(classes) != 2:
            raise ConfigError(f"{where}: 'positive' is for binary labels; this model has {len(classes)} classes",
                              hint="use predicted, label, or a class name or index")
        return
    if isinstance(target, int):
        if not 0 <= target < len(classes):
            raise ConfigError(
                f"{where}: class index {target} is out of range; the model has {len(classes)} classes, "
                f"indices 0 to {len(classes) - 1} ({', '.join(classes)})",
                hint="give an index in range, or the class name as a quoted string",
            )
        return
    if target not in classes:
        raise ConfigError(f"{where}: {target!r} is not a class; classes: {', '.join(classes)}",
                          hint="use predicted, label, positive, a class name or a class index")


def prepare(ctx: "AuditContext") -> None:
    """Rules that need the loaded model and data: methods the model supports, row ids that exist."""
    if ctx.model is None:
        return
    config = ctx.config.checks.explanations
    model = explained_model(ctx)
    layout = layout_for(ctx)
    groups = int(layout.units.max()) + 1
    for name in methods_for(config, model, layout):
        why = registry.problem(registry.get(name), kind=layout.kind, model=model, groups=groups)
        if why is not None:
            works = registry.usable(kind=layout.kind, model=model, groups=groups)
            raise ModelError(f"checks.explanations.methods: {why}", hint=f"use one of {', '.join(works)}")
    row_ids = sampling.ids_of(ctx.data)
    found = set(row_ids[np.isin(row_ids, config.local.ids)].tolist())
    missing = [i for i in config.local.ids if i not in found]
    if missing:
        raise DataError(
            f"checks.explanations.local.ids: row {missing[0]} does not exist; ids are positions in the data as "
            f"read (from 0), and {ctx.data.n:,} rows remain after filtering and sampling",
            hint="give the ids of rows that the filter and the sample keep",
        )
    if config.randomization_check and not model.differentiable:
        raise ModelError(
            f"checks.explanations.randomization_check re-initialises the model's weights, which a "
            f"{ctx.model.kind} model does not expose",
            hint="set randomization_check: false, or audit the PyTorch model itself",
        )


def explained_model(ctx: "AuditContext") -> ExplainedModel:
    data, config = ctx.data, ctx.config
    budget = rows_for_budget(ctx.model, data.features[:8], config.checks.explanations.memory_mb)
    return ExplainedModel(ctx.model, classes=len(data.classes), positive_index=data.positive_index,
                          output=config.model.output, batch_rows=budget)


# ---------------------------------------------------------------- the check


def run(ctx: "AuditContext") -> list[Measurement]:
    """Explain the sampled and chosen rows with every method, test the results, measure.

    Every method runs once on all the rows it needs (its share of the sample plus the local
    rows); the trust tests re-run it on small perturbed subsets. All of it inside one model
    session: evaluation mode, frozen weights and seeded generators, restored afterwards.
    """
    if ctx.model is None:
        ctx.warn("explanations need a model; a predictions-only audit has none, so none were computed")
        return []
    model = explained_model(ctx)
    config = ctx.config.checks.explanations
    features = ctx.data.features
    with model.session(ctx.seed), executor_for(ctx.config, ctx.model) as executor:
        plan = make_plan(ctx, model)  # in the session: its column statistics run on one thread too
        found = {}
        with progress.task("methods", total=len(plan.methods), unit="method") as step:
            for name in plan.methods:
                step.note(f"{name} on {len(plan.rows_for(name))} rows")
                request = build_request(plan, model, features, plan.rows_for(name), ctx)
                with _timed(ctx, name):
                    found[name] = attribute_in_chunks(executor, name, request, ctx)
                step.advance()
        with progress.task("trust tests"):
            tests = _trust(plan, model, features, found, ctx) if config.trust else {}
        if config.randomization_check:
            tests["randomization"] = _randomization(plan, model, features, found, ctx)
    return measurements.emit(ctx, plan, found, tests)


def attribute_in_chunks(executor, name: str, request: Request, ctx: "AuditContext") -> Attribution:
    """A method on the request's rows, chunk by chunk through ``executor``, joined in row order."""
    found = executor.map(chunked.tasks(request, name, row_ids=sampling.ids_of(ctx.data), seed=ctx.seed,
                                       size=ctx.config.engine.chunk_rows))
    return chunked.joined(found)


def build_request(plan: Plan, model: ExplainedModel, features: torch.Tensor, rows: np.ndarray, ctx: "AuditContext") -> Request:
    return Request(
        model=model, inputs=features[torch.from_numpy(rows)], targets=torch.from_numpy(plan.targets[rows]),
        rows=rows, baseline=plan.baseline, background=plan.background, layout=plan.layout,
        steps=ctx.config.checks.explanations.steps, seed=ctx.seed,
    )


def _global(plan: Plan, name: str, attribution: Attribution) -> Attribution:
    """A method's attributions of the sampled rows (without the extra local rows)."""
    return attribution.at_rows(plan.sample[: plan.caps[name]])


def _trust(plan: Plan, model: ExplainedModel, features: torch.Tensor, found: dict[str, Attribution],
           ctx: "AuditContext") -> dict[str, dict]:
    """Per-row trust figures of every method, and agreement between every pair."""
    tests: dict[str, dict] = {"completeness": {}, "infidelity": {}, "sensitivity": {}, "agreement": {}}
    for name, attribution in found.items():
        with _timed(ctx, name):
            _trust_one(plan, model, features, name, attribution, tests, ctx)
    names = list(found)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            tests["agreement"][(first, second)] = trust.agreement(
                _global(plan, first, found[first]), _global(plan, second, found[second]), plan.layout
            )
    return tests


def _trust_one(plan: Plan, model: ExplainedModel, features: torch.Tensor, name: str, attribution: Attribution,
               tests: dict[str, dict], ctx: "AuditContext") -> None:
    """Completeness, infidelity and sensitivity of one method, into ``tests``."""
    sampled = _global(plan, name, attribution)
    if attribution.additive:
        tests["completeness"][name] = trust.completeness(sampled)
    head = sampled.take(np.arange(min(TRUST_ROWS, sampled.n)))
    tests["infidelity"][name] = trust.infidelity(build_request(plan, model, features, head.rows, ctx), head)
    costly = registry.get(name).costly
    few = sampled.rows[: SENSITIVITY_ROWS_COSTLY if costly else SENSITIVITY_ROWS]
    tests["sensitivity"][name] = trust.sensitivity(
        build_request(plan, model, features, few, ctx), lambda request: registry.attribute(name, request),
        samples=3 if costly else trust.SENSITIVITY_SAMPLES,
    )


@contextlib.contextmanager
def _timed(ctx: "AuditContext", name: str) -> Iterator[None]:
    """Add the wall time of the block to the method's total (provenance: which method dominates)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        key = f"explanations.{name}"
        ctx.seconds[key] = round(ctx.seconds.get(key, 0.0) + time.perf_counter() - start, 4)


def _randomization(plan: Plan, model: ExplainedModel, features: torch.Tensor, found: dict[str, Attribution],
                   ctx: "AuditContext") -> dict[str, np.ndarray]:
    """Rank correlation between each row's attributions from the model and from a re-initialised copy."""
    name = next((m for m in plan.methods if registry.get(m).gradients), plan.methods[0])
    original = _global(plan, name, found[name]).take(np.arange(min(TRUST_ROWS, plan.caps[name])))
    request = build_request(plan, trust.randomized(model, ctx.seed), features, original.rows, ctx)
    shuffled = registry.attribute(name, request)
    matrix = plan.layout.matrix(plan.layout.units)
    flat = [np.abs(a.values.reshape(a.n, -1) @ matrix) for a in (original, shuffled)]
    return {name: trust.spearman_rows(*flat)}
