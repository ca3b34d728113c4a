"""SHAP's explainers behind :class:`~audit.explain.attribution.Attribution`.

Each explainer class is named and built here directly: never ``shap.Explainer``, which
chooses a class for you by swapping its own class at run time.

DeepExplainer and GradientExplainer take the model's per-class scores as a one-output
``nn.Module`` per target class. KernelExplainer and PermutationExplainer work on black boxes
(ONNX) and on *groups* of input elements (the source columns, or image patches), which SHAP
supports only through its legacy data classes; instead each group is handed to SHAP as one
feature holding a row number (see :class:`_RowIds`): masking a feature then swaps the whole
group for the background row's values, which is exactly SHAP's grouped masking.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch

from audit.explain.attribution import Attribution
from audit.explain.captum_methods import ScoresModule, expected_scores
from audit.explain.model import Request

GRADIENT_SAMPLES = 200
PERMUTATION_EVALUATIONS = 500


def import_shap():
    """``import shap``, silencing the deprecation notices its plotting module raises on import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, message="The set_.* function will be deprecated")
        import shap
    return shap


@contextlib.contextmanager
def _quiet_numba() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="numba")
        yield


def _per_class(request: Request, explain: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Run a one-output explainer once per target class present; join the rows back in order."""
    targets = request.targets.numpy()
    values: np.ndarray | None = None
    base = np.zeros(request.n)
    for target in np.unique(targets):
        rows = np.flatnonzero(targets == target)
        found, expected = explain(int(target), rows)
        if values is None:
            values = np.zeros((request.n, *found.shape[1:]))
        values[rows] = found
        base[rows] = expected
    return (values if values is not None else np.zeros((0,))), base


def _attribution(request: Request, method: str, values: np.ndarray, base: np.ndarray, **settings) -> Attribution:
    return Attribution(
        method=method,
        values=np.asarray(values, dtype=np.float64).reshape((request.n, *request.inputs.shape[1:])),
        base_values=np.asarray(base, dtype=np.float64),
        outputs=request.model.target_scores(request.inputs, request.targets),
        targets=request.targets.numpy().copy(),
        rows=np.asarray(request.rows).copy(),
        settings=settings | {"background_rows": int(request.background.shape[0])},
        additive=True,
    )


# ---------------------------------------------------------------- differentiable models


def deep_explainer(request: Request) -> Attribution:
    """DeepExplainer (DeepSHAP): DeepLift multipliers averaged over the background rows."""
    shap = import_shap()

    def explain(target: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        explainer = shap.DeepExplainer(ScoresModule(request.model, target), request.background.float())
        found = explainer.shap_values(request.inputs[rows].float(), check_additivity=False)
        return np.asarray(found).reshape(len(rows), -1), np.full(len(rows), float(np.ravel(explainer.expected_value)[0]))

    with warnings.catch_warnings():
        # SHAP notes each activation it has no rule for and treats it as linear, as documented
        warnings.filterwarnings("ignore", message="unrecognized nn.Module", category=UserWarning)
        values, base = _per_class(request, explain)
    return _attribution(request, "DeepExplainer", values, base)


def gradient_explainer(request: Request) -> Attribution:
    """GradientExplainer: expected gradients (integrated gradients over background rows)."""
    shap = import_shap()
    samples = request.samples or GRADIENT_SAMPLES

    def explain(target: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        explainer = shap.GradientExplainer(
            ScoresModule(request.model, target), request.background.float(), batch_size=request.model.batch_rows
        )
        found = explainer.shap_values(request.inputs[rows].float(), nsamples=samples, rseed=request.seed)
        return np.asarray(found).reshape(len(rows), -1), np.zeros(len(rows))

    values, _ = _per_class(request, explain)
    # GradientExplainer reports no expected value; its reference is the background's mean output
    return _attribution(request, "GradientExplainer", values, expected_scores(request), samples=samples)


# ---------------------------------------------------------------- black boxes, on groups


class _RowIds:
    """Inputs addressed by row number, group by group, so SHAP can mask whole groups.

    Row ``i`` of ``table`` is an explained row or a background row. SHAP sees one feature per
    group whose value is a row number; :meth:`inputs` builds the model input whose group ``u``
    comes from row ``ids[:, u]``.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.table = torch.cat([request.inputs.reshape(request.n, -1), request.background.reshape(request.background.shape[0], -1)]).float()
        self.unit_of = torch.from_numpy(request.layout.units)
        self.units = int(request.layout.units.max()) + 1
        self.columns = torch.arange(self.table.shape[1])

    def explained(self, rows: np.ndarray) -> np.ndarray:
        return np.repeat(rows[:, None], self.units, axis=1).astype(np.float64)

    def background(self) -> np.ndarray:
        offset = self.request.n + np.arange(self.request.background.shape[0])
        return np.repeat(offset[:, None], self.units, axis=1).astype(np.float64)

    def scorer(self, target: int) -> Callable[[np.ndarray], np.ndarray]:
        def score(ids: np.ndarray) -> np.ndarray:
            ids = torch.from_numpy(np.rint(np.asarray(ids, dtype=np.float64)).astype(np.int64))
            inputs = self.table[ids[:, self.unit_of], self.columns]
            shaped = inputs.reshape(-1, *self.request.inputs.shape[1:])
            return self.request.model.target_scores(shaped, torch.full((len(shaped),), target))

        return score


def kernel_explainer(request: Request) -> Attribution:
    """KernelExplainer (KernelSHAP): a weighted linear fit over sampled coalitions of groups.

    ``l1_reg=False``: every group keeps a value (SHAP's default keeps at most ten).
    """
    shap = import_shap()
    ids = _RowIds(request)
    samples = request.samples or "auto"

    def explain(target: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        explainer = shap.KernelExplainer(ids.scorer(target), ids.background())
        found = explainer.shap_values(ids.explained(rows), nsamples=samples, l1_reg=False, silent=True)
        return np.asarray(found).reshape(len(rows), -1), np.full(len(rows), float(np.ravel(explainer.expected_value)[0]))

    with _quiet_numba():
        values, base = _per_class(request, explain)
    spread = request.layout.spread(values, of=request.layout.units)
    return _attribution(request, "KernelExplainer", spread, base, samples=samples, groups=ids.units)


def permutation_explainer(request: Request) -> Attribution:
    """PermutationExplainer: Shapley values from antithetic permutations of the groups."""
    shap = import_shap()
    ids = _RowIds(request)
    evaluations = max(request.samples or PERMUTATION_EVALUATIONS, 2 * ids.units + 1)

    def explain(target: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        background = ids.background()
        masker = shap.maskers.Independent(background, max_samples=len(background))
        explainer = shap.PermutationExplainer(ids.scorer(target), masker, seed=request.seed)
        found = explainer(ids.explained(rows), max_evals=evaluations, silent=True)
        return np.asarray(found.values).reshape(len(rows), -1), np.asarray(found.base_values, dtype=np.float64).ravel()

    with _quiet_numba():
        values, base = _per_class(request, explain)
    spread = request.layout.spread(values, of=request.layout.units)
    return _attribution(request, "PermutationExplainer", spread, base, evaluations=evaluations, groups=ids.units)
