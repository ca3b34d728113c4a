"""The pipeline: spec -> data -> model -> predict once -> checks -> result."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from audit import checks, compare, cost, gate, profiles, progress, provenance, thresholds
from audit.config import AuditConfig, load_features_file
from audit.context import AuditContext
from audit.data import load_data
from audit.errors import AuditError
from audit.models import ModelAdapter, load_model, predict, predictions_from_columns
from audit.results import AuditResult, CheckFailure, Measurement


def run_audit(config: AuditConfig, *, command: str | None = None) -> AuditResult:
    """Run every enabled check of ``config`` and return the result; write nothing.

    Input problems raise :class:`~audit.errors.AuditError`; a check that fails becomes a
    :class:`~audit.results.CheckFailure` in the result and the other checks still run.

    >>> from audit import load_config, run_audit
    >>> result = run_audit(load_config("examples/adult_mlp.yaml"))  # doctest: +SKIP
    >>> result.select(metric="accuracy")[0].value  # doctest: +SKIP
    0.85...
    """
    started = provenance.now()
    with progress.task("checking the spec"):
        preflight(config)
    torch.manual_seed(config.seed)
    ctx = build_context(config)
    thresholds.check_against_data(config.thresholds, ctx.data.sensitive)
    checks.prepare(ctx)
    measurements, failures, timings = _run_checks(ctx)
    findings, outcome = gate.judge(tuple(measurements), config.thresholds, config.gate, failures=tuple(failures))
    device = str(ctx.model.device) if ctx.model else "none (predictions)"
    return AuditResult(
        name=config.name,
        measurements=tuple(measurements),
        provenance=provenance.build(
            config, device=device, started=started, finished=provenance.now(), command=command
        )
        | {"check_seconds": timings, "part_seconds": dict(ctx.seconds)}
        | profiles.provenance(config),
        data=_jsonable(ctx.data.summary),
        model=_describe_model(ctx),
        failures=tuple(failures),
        warnings=tuple(ctx.warnings),
        artefacts=tuple(ctx.artefacts),
        skipped=dict(ctx.skipped),
        checks_run=tuple(timings),
        findings=findings,
        gate=outcome,
        thresholds=tuple(t.model_dump(mode="json", exclude_defaults=True) for t in config.thresholds),
        gate_settings=config.gate.model_dump(mode="json"),
    )


def preflight(config: AuditConfig) -> None:
    """Input rules that need nothing loaded: threshold names and params, each check's own rules."""
    gate.check_metric_names(config.thresholds, checks.metrics())
    thresholds.check_against_spec(config.thresholds, config)
    allowances = [compare.allowance_scope(text) for text in config.max_regression]
    gate.check_metric_names(allowances, checks.metrics(), label="max_regression")
    checks.validate(config)
    if getattr(config.data, "features_file", None) is not None:
        load_features_file(Path(config.data.features_file))  # a features file of the wrong shape is a spec error


def build_context(config: AuditConfig) -> AuditContext:
    """Load data and model and predict once; every check reuses these predictions."""
    if config.engine.sharded:
        from audit.scale import engine  # shards, summaries and (optionally) Ray

        ctx = engine.build_context(config)
        _warn_one_class(ctx)
        return ctx
    with progress.task("loading data"):
        data = load_data(config)
    model: ModelAdapter | None = None
    if config.model.kind == "predictions":
        predictions = predictions_from_columns(data, config.model, dict(config.data.label.map))
    else:
        with progress.task("loading model"):
            model = load_model(config)
        predictions = predict(model, data, config.model)
    ctx = AuditContext(config=config, data=data, predictions=predictions, model=model,
                       warnings=list(data.summary.get("warnings", [])))
    _warn_one_class(ctx)
    estimated = config.data.kind in ("tabular", "image")  # what audit.cost knows how to count
    if model is not None and estimated and (config.checks.explanations.enabled or config.checks.robustness.enabled):
        # two timed calls on a sample; only when a check that the estimate is for will run
        for line in _cost_warnings(config, data, model, _seconds_per_row(model, data)):
            progress.warn(line)
    return ctx


def _warn_one_class(ctx: AuditContext) -> None:
    """Labels of one class leave error rates and ROC-AUC undefined: say so instead of passing quietly."""
    present = np.unique(ctx.data.labels)
    if len(present) == 1:
        name = ctx.data.classes[int(present[0])]
        ctx.warn(
            f"every label is class '{name}' ({ctx.data.n:,} rows): recall or false positive rates, ROC-AUC "
            "and the disparities built on them are undefined; audit data holding every class"
        )


