"""Captum's attribution methods behind :class:`~audit.explain.attribution.Attribution`.

Captum is imported inside each function, so ``rai-audit --help`` does not pay for it.

Integrated Gradients is the one method not run through Captum's class: Captum builds the
scaled inputs one step at a time, concatenates them and takes the gradient of every output
separately (``torch.unbind``), which on a small tabular network costs far more than the
forward and backward passes themselves: on the Adult MLP it runs at a tenth of the cost floor,
this module at about 0.9 of it (bench/bench_explanations.py). The rule is the same,
Gauss-Legendre quadrature with Captum's points and weights, in one fused pass per batch;
tests/test_explain_methods.py checks that the values equal Captum's.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from audit.explain.attribution import Attribution, occlusion_window
from audit.explain.model import ExplainedModel, Request


class ScoresModule(torch.nn.Module):
    """The per-class scores as an ``nn.Module`` (DeepLift and DeepExplainer hook its layers)."""

    def __init__(self, model: ExplainedModel, target: int | None = None) -> None:
        super().__init__()
        self.inner = model.adapter.module
        self._model = model
        self._target = target

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self._model.class_scores(self.inner(inputs))
        return scores if self._target is None else scores[:, self._target : self._target + 1]


def gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Captum's ``gausslegendre`` rule on [0, 1]: the points (alphas) and their weights."""
    points, weights = np.polynomial.legendre.leggauss(steps)
    return torch.tensor(0.5 * (points + 1), dtype=torch.float32), torch.tensor(0.5 * weights, dtype=torch.float32)


def reference_scores(request: Request) -> np.ndarray:
    """The target scores at the baseline input: the base value of baseline methods."""
    scores = request.model.scores_no_grad(request.baseline)[0].double().numpy()
    return scores[request.targets.numpy()]


def expected_scores(request: Request) -> np.ndarray:
    """The mean target score over the background rows: the base value of SHAP methods."""
    scores = request.model.scores_no_grad(request.background).double().numpy().mean(axis=0)
    return scores[request.targets.numpy()]


def _attribution(request: Request, method: str, values: torch.Tensor | np.ndarray, base: np.ndarray,
                 *, additive: bool, **settings) -> Attribution:
    values = values.detach().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, np.float64)
    return Attribution(
        method=method,
        values=values.reshape((request.n, *request.inputs.shape[1:])),
        base_values=np.asarray(base, dtype=np.float64),
        outputs=request.model.target_scores(request.inputs, request.targets),
        targets=request.targets.numpy().copy(),
        rows=np.asarray(request.rows).copy(),
        settings=settings,
        additive=additive,
    )


# ---------------------------------------------------------------- Integrated Gradients


