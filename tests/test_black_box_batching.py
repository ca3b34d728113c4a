"""Black-box methods send their perturbed rows to the model in large batches (one call per
explained row or per permutation, never per row), with the same attributions as SHAP called
directly; a black box with many groups gets PermutationExplainer by default."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from audit.context import EncodedColumn
from audit.explain import registry, shap_methods
from audit.explain.attribution import FeatureLayout
from audit.explain.model import ExplainedModel
from audit.models import ModelAdapter
from tests.test_explain_methods import network, request_for, tabular_layout, tabular_rows


COLUMNS = 12


def wide_layout() -> FeatureLayout:
    """Twelve source columns: each permutation asks 25 masks, which SHAP sends 10 a call."""
    return FeatureLayout.tabular([EncodedColumn(f"x{i}", f"x{i}") for i in range(COLUMNS)])


def wide_rows(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, COLUMNS)).astype(np.float32))


class CountingBlackBox:
    """An elementwise float64 function (no BLAS, so batching cannot change a bit), counting calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.weights = np.linspace(-1.5, 2.0, COLUMNS)

        self.rows = 0

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        self.calls += 1
        self.rows += len(batch)
        x = batch.double().numpy()
        score = np.tanh(x * self.weights).sum(axis=1) + x[:, 0] * x[:, 5]
        return np.stack([-score, score, 0.5 * score * score], axis=1)


def test_permutation_explainer_batches_rows_and_matches_shap_unbatched():
    box = CountingBlackBox()
    adapter = ModelAdapter(kind="onnx", forward=box, device=torch.device("cpu"))
    inputs, background = wide_rows(3, seed=1), wide_rows(8, seed=2)
    request = request_for(adapter, inputs, [1, 0, 2], layout=wide_layout(), background=background, classes=3)
    request = replace(request, model=ExplainedModel(adapter, classes=3, positive_index=None, output="logits",
                                                    batch_rows=10**6))
    found = registry.attribute("PermutationExplainer", request)
    batched_calls, box.calls = box.calls, 0

    shap = shap_methods.import_shap()
    ids = shap_methods._RowIds(request)
    expected = []
    for i, target in enumerate([1, 0, 2]):
        background_ids = ids.background()
        masker = shap.maskers.Independent(background_ids, max_samples=len(background_ids))
        explainer = shap.PermutationExplainer(ids.scorer(target), masker, seed=request.seed)
        out = explainer(ids.explained(np.array([i])), max_evals=found.settings["evaluations"], silent=True)
        expected.append(np.asarray(out.values).ravel())
    unbatched_calls = box.calls
    np.testing.assert_allclose(request.layout.sum(found.values), np.array(expected), rtol=0, atol=1e-12)
    # SHAP's delta masking sends each permutation's masks in one call; ours adds none per row
    assert batched_calls <= unbatched_calls + 1
    permutations = -(-found.settings["evaluations"] // (2 * COLUMNS + 1))
    assert batched_calls <= len(inputs) * (permutations + 1)


@pytest.mark.parametrize("method", ["KernelExplainer", "PermutationExplainer", "LIME"])
def test_model_agnostic_methods_send_many_rows_a_call(method):
    """Each call carries at least a whole permutation (25 masks x 8 background rows), never a row."""
    box = CountingBlackBox()
    adapter = ModelAdapter(kind="onnx", forward=box, device=torch.device("cpu"))
    request = request_for(adapter, wide_rows(2, seed=3), [1, 2], layout=wide_layout(), background=wide_rows(8, seed=4),
                          classes=3)
    request = replace(request, model=ExplainedModel(adapter, classes=3, positive_index=None, output="logits",
                                                    batch_rows=10**6))
    registry.attribute(method, request)
    assert box.rows / box.calls >= (2 * COLUMNS + 1) * 8 - 8, (box.rows, box.calls)


def test_a_black_box_with_many_groups_gets_permutation_explainer():
    black = request_for(ModelAdapter(kind="onnx", forward=CountingBlackBox(), device=torch.device("cpu")),
                        wide_rows(2, 0)[:, :6], [0, 1], layout=tabular_layout(), background=tabular_rows(4, 1), classes=2)
    assert registry.defaults(kind="tabular", model=black.model, groups=12) == ["ExactShapley", "FeatureAblation"]
    assert registry.defaults(kind="tabular", model=black.model, groups=13) == ["PermutationExplainer", "FeatureAblation"]
    assert registry.BLACK_BOX_MANY_GROUPS == "PermutationExplainer"
    white = request_for(ModelAdapter(kind="state_dict", forward=network(6, 2).eval(), module=network(6, 2).eval(),
                                     device=torch.device("cpu")), tabular_rows(2, 0), [0, 1], layout=tabular_layout(),
                        background=tabular_rows(4, 1), classes=2)
    assert registry.defaults(kind="tabular", model=white.model, groups=13)[0] == "IntegratedGradients"


def test_the_report_states_the_square_budget_and_the_library_default():
    import inspect

    import torchattacks

    from audit import attacks

    library_default = inspect.signature(torchattacks.Square.__init__).parameters["n_queries"].default
    assert attacks.TORCHATTACKS_SQUARE_QUERIES == library_default
    settings = attacks.AttackSettings(eps=0.1, step_size=0.025, steps=10, norm="Linf", seed=0, classes=2, images=False)
    note = attacks.get(attacks.BLACK_BOX).note(settings)
    assert f"{attacks.SQUARE_QUERIES} queries" in note and f"default is {library_default}" in note
    assert "upper bound" in note
    built = attacks.get(attacks.BLACK_BOX).build(torch.nn.Linear(2, 2), settings)
    assert built.n_queries == attacks.SQUARE_QUERIES
