"""Chunked attributions and attacks: deterministic methods as before chunking, seeded ones per chunk seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from audit import attacks, load_config, sampling
from audit.checks import explanations, robustness
from audit.explain import registry
from audit.explain.plan import make_plan
from audit.robust import sweep
from audit.robust.wrappers import attack_session
from audit.runner import build_context
from audit.scale.executor import LocalExecutor, chunks, executor_for
from tests.test_robustness import image_spec, tabular_spec

SENSITIVE = [{"column": "sex", "reference": "M"}]
DETERMINISTIC = ["IntegratedGradients", "Saliency", "ExactShapley"]
SEEDED = ["KernelExplainer", "LIME", "GradientShap"]


def explain_context(project, methods, **engine):
    spec = project.spec(model=project.model("safetensors"), data={"sensitive": SENSITIVE},
                        checks={"explanations": {"rows": 60, "costly_rows": 25, "steps": 8, "methods": methods}},
                        engine=engine or {})
    return build_context(load_config(spec))


def with_chunks(ctx, size: int, **engine):
    return dataclasses.replace(ctx, config=ctx.config.replace(engine={"chunk_rows": size} | engine))


def attributions(ctx, executor=None) -> dict:
    """Every method's attributions of its rows, chunked as ``ctx``'s spec says."""
    model = explanations.explained_model(ctx)
    found = {}
    with model.session(ctx.seed), (executor or LocalExecutor(ctx.model)) as running:
        plan = make_plan(ctx, model)
        for name in plan.methods:
            request = explanations.build_request(plan, model, ctx.data.features, plan.rows_for(name), ctx)
            found[name] = explanations.attribute_in_chunks(running, name, request, ctx)
    return found


def test_chunks_cover_the_rows_in_order():
    assert [(s.start, s.stop) for s in chunks(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert [(s.start, s.stop) for s in chunks(0, 4)] == [(0, 0)]


def test_deterministic_methods_give_each_row_the_values_of_one_unchunked_call(project):
    """Bit for bit with the default chunk (one chunk here); other chunk sizes to float32 rounding.

    A float32 matrix product over a batch of another height may round a row's result one unit
    in the last place differently (the BLAS kernel handles the rows past its block width
    apart), and IG and Saliency run the model on batches of the chunk's rows.
    """
    ctx = explain_context(project, DETERMINISTIC)
    model = explanations.explained_model(ctx)
    with model.session(ctx.seed):
        plan = make_plan(ctx, model)
        before = {name: registry.attribute(name, explanations.build_request(plan, model, ctx.data.features,
                                                                             plan.rows_for(name), ctx))
                  for name in plan.methods}
    for size, tolerance in ((ctx.config.engine.chunk_rows, 0.0), (7, 1e-6), (25, 1e-6)):
        found = attributions(with_chunks(ctx, size))
        for name in DETERMINISTIC:
            np.testing.assert_array_equal(found[name].rows, before[name].rows)
            for field in ("values", "outputs", "base_values"):
                ours, theirs = getattr(found[name], field), getattr(before[name], field)
                np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance * np.abs(theirs).max())
    chunked = attributions(with_chunks(ctx, 7))["ExactShapley"]
    assert chunked.settings["model_evaluations"] == before["ExactShapley"].settings["model_evaluations"]


def test_seeded_methods_give_each_chunk_what_the_library_gives_under_that_chunks_seed(project):
    ctx = with_chunks(explain_context(project, SEEDED), 10)
    found = attributions(ctx)
    model = explanations.explained_model(ctx)
    with model.session(ctx.seed):
        plan = make_plan(ctx, model)
        for name in SEEDED:
            rows = plan.rows_for(name)
            assert len(rows) > 10  # several chunks
            for part in chunks(len(rows), 10):
                request = explanations.build_request(plan, model, ctx.data.features, rows[part], ctx)
                seed = sampling.chunk_seed(ctx.seed, int(ctx.data.row_ids[rows[part][0]]))
                reference = registry.attribute(name, dataclasses.replace(request, seed=seed))
                np.testing.assert_allclose(found[name].values[part], reference.values, rtol=0, atol=1e-12)
    again = attributions(ctx)
    for name in SEEDED:
        np.testing.assert_array_equal(again[name].values, found[name].values)


# ---------------------------------------------------------------- attacks


def attack_outcomes(ctx, names, plan=None) -> dict[str, sweep.Outcome]:
    setup = robustness.plan_run(ctx)
    with attack_session(ctx.model), executor_for(ctx.config, ctx.model) as executor:
        return {name: robustness.attack_in_chunks(executor, ctx, setup, name, setup.epsilons, plan or setup.plan, 3)
                for name in names}


@pytest.mark.parametrize("kind", ["tabular", "image"])
def test_deterministic_attacks_give_each_point_its_unchunked_outcome(tmp_path, kind):
    check = {"restarts": 0, "rows": 40, "examples": 3}
    spec = tabular_spec(tmp_path, robustness_check=check) if kind == "tabular" else image_spec(tmp_path, robustness_check=check)
    ctx = build_context(load_config(spec))
    setup = robustness.plan_run(ctx)
    with attack_session(ctx.model):
        before = {name: sweep.run(attacks.get(name), setup.target, setup.epsilons, setup.plan, keep=3)
                  for name in ("FGSM", "PGD")}
    for size in (6, 40):
        found = attack_outcomes(with_chunks(ctx, size), ["FGSM", "PGD"])
        for name, outcome in found.items():
            np.testing.assert_array_equal(outcome.broken_at, before[name].broken_at)
            np.testing.assert_allclose(outcome.distance, before[name].distance, rtol=0, atol=1e-12)
            assert list(outcome.examples) == list(before[name].examples)
            for row, example in outcome.examples.items():
                torch.testing.assert_close(example, before[name].examples[row], rtol=0, atol=0)
            assert outcome.attacked == before[name].attacked
    assert (before["PGD"].broken_at < len(setup.epsilons)).any()  # the attacks did break points


def test_random_restarts_are_seeded_per_chunk(tmp_path):
    ctx = with_chunks(build_context(load_config(tabular_spec(tmp_path, robustness_check={"rows": 40, "restarts": 3}))), 15)
    found = attack_outcomes(ctx, ["PGD"])["PGD"]
    setup = robustness.plan_run(ctx)
    ids = ctx.data.row_ids[setup.rows]
    for part in chunks(setup.target.n, 15):
        # the chunk alone, as its own sweep under its own seed
        chunk_ctx = ctx
        tasks = robustness.chunked.tasks("PGD", setup.target, setup.epsilons, setup.plan, keep=3, row_ids=ids,
                                         seed=ctx.seed, size=15, classes=ctx.data.classes,
                                         positive_index=ctx.data.positive_index, model_spec=chunk_ctx.config.model)
        task = tasks[part.start // 15]
        assert task.plan.seed == sampling.chunk_seed(ctx.seed, int(ids[part.start]))
        np.testing.assert_array_equal(task.run(ctx.model).broken_at, found.broken_at[part])
