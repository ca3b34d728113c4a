"""Exact Shapley values by enumeration, for at most :data:`MAX_GROUPS` features or groups.

The value of a coalition ``S`` of source columns for row ``x`` is the interventional one that
KernelSHAP estimates, ``v(S) = mean_b f(x_S, b_notS)`` over background rows ``b``. The
Shapley value is linear in the game, so ``phi(v) = mean_b phi(v_b)`` where
``v_b(S) = f(x_S, b_notS)`` is the game against one background row. That split is what makes
enumeration cheap:

* in ``v_b`` a column on which ``x`` and ``b`` hold the same value is a *null player*
  (putting it in or out builds the same input), so its value is 0 and it can be left out of
  the enumeration without changing anyone else's value. Only the ``k`` columns where ``x``
  and ``b`` differ are enumerated: ``2**k`` inputs instead of ``2**M``. On Adult (12 source
  columns, many shared categories and zero capital gains) the mean of ``2**k`` over pairs
  is about a hundred, forty times fewer than 4,096;
* pairs with the same ``k`` share one coalition matrix and one Shapley weight matrix, so each
  bucket is a few tensor operations and batched forward passes of at most ``batch_rows``
  inputs; the Shapley sum is one matrix product per batch.

The result is exact, up to float32 rounding in the model: every row's values sum to
``f(x) - mean_b f(b)``. tests/test_explain_methods.py checks it against a brute-force
enumeration of all ``2**M`` coalitions written independently.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from audit.explain.attribution import Attribution
from audit.explain.model import Request

MAX_GROUPS = 12
"""Enumeration of every coalition costs up to ``2**M`` inputs per pair: 4,096 at 12."""


@lru_cache(maxsize=None)
def coalitions(k: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``2**k`` coalitions of ``k`` players, and the Shapley weight matrix.

    ``members[s, j]`` says whether player ``j`` is in coalition ``s``; ``weights[s, j]`` is
    ``w(|s| - 1)`` when it is and ``-w(|s|)`` when it is not, with
    ``w(t) = t! (k - 1 - t)! / k!``, so that ``values @ weights`` is each player's Shapley value.
    """
    members = ((np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)
    size = members.sum(axis=1)
    weight = np.array([math.factorial(t) * math.factorial(k - 1 - t) / math.factorial(k) for t in range(k)] + [0.0])
    weights = np.where(members, weight[np.maximum(size - 1, 0)][:, None], -weight[size][:, None])
    return members, weights


def exact_shapley(request: Request) -> Attribution:
    """Shapley values of the layout's removal units (source columns; image patches), exactly."""
    layout = request.layout
    units = int(layout.units.max()) + 1
    if units > MAX_GROUPS:
        raise ValueError(f"exact Shapley values enumerate at most {MAX_GROUPS} groups; this input has {units}")
    inputs = request.inputs.reshape(request.n, -1).float()
    background = request.background.reshape(request.background.shape[0], -1).float()
    unit_of = torch.from_numpy(layout.units)
    differs = _differing_units(inputs, background, unit_of, units)
    base_scores = request.model.scores_no_grad(request.background).double().numpy()
    values = np.zeros((request.n, units))
    evaluated = 0
    for k in range(1, units + 1):
        pairs = np.argwhere(differs.sum(axis=2) == k)
        if pairs.size:
            evaluated += _add_bucket(values, request, inputs, background, unit_of, differs, pairs, k)
    values /= background.shape[0]
    targets = request.targets.numpy()
    return Attribution(
        method="ExactShapley",
        values=layout.spread(values, of=layout.units).reshape((request.n, *request.inputs.shape[1:])),
        base_values=base_scores[:, targets].mean(axis=0),
        outputs=request.model.target_scores(request.inputs, request.targets),
        targets=targets.copy(),
        rows=np.asarray(request.rows).copy(),
        settings={"background_rows": int(background.shape[0]), "groups": units, "model_evaluations": evaluated},
        additive=True,
    )


def _differing_units(inputs: torch.Tensor, background: torch.Tensor, unit_of: torch.Tensor, units: int) -> np.ndarray:
    """(n, B, units): whether row ``i`` and background row ``b`` differ anywhere in a unit."""
    membership = torch.zeros(unit_of.shape[0], units)
    membership[torch.arange(unit_of.shape[0]), unit_of] = 1.0
    out = np.empty((inputs.shape[0], background.shape[0], units), dtype=bool)
    step = max(1, 2**24 // max(background.numel(), 1))  # about 16M comparisons at a time
    for start in range(0, inputs.shape[0], step):
        unequal = (inputs[start : start + step, None, :] != background[None, :, :]).float()
        out[start : start + step] = (unequal @ membership > 0).numpy()
    return out


def _add_bucket(values: np.ndarray, request: Request, inputs: torch.Tensor, background: torch.Tensor,
                unit_of: torch.Tensor, differs: np.ndarray, pairs: np.ndarray, k: int) -> int:
    """Enumerate the ``2**k`` coalitions of every (row, background row) pair with ``k`` players."""
    members, weights = coalitions(k)
    # each pair's players: the units where it differs, in unit order (stable sort puts them first)
    players = np.argsort(~differs[pairs[:, 0], pairs[:, 1]], axis=1, kind="stable")[:, :k]
    chunk = max(1, request.model.batch_rows // 2**k)
    targets = request.targets.numpy()
    for start in range(0, len(pairs), chunk):
        rows, backs, who = pairs[start : start + chunk, 0], pairs[start : start + chunk, 1], players[start : start + chunk]
        mixed = _mixed_inputs(inputs[rows], background[backs], who, members, unit_of)
        scores = request.model.scores_no_grad(mixed.reshape(-1, *request.inputs.shape[1:]))
        game = scores.double().numpy().reshape(len(rows), 2**k, -1)[np.arange(len(rows)), :, targets[rows]]
        np.add.at(values, (rows[:, None], who), game @ weights)
    return len(pairs) * 2**k


def _mixed_inputs(rows: torch.Tensor, backs: torch.Tensor, players: np.ndarray, members: np.ndarray,
                  unit_of: torch.Tensor) -> torch.Tensor:
    """(m, 2**k, elements): the row's values on the coalition's units, the background's elsewhere."""
    m, k = players.shape
    units = int(unit_of.max()) + 1
    chosen = torch.zeros((m, members.shape[0], units), dtype=torch.bool)
    index = torch.from_numpy(players).unsqueeze(1).expand(m, members.shape[0], k)
    chosen.scatter_(2, index, torch.from_numpy(members).unsqueeze(0).expand(m, -1, -1))
    return torch.where(chosen.index_select(2, unit_of), rows[:, None, :], backs[:, None, :])
