"""The sweep is never weaker than the standard tools' PGD on the demo models (issue 12).

References, computed here by torchattacks, not by the sweep: ``torchattacks.PGD`` with its
default random start (one run per epsilon, from a seed the sweep never uses), and the best of
N = 10 seeded ``torchattacks.PGD`` random restarts (the sweep's default is 10; a
point counts as robust only if every restart leaves it robust: what ART's
``ProjectedGradientDescent(num_random_init=N)`` computes; ART itself is not installed). The
restarts are seeded as the sweep seeds its own (``seed + r``), so the comparison is exact point
by point; against N restarts from other seeds the two are equally strong in expectation and
differ by a point either way (bench/RESULTS.md, bench_robustness).
"""


from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchattacks

from audit import attacks
from audit.checks import robustness
from audit.config import config_from_dict, load_config
from audit.robust import sweep
from audit.robust.wrappers import attack_session
from audit.runner import build_context

ROOT = Path(__file__).resolve().parent.parent
RESTARTS = 10  # the reference's restarts: the sweep's default must be at least as strong
INDEPENDENT_SEED = 7099  # the single torchattacks run's start: not one of the sweep's seeds (seed + r, r <= restarts)


def _demo(spec: str, rows: int, epsilons: list[float]):
    path = ROOT / spec
    raw = load_config(path).model_dump(mode="json", exclude_unset=True, by_alias=True)
    raw["checks"] = {"robustness": {"rows": rows, "epsilons": epsilons}}
    config = config_from_dict(raw, base=path.parent)
    config._source = path  # the factory path resolves against the spec's folder
    ctx = build_context(config)
    return ctx, robustness.plan_run(ctx)


def _torchattacks_robust(setup, eps: float, seed: int) -> np.ndarray:
    """Which points stay correct under one torchattacks.PGD run with its random start."""
    domain, target, plan = setup.domain, setup.target, setup.plan
    rows = np.arange(target.n)
    scale = domain.scale(eps)
    attack = torchattacks.PGD(domain.attack_model(eps), eps=eps / scale, alpha=2.5 * eps / plan.steps / scale, steps=plan.steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        output = attack(domain.attack_inputs(rows, eps), target.labels).detach()
    adversarial = domain.project(output, rows, eps)
    return target.correct & (target.evaluate(adversarial) == target.labels.numpy())


@pytest.mark.parametrize(
    "spec, rows, epsilons",
    [("examples/digits_cnn.yaml", 450, [0.05, 0.1, 0.2]), ("examples/adult_mlp.yaml", 500, [0.5, 1.0, 2.0])],
)
def test_sweep_is_never_above_torchattacks_pgd_nor_the_best_of_n_restarts(spec, rows, epsilons):
    ctx, setup = _demo(spec, rows, epsilons)
    with attack_session(ctx.model, row_size=int(ctx.data.features[0].numel())):
        outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, setup.plan, keep=0)
        for k, eps in enumerate(setup.epsilons):
            if eps == 0:
                continue
            ours = outcome.robust(k).mean()
            single = _torchattacks_robust(setup, eps, INDEPENDENT_SEED).mean()
            seeds = [setup.plan.seed + r for r in range(1, RESTARTS + 1)]
            best = np.logical_and.reduce([_torchattacks_robust(setup, eps, seed) for seed in seeds])
            assert ours <= single, f"{spec} eps={eps}: sweep {ours:.4f} above torchattacks.PGD {single:.4f}"
            assert ours <= best.mean(), f"{spec} eps={eps}: sweep {ours:.4f} above the best of {len(seeds)} restarts {best.mean():.4f}"
            assert not (outcome.robust(k) & ~best).any(), "a point robust in the sweep broke in a seeded restart"
