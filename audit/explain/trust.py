"""How far to trust an attribution: completeness, infidelity, sensitivity, agreement, randomisation.

Each test returns per-row numbers (a numerator and, for ratios, a denominator) so the check
can bootstrap an interval over rows the same way for all of them.

* completeness gap: ``|sum of values - (f(x) - base)|`` against ``|f(x) - base|``; 0 for
  exact Shapley values, the convergence error for Integrated Gradients (Captum's "delta").
* infidelity (Yeh et al., 2019, ``captum.metrics.infidelity``): remove a random half of the
  features (source columns; image patches), setting them to the baseline input, and compare
  ``f(x) - f(x')`` with the sum of the removed features' attributions. Captum's ``normalize=True`` rescales the attributions optimally per row, so
  the number does not depend on their units; it is divided by the mean squared effect of the
  removals, so 0 means the attributions predict every removal and 1 means they predict
  nothing (all-zero attributions score 1).
* sensitivity (``captum.metrics.sensitivity_max``): the largest relative change of the
  attributions when continuous inputs are nudged by at most ``radius`` (in the inputs' units;
  one-hot cells are never nudged, that would not be a valid row).
* agreement: per row, the Spearman rank correlation of two methods' absolute attributions
  over the features, and the share of their top ``k`` features they have in common.
* randomisation (Adebayo et al., 2018): the same method on a copy of the model whose weights
  are re-drawn at random; attributions that barely change explain the input, not the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from audit.explain.attribution import Attribution, FeatureLayout
from audit.explain.model import ExplainedModel, Request
from audit.models import ModelAdapter

INFIDELITY_SAMPLES = 20
SENSITIVITY_SAMPLES = 5
SENSITIVITY_RADIUS = 0.02


def completeness(attribution: Attribution) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the absolute gap, and the absolute change it is measured against."""
    return np.abs(attribution.completeness_gaps()), np.abs(attribution.outputs - attribution.base_values)


def infidelity(request: Request, attribution: Attribution, *, samples: int = INFIDELITY_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Per row: Captum's normalised infidelity, and the mean squared effect of the removals."""
    from captum.metrics import infidelity as captum_infidelity

    inputs = request.inputs.float()
    values = torch.from_numpy(attribution.values).float()
    common = dict(
        forward_func=request.model.scores_no_grad, inputs=inputs, target=request.targets,
        n_perturb_samples=samples, max_examples_per_batch=_per_batch(request.model.batch_rows, request.n, samples),
    )
    # the same seed for both calls, so both see the very same removals
    error = captum_infidelity(perturb_func=_removals(request), attributions=values, normalize=True, **common)
    effect = captum_infidelity(perturb_func=_removals(request), attributions=torch.zeros_like(values), **common)
    return error.double().numpy(), effect.double().numpy()


def _per_batch(rows: int, n: int, samples: int) -> int:
    """Captum's sub-batch of perturbed rows: within the row budget, but between n and n * samples."""
    return int(min(max(rows, n), n * samples))


def _removals(request: Request) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A perturbation for Captum: which elements were replaced (the 0/1 mask) and the new input."""
    generator = torch.Generator().manual_seed(request.seed)
    layout = request.layout
    units = torch.from_numpy(layout.units)
    count = int(layout.units.max()) + 1
    # one reference for every method: random background rows would add their own spread to every
    # removal, a floor no attribution can explain (about 0.57 on Adult, for exact Shapley values too)
    baseline = request.baseline.reshape(1, layout.elements).float()

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = inputs.reshape(inputs.shape[0], -1)
        removed = torch.rand(inputs.shape[0], count, generator=generator) < 0.5
        mask = removed[:, units]
        return mask.float().reshape(inputs.shape), torch.where(mask, baseline, flat).reshape(inputs.shape)

    return perturb


def sensitivity(request: Request, explain: Callable[[Request], Attribution], *, samples: int = SENSITIVITY_SAMPLES,
                radius: float = SENSITIVITY_RADIUS) -> np.ndarray:
    """Per row: the largest relative change of the attributions under a small nudge."""
    from captum.metrics import sensitivity_max

    generator = torch.Generator().manual_seed(request.seed)
    nudgeable = torch.from_numpy(request.layout.continuous).float().reshape(request.layout.input_shape)

    def nudge(inputs: torch.Tensor, radius: float) -> torch.Tensor:
        noise = (torch.rand(inputs.shape, generator=generator) * 2 - 1) * radius
        return inputs + noise * nudgeable

    def explanation(inputs: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor]:
        # Captum passes (and expects back) a tuple of tensors the first time, a tensor after
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        return (torch.from_numpy(explain(request.with_inputs(inputs, target)).values),)

    found = sensitivity_max(
        explanation, request.inputs.float(), perturb_func=nudge, perturb_radius=radius, n_perturb_samples=samples,
        max_examples_per_batch=_per_batch(request.model.batch_rows, request.n, samples), target=request.targets,
    )
    return found.double().numpy()


def agreement(first: Attribution, second: Attribution, layout: FeatureLayout) -> tuple[np.ndarray, np.ndarray, int]:
    """Per shared row: Spearman correlation and top-k overlap of the absolute feature attributions."""
    shared = np.intersect1d(first.rows, second.rows)
    a = np.abs(_units(first.at_rows(shared), layout))
    b = np.abs(_units(second.at_rows(shared), layout))
    k = top_k(a.shape[1])
    return spearman_rows(a, b), top_k_overlap(a, b, k), k


def top_k(features: int) -> int:
    """How many top features to compare: a quarter of them, between 1 and 5."""
    return max(1, min(5, features // 4))


def _units(attribution: Attribution, layout: FeatureLayout) -> np.ndarray:
    return attribution.values.reshape(attribution.n, -1) @ layout.matrix(layout.units)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b``; NaN for a constant row.

    Ranks with ties averaged, then Pearson's correlation of the ranks, as scipy.stats.spearmanr.
    """
    from scipy.stats import rankdata  # imported here: scipy.stats is slow to import

    ra = rankdata(a, axis=1) - (a.shape[1] + 1) / 2
    rb = rankdata(b, axis=1) - (b.shape[1] + 1) / 2
    scale = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    out = np.full(a.shape[0], np.nan)
    np.divide((ra * rb).sum(axis=1), scale, out=out, where=scale > 0)
    return out


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Share of each row's ``k`` largest entries of ``a`` that are among those of ``b``."""
    top_a = np.argsort(-a, axis=1, kind="stable")[:, :k]
    top_b = np.argsort(-b, axis=1, kind="stable")[:, :k]
    return np.array([len(set(x) & set(y)) / k for x, y in zip(top_a.tolist(), top_b.tolist())])


def randomized(model: ExplainedModel, seed: int) -> ExplainedModel:
    """A copy of the model whose every weight is re-drawn from N(0, its tensor's spread)."""
    module = copy.deepcopy(model.adapter.module)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            spread = parameter.std() if parameter.numel() > 1 else parameter.abs().mean()
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * torch.nan_to_num(spread))
    adapter = ModelAdapter(kind=model.adapter.kind, forward=module, module=module, device=model.adapter.device,
                           static_batch=model.adapter.static_batch)
    return ExplainedModel(adapter, classes=model.classes, positive_index=model.positive_index,
                          output=model.output, batch_rows=model.batch_rows)
