"""LIME (Ribeiro et al., 2016) for tabular data and images, seeded and batched.

Tabular: LIME samples in the space of *source* columns (a one-hot block is one categorical
column whose value is its category's index), so it never builds an input with two categories
switched on at once; :class:`_SourceSpace` translates both ways. Continuous columns are
discretised into quartiles (LIME's default), and every column is kept (no feature
selection). A column's attribution is the weight of "this column has the row's value" in the
local linear model, and the base value is its intercept. LIME's local model does not have to
reproduce the model's output, so LIME is not additive.

Images: the image is cut into square patches (the occlusion window) instead of LIME's
quickshift superpixels, so the result does not depend on scikit-image's segmentation, and
hidden patches take the baseline's values.

The explainer is built with ``random_state=seed`` for every call, so the same rows under the
same seed give the same explanation.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch

from audit.explain.attribution import Attribution, FeatureLayout, occlusion_window
from audit.explain.model import Request

TABULAR_SAMPLES = 1000
IMAGE_SAMPLES = 500


class _SourceSpace:
    """Encoded inputs <-> one value per source column (a category index for one-hot blocks)."""

    def __init__(self, layout: FeatureLayout) -> None:
        self.layout = layout
        self.blocks = [np.flatnonzero(layout.group_of == g) for g in range(layout.size)]

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """(n, elements) encoded rows -> (n, columns) source values."""
        out = np.empty((inputs.shape[0], self.layout.size))
        for g, block in enumerate(self.blocks):
            onehot = self.layout.categorical[g] and block.size > 1
            out[:, g] = inputs[:, block].argmax(axis=1) if onehot else inputs[:, block[0]]
        return out

    def decode(self, source: np.ndarray) -> np.ndarray:
        """(n, columns) source values -> (n, elements) encoded rows, one-hot blocks rebuilt."""
        out = np.zeros((source.shape[0], self.layout.elements), dtype=np.float32)
        for g, block in enumerate(self.blocks):
            if self.layout.categorical[g] and block.size > 1:
                codes = np.clip(np.rint(source[:, g]).astype(np.int64), 0, block.size - 1)
                out[np.arange(source.shape[0]), block[codes]] = 1.0
            else:
                out[:, block[0]] = source[:, g]
        return out


def lime_tabular(request: Request) -> Attribution:
    """LIME over the source columns; training statistics from the background rows."""
    from lime.lime_tabular import LimeTabularExplainer

    layout = request.layout
    space = _SourceSpace(layout)
    samples = request.samples or TABULAR_SAMPLES
    explained = space.encode(request.inputs.reshape(request.n, -1).numpy())
    values = np.zeros((request.n, layout.size))
    intercepts = np.zeros(request.n)
    training = space.encode(request.background.reshape(request.background.shape[0], -1).numpy())
    with warnings.catch_warnings():
        # scikit-learn warns when a quartile discretiser meets a constant column; harmless here
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="lime")
        for i in range(request.n):
            # a fresh explainer per row: a row's explanation does not depend on the rows before it
            explainer = LimeTabularExplainer(
                training, mode="regression", feature_names=list(layout.names), feature_selection="none",
                categorical_features=[g for g in range(layout.size) if layout.categorical[g]],
                discretize_continuous=True, random_state=request.seed,
            )
            target = int(request.targets[i])

            def predict(source: np.ndarray, target: int = target) -> np.ndarray:
                encoded = torch.from_numpy(space.decode(source))
                return request.model.target_scores(encoded, torch.full((len(encoded),), target))

            found = explainer.explain_instance(explained[i], predict, num_features=layout.size, num_samples=samples)
            for g, weight in found.local_exp[1]:
                values[i, g] = weight
            intercepts[i] = found.intercept[1]
    return _lime_attribution(request, "LIME", layout.spread(values), intercepts, samples=samples)


def lime_image(request: Request) -> Attribution:
    """LIME over square patches of the image; hidden patches take the baseline's values."""
    from lime.lime_image import LimeImageExplainer

    layout = request.layout
    _, height, width = layout.input_shape
    segments = layout.units.reshape(layout.input_shape)[0]
    samples = request.samples or IMAGE_SAMPLES
    baseline = request.baseline[0].numpy().transpose(1, 2, 0).astype(np.float64)
    values = np.zeros((request.n, int(segments.max()) + 1))
    intercepts = np.zeros(request.n)

    def classify(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
        return request.model.scores_no_grad(batch).double().numpy()

    for i in range(request.n):
        target = int(request.targets[i])
        image = request.inputs[i].numpy().transpose(1, 2, 0).astype(np.float64)
        # LIME draws a progress bar on stderr for every image, with no switch to turn it off
        with contextlib.redirect_stderr(io.StringIO()):
            found = LimeImageExplainer(random_state=request.seed).explain_instance(
                image, classify, labels=(target,), top_labels=None, hide_color=baseline,
                num_features=values.shape[1], num_samples=samples, segmentation_fn=lambda _: segments,
                batch_size=max(1, min(samples, request.model.batch_rows)), random_seed=request.seed,
            )
        for segment, weight in found.local_exp[target]:
            values[i, segment] = weight
        intercepts[i] = found.intercept[target]
    spread = layout.spread(values, of=layout.units)
    return _lime_attribution(request, "LIME", spread, intercepts, samples=samples,
                             patch=occlusion_window(height, width))


def _lime_attribution(request: Request, method: str, values: np.ndarray, intercepts: np.ndarray, **settings) -> Attribution:
    return Attribution(
        method=method,
        values=values.reshape((request.n, *request.inputs.shape[1:])),
        base_values=intercepts,
        outputs=request.model.target_scores(request.inputs, request.targets),
        targets=request.targets.numpy().copy(),
        rows=np.asarray(request.rows).copy(),
        settings=settings | {"reference": "intercept of the local linear model"},
        additive=False,
    )

