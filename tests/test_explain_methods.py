"""Attribution methods against independent references: brute-force Shapley values, Captum
called directly, completeness, the binary mirror, LIME's seed, and the registry's refusals."""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from audit.context import EncodedColumn
from audit.errors import ConfigError
from audit.explain import registry
from audit.explain.attribution import FeatureLayout
from audit.explain.exact import coalitions
from audit.explain.model import ExplainedModel, Request, rows_for_budget
from audit.models import ModelAdapter


def adapter_for(module: torch.nn.Module, kind: str = "state_dict") -> ModelAdapter:
    module = module.eval()
    return ModelAdapter(kind=kind, forward=module, module=module, device=torch.device("cpu"))


def black_box(module: torch.nn.Module) -> ModelAdapter:
    """The same function with no module: what an ONNX model looks like to the methods."""
    module = module.eval()

    def forward(batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(batch).numpy()

    return ModelAdapter(kind="onnx", forward=forward, device=torch.device("cpu"))


def network(inputs: int, outputs: int, seed: int = 0, activation=torch.nn.Tanh) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, 16), activation(), torch.nn.Linear(16, outputs))


def tabular_layout() -> FeatureLayout:
    """Six encoded columns from four source columns, one of them a one-hot block of three."""
    columns = [EncodedColumn("a", "a"), EncodedColumn("b", "b"), EncodedColumn("c=x", "c"), EncodedColumn("c=y", "c"),
               EncodedColumn("c=z", "c"), EncodedColumn("d", "d")]
    return FeatureLayout.tabular(columns)