BATCH_FOR_COST = 4096


def _seconds_per_row(model: ModelAdapter, data) -> float:
    """The model's time per row in one warm, large batch, as explanations and attacks call it.

    The prediction pass itself is a poor measure: its first call pays one-off costs (a
    TorchScript or export graph warming up) that dominate a small model's time.
    """
    rows = data.features[: min(data.n, BATCH_FOR_COST)]
    calls, threads = model.forward_calls, torch.get_num_threads()  # the report counts prediction batches only
    if model.device.type == "cpu":
        torch.set_num_threads(1)  # as explanations and attacks run (see ExplainedModel.session)
    try:
        model.outputs(rows, batch_size=max(len(rows), 1))  # warm
        start = time.perf_counter()
        model.outputs(rows, batch_size=max(len(rows), 1))
        return (time.perf_counter() - start) / max(len(rows), 1)
    finally:
        torch.set_num_threads(threads)
        model.forward_calls = calls


def _cost_warnings(config: AuditConfig, data, model: ModelAdapter, seconds_per_row: float) -> list[str]:
    """Warn before explanations or robustness that the spec makes long, naming what would cut it."""
    from audit.checks.robustness import attack_names
    from audit.explain import registry
    from audit.robust.domain import IMAGE_EPSILONS, TABULAR_EPSILONS

    tabular = config.data.kind == "tabular"
    columns = len({c.source for c in data.columns}) if tabular else 64  # source columns, as methods group them
    costs = []
    if config.checks.explanations.enabled:
        methods = config.checks.explanations.methods or registry.defaults(
            kind=config.data.kind, model=model, groups=columns)
        costs.append(cost.explanations(config, rows=data.n, columns=columns, methods=methods))
    if config.checks.robustness.enabled:
        epsilons = len(config.checks.robustness.epsilons or (TABULAR_EPSILONS if tabular else IMAGE_EPSILONS))
        attacks = attack_names(config, black_box=not model.differentiable)
        costs.append(cost.robustness(config, rows=data.n, attacks=attacks, epsilons=epsilons))
    return cost.warnings(costs, seconds_per_row=seconds_per_row)


def _run_checks(ctx: AuditContext) -> tuple[list[Measurement], list[CheckFailure], dict[str, float]]:
    measurements: list[Measurement] = []
    failures: list[CheckFailure] = []
    timings: dict[str, float] = {}
    for name in checks.enabled(ctx):
        start = time.perf_counter()
        try:
            with progress.task(name):
                measurements.extend(checks.get(name)(ctx))
        except AuditError as exc:
            failures.append(CheckFailure(name, str(exc)))
        except Exception as exc:  # a bug in one check must not lose the others' results
            text = " ".join(str(exc).split())  # one line, never the whole of a huge message
            failures.append(CheckFailure(name, f"internal error: {type(exc).__name__}: {text[:500]}"))
        timings[name] = round(time.perf_counter() - start, 4)
    return measurements, failures, timings


def _describe_model(ctx: AuditContext) -> dict:
    spec = ctx.config.model
    info = {
        "name": spec.name or ctx.config.name,
        "card": ctx.config.model_card.model_dump(exclude_none=True),
        "sensitive_inputs": sorted(set(ctx.data.summary.get("features", [])) & set(ctx.data.sensitive.columns)),
        "kind": spec.kind,
        "path": spec.path,
        "output": spec.output if spec.kind != "predictions" else None,
        "classes": list(ctx.data.classes),
        "positive_class": ctx.data.classes[ctx.data.positive_index] if ctx.data.is_binary else None,
        "threshold": spec.threshold if ctx.data.is_binary else None,
        "has_probabilities": ctx.predictions.probabilities is not None,
        "has_scores": ctx.predictions.scores is not None,
    }
    if spec.kind == "predictions":
        info |= {"decision_column": spec.decision_column, "score_column": spec.score_column, "score_type": spec.score_type}
    if ctx.model is not None:
        info |= {
            "device": str(ctx.model.device),
            "differentiable": ctx.model.differentiable,
            "forward_batches": ctx.model.forward_calls,
            "parameters": _parameter_count(ctx.model),
        }
    return info


def _parameter_count(model: ModelAdapter) -> int | None:
    if model.module is None:
        return None
    return int(sum(p.numel() for p in model.module.parameters()))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