def integrated_gradients(request: Request) -> Attribution:
    """Integrated Gradients (Sundararajan et al., 2017) from the baseline, ``steps`` points.

    Rows are processed in chunks of ``batch_rows // steps`` so that one pass holds at most
    ``batch_rows`` scaled inputs.
    """
    alphas, weights = gauss_legendre(request.steps)
    chunk = max(1, request.model.batch_rows // request.steps)
    inputs = request.inputs.float()
    parts = [
        _integrated_chunk(request.model, inputs[start : start + chunk], request.targets[start : start + chunk],
                          request.baseline.float(), alphas, weights)
        for start in range(0, request.n, chunk)
    ]
    values = torch.cat(parts) if parts else torch.zeros_like(inputs)
    return _attribution(request, "IntegratedGradients", values, reference_scores(request), additive=True,
                        steps=request.steps, rule="gausslegendre")


def _integrated_chunk(model: ExplainedModel, inputs: torch.Tensor, targets: torch.Tensor, baseline: torch.Tensor,
                      alphas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One fused pass: every scaled input of the chunk, one backward, the weighted sum."""
    difference = inputs - baseline
    ones = (1,) * inputs.dim()
    scaled = torch.addcmul(baseline.unsqueeze(0), alphas.view(-1, *ones), difference.unsqueeze(0)).requires_grad_()
    flat = scaled.reshape(-1, *inputs.shape[1:])
    # rows do not interact in evaluation mode, so the gradient of the sum is every row's gradient
    total = model.target_total(flat, targets.repeat(alphas.shape[0]))
    (gradients,) = torch.autograd.grad(total, scaled)
    return torch.tensordot(weights, gradients, dims=1) * difference


# ---------------------------------------------------------------- other gradient methods


def _grad_inputs(request: Request) -> torch.Tensor:
    # Captum warns when it has to switch requires_grad on itself
    return request.inputs.float().clone().requires_grad_()


def deep_lift(request: Request) -> Attribution:
    """DeepLift, rescale rule (Shrikumar et al., 2017), from the baseline; needs forward hooks."""
    from captum.attr import DeepLift

    with warnings.catch_warnings():
        # DeepLift explains why it sets hooks; it is not something the user can act on
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        values = DeepLift(ScoresModule(request.model)).attribute(
            _grad_inputs(request), baselines=request.baseline.float(), target=request.targets
        )
    return _attribution(request, "DeepLift", values, reference_scores(request), additive=True, rule="rescale")


def gradient_shap(request: Request) -> Attribution:
    """GradientShap: expected gradients over random background rows and random path points."""
    from captum.attr import GradientShap

    samples = request.samples or 20
    values = GradientShap(request.model.scores).attribute(
        _grad_inputs(request), baselines=request.background.float(), n_samples=samples, stdevs=0.0,
        target=request.targets,
    )
    return _attribution(request, "GradientShap", values, expected_scores(request), additive=True,
                        samples=samples, background_rows=int(request.background.shape[0]))


def saliency(request: Request) -> Attribution:
    """Saliency: the absolute gradient at the input (no reference, so not additive)."""
    from captum.attr import Saliency

    values = Saliency(request.model.scores).attribute(_grad_inputs(request), target=request.targets, abs=True)
    return _attribution(request, "Saliency", values, reference_scores(request), additive=False, absolute=True)


def input_x_gradient(request: Request) -> Attribution:
    """Input times gradient: a one-step linearisation around the input (not additive)."""
    from captum.attr import InputXGradient

    values = InputXGradient(request.model.scores).attribute(_grad_inputs(request), target=request.targets)
    return _attribution(request, "InputXGradient", values, reference_scores(request), additive=False)


# ---------------------------------------------------------------- perturbation methods (black boxes too)


def _per_eval(request: Request, perturbations: int) -> int:
    """How many perturbations Captum evaluates in one batch, within the row budget."""
    return int(max(1, min(perturbations, request.model.batch_rows // max(request.n, 1))))


def feature_ablation(request: Request) -> Attribution:
    """FeatureAblation: each removal unit (a source column; an image patch) set to the baseline.

    Captum gives every element of a unit the unit's whole effect; here it is spread evenly
    over the unit, as for every grouped method.
    """
    from captum.attr import FeatureAblation

    layout = request.layout
    units = torch.from_numpy(layout.units.reshape(layout.input_shape)).unsqueeze(0)
    count = int(layout.units.max()) + 1
    values = FeatureAblation(request.model.scores_no_grad).attribute(
        request.inputs.float(), baselines=request.baseline.float(), target=request.targets,
        feature_mask=units, perturbations_per_eval=_per_eval(request, count),
    )
    first = np.unique(layout.units, return_index=True)[1]
    per_unit = values.reshape(request.n, -1)[:, first].double().numpy()
    return _attribution(request, "FeatureAblation", layout.spread(per_unit, of=layout.units),
                        reference_scores(request), additive=False, units=count)


def occlusion(request: Request) -> Attribution:
    """Occlusion (Zeiler and Fergus, 2014): a square window slid over the image, set to the baseline."""
    from captum.attr import Occlusion

    channels, height, width = request.layout.input_shape
    window = occlusion_window(height, width)
    stride = max(1, window // 2)
    windows = ((height - window) // stride + 1) * ((width - window) // stride + 1)
    values = Occlusion(request.model.scores_no_grad).attribute(
        request.inputs.float(), sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        baselines=request.baseline.float()[0], target=request.targets,
        perturbations_per_eval=_per_eval(request, windows),
    )
    return _attribution(request, "Occlusion", values, reference_scores(request), additive=False,
                        window=window, stride=stride)
