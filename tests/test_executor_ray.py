"""The costly checks on a Ray actor pool (local mode) give the local run's numbers, with 1 and 2 workers."""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest

from audit import load_config
from audit.checks import explanations, robustness
from audit.runner import build_context
from audit.scale.executor import RayExecutor, executor_for
from audit.text import checks as text_checks
from tests.test_executor import explain_context, with_chunks
from tests.test_robustness import tabular_spec
from tests.test_scale_ray import ray_session  # noqa: F401  (the module's Ray session: small object store, temp spilling)

pytest.importorskip("ray")


def numbers(out) -> list[tuple]:
    return [(m.metric, m.group, m.params, m.value, m.ci, m.n) for m in out]


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("explain"))
    # several chunks of 20 rows; KernelExplainer draws coalitions from its chunk's seed
    ctx = with_chunks(explain_context(project, ["IntegratedGradients", "KernelExplainer"]), 20)
    return ctx, numbers(explanations.run(ctx))


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    spec = tabular_spec(tmp_path_factory.mktemp("attack"), robustness_check={"rows": 60, "restarts": 2})
    ctx = with_chunks(build_context(load_config(spec)), 25)
    return ctx, numbers(robustness.run(ctx))


def on_ray(ctx, workers: int):
    """The same context, its costly checks sent to Ray (model specs are refused on ray until the sharded
    reader serves them: copied without validation, so only the executor sees the engine)."""
    engine = ctx.config.engine.model_copy(update={"kind": "ray", "workers": workers})
    config = ctx.config.model_copy(update={"engine": engine})
    return dataclasses.replace(ctx, config=config, warnings=[], artefacts=[], seconds={})


@pytest.mark.parametrize("workers", [1, 2])
def test_explanations_on_ray_equal_the_local_run(explained, workers):
    ctx, local = explained
    assert isinstance(executor_for(on_ray(ctx, workers).config, ctx.model), RayExecutor)
    assert numbers(explanations.run(on_ray(ctx, workers))) == local


@pytest.mark.parametrize("workers", [1, 2])
def test_attacks_with_random_restarts_on_ray_equal_the_local_run(attacked, workers):
    ctx, local = attacked
    assert numbers(robustness.run(on_ray(ctx, workers))) == local


@dataclasses.dataclass(frozen=True)
class DiesOnce:
    """A chunk whose first run anywhere kills its actor's process (a marker file says who went first)."""

    marker: str
    value: int

    def run(self, model) -> int:
        try:
            open(self.marker, "x").close()
        except FileExistsError:
            return self.value * 10
        os._exit(1)


def test_a_chunk_whose_actor_dies_is_retried_and_the_results_keep_their_order(explained, tmp_path):
    ctx, _ = explained
    marker = tmp_path / "actor-died"
    with executor_for(on_ray(ctx, 2).config, ctx.model) as executor:
        found = executor.map([DiesOnce(str(marker), v) for v in range(5)])
    assert marker.exists() and found == [0, 10, 20, 30, 40]


# ---------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text_checked(tmp_path_factory):
    """The tiny text project in chunks of 3 texts: its token attributions and attacks, run locally."""
    from tests.test_text_chunked import THRESHOLD
    from tests.text_fixtures import make_project, write_spec

    root = tmp_path_factory.mktemp("text")
    make_project(root)
    spec = write_spec(root, "ray.yaml", model__threshold=THRESHOLD,
                      checks__token_attributions={"rows": 8, "steps": 8, "examples": 1},
                      checks__text_robustness={"rows": 10, "budgets": [0.1, 0.3]})
    ctx = with_chunks(build_context(load_config(spec)), 3)
    local = numbers(text_checks.run_token_attributions(ctx) + text_checks.run_text_robustness(ctx))
    return ctx, local


def _forbidden(*_, **__):
    raise AssertionError("the driver's model ran; a Ray run explains and attacks on the actors")


def test_text_attributions_and_attacks_run_on_the_actors_and_equal_the_local_run(text_checked):
    """Two actors share the chunks (1 and 2 workers on the demo spec: tests/test_scale_ray_models.py)."""
    ctx, local = text_checked
    assert any(m[0] == "adversarial_text" for m in local) and any(m[0] == "highlighted_text" for m in local)
    with pytest.raises(Exception, match="the driver's model ran"):  # the guard works: locally the model runs here
        text_checks.run_text_robustness(dataclasses.replace(ctx, model=_guarded(ctx.model)))
    # the driver keeps its tokenizer (readable words) but cannot run its model
    on_actors = dataclasses.replace(on_ray(ctx, 2), model=_guarded(ctx.model))
    found = text_checks.run_token_attributions(on_actors) + text_checks.run_text_robustness(on_actors)
    assert numbers(found) == local


def _guarded(model):
    guarded = copy.copy(model)
    guarded.call = guarded.forward = _forbidden
    return guarded
