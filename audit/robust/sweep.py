"""The epsilon sweep and minimal-perturbation runs: per-point outcomes of one attack.

The sweep runs epsilon upwards and attacks, at each epsilon, only the points still robust:
correctly classified and not broken at any smaller epsilon. A point broken at a smaller
epsilon counts as broken at every larger one: its adversarial example lies inside every
larger ball, so the sweep is never weaker than independent runs at each epsilon.

PGD here (:mod:`audit.robust.pgd`) is torchattacks.PGD's update with a per-point loss, so a
point's steps do not depend on its batch. At each epsilon it runs first from the clean input
(the deterministic start), then ``restarts`` times from a random start on the points that
survived it (all restarts in one batch): a point is robust only if it survives the
deterministic start and every restart. Restart ``r`` starts every point from ``uniform(-eps, eps)`` drawn for all points at
once under ``torch.manual_seed(seed + r)``, exactly the start ``torchattacks.PGD`` draws under
that seed for the same points. So with ``early_exit=False`` the sweep's verdict on a point
equals "broken by the deterministic run or by one of the seeded torchattacks runs"; with the
default early exit, a point is broken when some iterate of one of those runs is adversarial
(torchattacks keeps only the last one). Either way a point robust in the sweep is robust in
each independent run, so the sweep's robust accuracy is never higher than any of them
(tests/test_robustness_sweep.py checks these statements against torchattacks).

What the curve is: an upper bound on the true robust accuracy (a stronger attack can only
lower it). AutoAttack (``attacks: [AutoAttack]``) is the stronger reference.

An attack's output counts only after :meth:`project` puts it back into the domain and the
model, re-evaluated on the projected input with the audit's own decision rule, gets it wrong.

A minimal-perturbation attack (CW, DeepFool) runs once; a point it breaks with a perturbation
of size ``d`` is broken at every epsilon ``>= d``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from audit import attacks
from audit.attacks import Attack, AttackSettings


@dataclass(frozen=True)
class Plan:
    """How attacks run: the spec's settings and the model's class count and batch size."""

    norm: str
    steps: int
    step_size: float | None  # in epsilon units; None: 2.5 * epsilon / steps
    seed: int
    classes: int
    batch_size: int  # rows per attack call
    early_exit: bool = True  # PGD stops a point at its first adversarial iterate (audit.robust.pgd)
    restarts: int = 0  # random restarts after the deterministic start, for attacks that gain from them


@dataclass(frozen=True)
class Target:
    """The points under attack: domain, true labels, which are clean-correct, and the model."""

    domain: object
    labels: torch.Tensor
    correct: np.ndarray
    evaluate: Callable[[torch.Tensor], np.ndarray]  # encoded inputs -> the audit's decisions

    @property
    def n(self) -> int:
        return len(self.correct)


@dataclass(frozen=True)
class Outcome:
    """Per point: the first epsilon (index) at which the attack broke it, and how far it moved.

    ``broken_at``: -1 for points the model already gets wrong, ``len(epsilons)`` for points
    never broken. ``distance``: the size of the adversarial perturbation found, in the
    domain's units and norm (inf where none was found, NaN for points already wrong).
    ``examples``: a few adversarial inputs (encoded), the most fragile points first.
    ``attacked``: how many points were attacked at each epsilon.
    """

    attack: str
    norm: str
    epsilons: tuple[float, ...]
    broken_at: np.ndarray
    distance: np.ndarray
    examples: dict[int, torch.Tensor] = field(default_factory=dict)
    attacked: tuple[int, ...] = ()
    seconds: float = 0.0
    note: str | None = None

    def robust(self, k: int) -> np.ndarray:
        """Points correct and unbroken at epsilon index ``k``."""
        return self.broken_at > k


def run(attack: Attack, target: Target, epsilons: list[float], plan: Plan, *, keep: int | None = 3) -> Outcome:
    """One attack over the ascending ``epsilons``; ``keep`` adversarial examples (None: all)."""
    start = time.perf_counter()
    runner = _minimal if attack.minimal else _sweep
    broken_at, distance, examples, attacked = runner(attack, target, epsilons, plan, keep)
    settings = _settings(target.domain, plan, epsilons[-1] if epsilons else 0.0)
    return Outcome(
        attack=attack.name,
        norm=plan.norm,
        epsilons=tuple(epsilons),
        broken_at=broken_at,
        distance=distance,
        examples=examples,
        attacked=tuple(attacked),
        seconds=time.perf_counter() - start,
        note=attack.note(settings),
    )


def _sweep(attack: Attack, target: Target, epsilons: list[float], plan: Plan, keep: int | None):
    size = len(epsilons)
    broken_at, distance = _start(target, size)
    kept = _Kept(keep)
    attacked = []
    for k, eps in enumerate(epsilons):
        todo = np.flatnonzero(broken_at == size)
        if eps == 0 or todo.size == 0 or target.domain.movable == 0:
            attacked.append(0)
            continue
        attacked.append(int(todo.size))
        _attack_rows(attack, target, todo, k, eps, plan, broken_at, distance, kept)
        if attack.restarts and plan.restarts:
            _restarts(attack, target, k, eps, plan, broken_at, distance, kept)
    return broken_at, distance, kept.examples(), attacked


def _restarts(attack: Attack, target: Target, k: int, eps: float, plan: Plan, broken_at, distance, kept) -> None:
    """The random restarts of the points that survived the deterministic start, several per call.

    The copies of a point run side by side (each its own start; PGD's steps do not depend on
    the batch), as many restarts per pass as fit in one attack batch, so a small model pays
    for one call instead of ``restarts`` and a large one holds one batch of copies at a time;
    a point is broken when any copy breaks it, and later passes attack only the survivors.
    """
    restart = 1
    while restart <= plan.restarts:
        todo = np.flatnonzero(broken_at > k)
        if todo.size == 0:
            return
        chosen = list(range(restart, min(plan.restarts, restart + max(1, plan.batch_size // todo.size) - 1) + 1))
        start = None
        if attack.name == "PGD":  # PGD takes its starts from here; PGDL2 draws its own from seed + restart
            start = torch.cat([_random_start(target, eps, plan, r)[todo] for r in chosen])
        rows = np.tile(todo, len(chosen))
        _attack_rows(attack, target, rows, k, eps, plan, broken_at, distance, kept, restart=restart, start=start)
        restart = chosen[-1] + 1


def _attack_rows(attack, target, rows, k, eps, plan, broken_at, distance, kept, *, restart=0, start=None) -> None:
    """Attack ``rows`` (a point may appear more than once) at epsilon ``k`` and record what broke."""
    for positions in _batches(np.arange(rows.size), plan.batch_size):
        chunk = rows[positions]
        adversarial, hit = _attack(attack, target, chunk, eps, plan, restart, None if start is None else start[positions])
        _, first = np.unique(chunk[hit], return_index=True)  # one example per point
        found = np.flatnonzero(hit)[first]
        found = found[broken_at[chunk[found]] > k]  # not already broken by a copy in an earlier batch
        if not found.size:
            continue
        broken_at[chunk[found]] = k
        # inside the budget by construction; float32 storage may add ~1e-8, which is noise
        distance[chunk[found]] = np.minimum(target.domain.distance(adversarial[found], chunk[found]), eps)
        kept.add(chunk[found], adversarial[found], k, distance[chunk[found]])


def _random_start(target: Target, eps: float, plan: Plan, restart: int) -> torch.Tensor:
    """PGD's random start number ``restart`` for every point, in attack units.

    Drawn for all points at once, as ``torchattacks.PGD(random_start=True)`` draws it for a
    batch of all of them under ``torch.manual_seed(seed + restart)``: a point's start depends
    on its position only, never on which points are still being attacked.
    """
    reach = eps / target.domain.scale(eps)
    inputs = target.domain.attack_inputs(np.arange(target.n), eps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(plan.seed + restart)
        return torch.empty_like(inputs).uniform_(-reach, reach)


def _minimal(attack: Attack, target: Target, epsilons: list[float], plan: Plan, keep: int | None):
    size = len(epsilons)
    broken_at, distance = _start(target, size)
    kept = _Kept(keep)
    todo = np.flatnonzero(target.correct) if target.domain.movable else np.array([], dtype=np.int64)
    reach = target.domain.large_epsilon()  # no budget but the domain's own
    for chunk in _batches(todo, plan.batch_size):
        adversarial, hit = _attack(attack, target, chunk, reach, plan)
        found = target.domain.distance(adversarial[hit], chunk[hit])
        # broken at the first epsilon its perturbation fits in (float slack: 1e-9 relative)
        first = np.searchsorted(np.asarray(epsilons) * (1 + 1e-9), found, side="left")
        broken_at[chunk[hit]] = first
        distance[chunk[hit]] = found
        kept.add(chunk[hit], adversarial[hit], first, found)
    return broken_at, distance, kept.examples(), [int(todo.size)] + [0] * (size - 1)


def _start(target: Target, size: int) -> tuple[np.ndarray, np.ndarray]:
    broken_at = np.where(target.correct, size, -1).astype(np.int64)
    distance = np.where(target.correct, np.inf, np.nan)
    return broken_at, distance


def _attack(
    attack: Attack, target: Target, chunk: np.ndarray, eps: float, plan: Plan, restart: int = 0, start: torch.Tensor | None = None
) -> tuple[torch.Tensor, np.ndarray]:
    """Attack ``chunk`` at ``eps``; the projected examples and which of them the model gets wrong."""
    domain = target.domain
    settings = dataclasses.replace(_settings(domain, plan, eps), restart=restart, start=start)
    inputs = domain.attack_inputs(chunk, eps)
    output = attacks.perturb(attack, domain.attack_model(eps), inputs, target.labels[chunk], settings)
    adversarial = domain.project(output, chunk, eps)
    hit = target.evaluate(adversarial) != target.labels[chunk].numpy()
    return adversarial, hit


def _settings(domain, plan: Plan, eps: float) -> AttackSettings:
    scale = domain.scale(eps)
    step = plan.step_size if plan.step_size is not None else 2.5 * eps / plan.steps
    return AttackSettings(
        eps=eps / scale,
        step_size=step / scale,
        steps=plan.steps,
        norm=plan.norm,
        seed=plan.seed,
        classes=plan.classes,
        images=domain.images and plan.classes >= 4,
        early_exit=plan.early_exit and not domain.rounds,
    )


def _batches(rows: np.ndarray, size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class _Kept:
    """The ``keep`` most fragile adversarial examples seen so far (smallest epsilon, then distance)."""

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.items: list[tuple[int, float, int, torch.Tensor]] = []

    def add(self, rows: np.ndarray, adversarial: torch.Tensor, k, distance: np.ndarray) -> None:
        if self.keep == 0:
            return
        levels = np.broadcast_to(np.asarray(k), rows.shape)
        self.items += [(int(level), float(d), int(row), adversarial[i]) for i, (row, level, d) in enumerate(zip(rows, levels, distance))]
        self.items.sort(key=lambda item: item[:3])
        if self.keep is not None:
            del self.items[self.keep :]

    def examples(self) -> dict[int, torch.Tensor]:
        return {row: example for _, _, row, example in self.items}