def tabular_rows(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, 6), dtype=np.float32)
    rows[:, [0, 1, 5]] = rng.normal(size=(n, 3))
    rows[np.arange(n), 2 + rng.integers(0, 3, n)] = 1.0
    rows[: n // 2, 5] = 0.0  # shared values: the null-player shortcut must change nothing
    return torch.from_numpy(rows)


def request_for(adapter: ModelAdapter, inputs: torch.Tensor, targets, *, layout: FeatureLayout, background: torch.Tensor,
                classes: int, positive_index: int | None = None, steps: int = 50, seed: int = 0) -> Request:
    model = ExplainedModel(adapter, classes=classes, positive_index=positive_index, output="logits",
                           batch_rows=rows_for_budget(adapter, inputs, 64))
    return Request(model=model, inputs=inputs, targets=torch.as_tensor(targets, dtype=torch.int64),
                   rows=np.arange(len(inputs)), baseline=background.mean(0, keepdim=True), background=background,
                   layout=layout, steps=steps, seed=seed)


def brute_force_shapley(f, x: np.ndarray, background: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Shapley values by the permutation definition: every ordering of the groups, averaged."""
    m = len(groups)

    def value(coalition: frozenset) -> float:
        mixed = background.copy()
        for g in coalition:
            mixed[:, groups[g]] = x[groups[g]]
        return float(f(mixed).mean())

    cache: dict[frozenset, float] = {}
    out = np.zeros(m)
    for order in itertools.permutations(range(m)):
        before: frozenset = frozenset()
        for g in order:
            after = before | {g}
            for key in (before, after):
                if key not in cache:
                    cache[key] = value(key)
            out[g] += cache[after] - cache[before]
            before = after
    return out / math.factorial(m)


# ---------------------------------------------------------------- exact Shapley values


def test_shapley_weights_sum_to_a_marginal_contribution_average():
    members, weights = coalitions(4)
    # a player's weights over the coalitions holding it sum to 1, over those without it to -1
    assert np.allclose(np.where(members, weights, 0).sum(axis=0), 1.0)
    assert np.allclose(np.where(~members, weights, 0).sum(axis=0), -1.0)


@pytest.mark.parametrize("black", [False, True])
def test_exact_shapley_equals_brute_force_enumeration(black):
    module = network(6, 3, seed=1)
    inputs, background = tabular_rows(5, seed=2), tabular_rows(7, seed=3)
    layout = tabular_layout()
    adapter = black_box(module) if black else adapter_for(module)
    targets = [0, 1, 2, 1, 0]
    request = request_for(adapter, inputs, targets, layout=layout, background=background, classes=3)
    found = registry.attribute("ExactShapley", request)
    per_column = layout.sum(found.values)
    groups = [np.flatnonzero(layout.group_of == g) for g in range(layout.size)]
    for i, target in enumerate(targets):
        def f(rows, target=target):
            with torch.no_grad():
                return module(torch.from_numpy(rows)).numpy()[:, target]
        expected = brute_force_shapley(f, inputs[i].numpy(), background.numpy(), groups)
        np.testing.assert_allclose(per_column[i], expected, atol=2e-5)
    np.testing.assert_allclose(found.completeness_gaps(), 0, atol=1e-5)


def test_shap_kernel_explainer_over_every_coalition_equals_brute_force():
    module = network(6, 3, seed=4)
    inputs, background = tabular_rows(3, seed=5), tabular_rows(6, seed=6)
    layout = tabular_layout()
    request = request_for(black_box(module), inputs, [2, 0, 1], layout=layout, background=background, classes=3)
    found = registry.attribute("KernelExplainer", replace(request, samples=2**4 - 2))
    exact = registry.attribute("ExactShapley", request)
    np.testing.assert_allclose(layout.sum(found.values), layout.sum(exact.values), atol=1e-4)
    np.testing.assert_allclose(found.base_values, exact.base_values, atol=1e-5)


def test_exact_shapley_refuses_more_than_twelve_groups():
    columns = [EncodedColumn(f"x{i}", f"x{i}") for i in range(13)]
    layout = FeatureLayout.tabular(columns)
    inputs = torch.randn(2, 13)
    request = request_for(adapter_for(network(13, 2)), inputs, [0, 1], layout=layout, background=inputs, classes=3)
    problem = registry.problem(registry.get("ExactShapley"), kind="tabular", model=request.model, groups=13)
    assert problem and "at most 12" in problem


# ---------------------------------------------------------------- Integrated Gradients


def test_integrated_gradients_is_complete():
    module = network(6, 4, seed=7)
    inputs, background = tabular_rows(20, seed=8), tabular_rows(30, seed=9)
    request = request_for(adapter_for(module), inputs, np.arange(20) % 4, layout=tabular_layout(),
                          background=background, classes=4, steps=100)
    found = registry.attribute("IntegratedGradients", request)
    scale = np.abs(found.outputs - found.base_values)
    assert np.all(np.abs(found.completeness_gaps()) <= 1e-3 * np.maximum(scale, 1e-2))
    # and the reference is the baseline's output
    with torch.no_grad():
        expected = module(request.baseline)[0].numpy()[np.arange(20) % 4]
    np.testing.assert_allclose(found.base_values, expected, atol=1e-6)


def _captum(cls, forward, inputs, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        return cls(forward).attribute(inputs.clone().requires_grad_(), **kwargs).detach().double().numpy()


def test_integrated_gradients_equals_captum_called_directly():
    from captum.attr import IntegratedGradients

    module = network(6, 3, seed=10, activation=torch.nn.ReLU)
    inputs, background = tabular_rows(25, seed=11), tabular_rows(10, seed=12)
    targets = torch.tensor(np.arange(25) % 3)
    request = request_for(adapter_for(module), inputs, targets, layout=tabular_layout(), background=background,
                          classes=3, steps=32)
    ours = registry.attribute("IntegratedGradients", replace(request, model=replace_batch(request.model, 40)))
    theirs = _captum(IntegratedGradients, module, inputs, baselines=request.baseline, target=targets, n_steps=32,
                     method="gausslegendre")
    np.testing.assert_allclose(ours.values, theirs, atol=2e-5)


def replace_batch(model: ExplainedModel, rows: int) -> ExplainedModel:
    """The same model with a small row budget, so several chunks are exercised."""
    return ExplainedModel(model.adapter, classes=model.classes, positive_index=model.positive_index,
                          output=model.output, batch_rows=rows)


def test_binary_model_explains_the_log_odds_and_mirrors_the_other_class():
    from captum.attr import IntegratedGradients

    module = network(6, 2, seed=13)  # two logits: the explained output is their difference
    inputs, background = tabular_rows(8, seed=14), tabular_rows(10, seed=15)
    targets = [1, 0, 1, 1, 0, 0, 1, 0]
    request = request_for(adapter_for(module), inputs, targets, layout=tabular_layout(), background=background,
                          classes=2, positive_index=1)
    ours = registry.attribute("IntegratedGradients", request)

    def log_odds(x):
        out = module(x)
        return out[:, 1] - out[:, 0]

    toward_positive = _captum(IntegratedGradients, log_odds, inputs, baselines=request.baseline, n_steps=50,
                              method="gausslegendre")
    sign = np.where(np.array(targets) == 1, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(ours.values, toward_positive * sign, atol=2e-5)
    with torch.no_grad():
        expected = (log_odds(inputs).numpy() * sign[:, 0])
    np.testing.assert_allclose(ours.outputs, expected, atol=1e-5)


# ---------------------------------------------------------------- other Captum methods, called directly


def test_captum_methods_equal_captum_called_directly():
    from captum.attr import DeepLift, FeatureAblation, GradientShap, InputXGradient, Saliency

    module = network(6, 3, seed=16, activation=torch.nn.ReLU)
    inputs, background = tabular_rows(12, seed=17), tabular_rows(10, seed=18)
    targets = torch.tensor(np.arange(12) % 3)
    layout = tabular_layout()
    request = request_for(adapter_for(module), inputs, targets, layout=layout, background=background, classes=3)
    base = request.baseline
    cases = {
        "DeepLift": lambda: _captum(DeepLift, module, inputs, baselines=base, target=targets),
        "Saliency": lambda: _captum(Saliency, module, inputs, target=targets, abs=True),
        "InputXGradient": lambda: _captum(InputXGradient, module, inputs, target=targets),
    }
    with torch.no_grad(), torch.enable_grad():
        for name, direct in cases.items():
            np.testing.assert_allclose(registry.attribute(name, request).values, direct(), atol=1e-5, err_msg=name)
    # GradientShap draws from torch's and numpy's global generators: each call seeds both with the request's seed
    torch.manual_seed(3), np.random.seed(3)
    ours = registry.attribute("GradientShap", request).values
    torch.manual_seed(request.seed), np.random.seed(request.seed)
    theirs = _captum(GradientShap, module, inputs, baselines=background, n_samples=20, stdevs=0.0, target=targets)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # FeatureAblation: Captum repeats a column's effect on each of its cells; ours spreads it evenly
    ablation = _captum(FeatureAblation, module, inputs, baselines=base, target=targets,
                       feature_mask=torch.from_numpy(layout.group_of).unsqueeze(0))
    first_cell = np.unique(layout.group_of, return_index=True)[1]
    np.testing.assert_allclose(layout.sum(registry.attribute("FeatureAblation", request).values),
                               ablation[:, first_cell], atol=1e-5)


def test_occlusion_on_images_equals_captum_called_directly():
    from captum.attr import Occlusion

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(3 * 64, 4))
    images = torch.rand(6, 1, 8, 8)
    layout = FeatureLayout.image((1, 8, 8), patch=2)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    request = request_for(adapter_for(module), images, targets, layout=layout, background=images, classes=4)
    ours = registry.attribute("Occlusion", request).values
    theirs = _captum(Occlusion, module, images, sliding_window_shapes=(1, 2, 2), strides=(1, 1, 1),
                     baselines=request.baseline[0], target=targets)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert layout.sum(ours).shape == (6, 9)


# ---------------------------------------------------------------- SHAP's gradient explainers and LIME


def test_deep_explainer_adds_up_to_the_output_minus_the_expected_value():
    module = network(6, 3, seed=19, activation=torch.nn.ReLU)
    inputs, background = tabular_rows(6, seed=20), tabular_rows(20, seed=21)
    request = request_for(adapter_for(module), inputs, [0, 1, 2, 2, 1, 0], layout=tabular_layout(),
                          background=background, classes=3)
    found = registry.attribute("DeepExplainer", request)
    np.testing.assert_allclose(found.completeness_gaps(), 0, atol=1e-4)
    with torch.no_grad():
        expected = module(background).mean(0).numpy()[[0, 1, 2, 2, 1, 0]]
    np.testing.assert_allclose(found.base_values, expected, atol=1e-5)


def test_lime_is_reproducible_under_a_seed_and_changes_with_it():
    module = network(6, 2, seed=22)
    inputs, background = tabular_rows(3, seed=23), tabular_rows(40, seed=24)
    request = request_for(black_box(module), inputs, [1, 0, 1], layout=tabular_layout(), background=background,
                          classes=2, positive_index=1, seed=5)
    request = replace(request, samples=300)
    first = registry.attribute("LIME", request).values
    np.testing.assert_array_equal(first, registry.attribute("LIME", request).values)
    assert not np.array_equal(first, registry.attribute("LIME", replace(request, seed=6)).values)
    # one row's explanation does not depend on which rows are explained with it
    alone = registry.attribute("LIME", replace(request, inputs=inputs[1:2], targets=request.targets[1:2], rows=np.array([1])))
    np.testing.assert_array_equal(alone.values[0], first[1])


# ---------------------------------------------------------------- the registry


def test_an_unknown_method_lists_the_valid_names():
    with pytest.raises(ConfigError) as error:
        registry.get("IntegratedGradient")
    message = str(error.value)
    for name in ("IntegratedGradients", "ExactShapley", "KernelExplainer", "LIME", "Occlusion"):
        assert name in message


def test_black_boxes_are_offered_only_methods_without_gradients():
    request = request_for(black_box(network(6, 2)), tabular_rows(2, 0), [0, 1], layout=tabular_layout(),
                          background=tabular_rows(4, 1), classes=2, positive_index=1)
    usable = registry.usable(kind="tabular", model=request.model, groups=4)
    assert "IntegratedGradients" not in usable and "DeepLift" not in usable
    assert {"ExactShapley", "KernelExplainer", "PermutationExplainer", "FeatureAblation", "LIME"} <= set(usable)
    assert registry.defaults(kind="tabular", model=request.model, groups=4) == ["ExactShapley", "FeatureAblation"]
    scripted = ExplainedModel(adapter_for(torch.jit.script(network(6, 2)), kind="torchscript"), classes=2,
                              positive_index=1, output="logits", batch_rows=64)
    assert "forward hooks" in registry.problem(registry.get("DeepLift"), kind="tabular", model=scripted, groups=4)
