"""The epsilon sweep, the domains and the statistics, against independent references.

References: torchattacks.PGD itself (run independently at each epsilon on the same points),
the raw network (re-evaluated on every adversarial example), constraint checks written out
here rather than taken from the domain, numpy's median and hand-counted tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchattacks

from audit import attacks
from audit.checks import robustness
from audit.config import load_config
from audit.robust import summary, sweep
from audit.robust.pgd import SweepPGD
from audit.robust.wrappers import attack_session
from audit.runner import build_context
from tests.test_robustness import image_spec, tabular_spec


def _setup(spec, **check):
    ctx = build_context(load_config(spec))
    return ctx, robustness.plan_run(ctx)


def _independent(setup, eps: float, rows: np.ndarray, *, steps: int | None = None, seed: int | None = None) -> np.ndarray:
    """torchattacks.PGD at ``eps`` on ``rows`` alone: which of them its (projected) examples break.

    ``seed``: torchattacks' own random start, drawn under ``torch.manual_seed(seed)``; None: no random start.
    """
    domain, target, plan = setup.domain, setup.target, setup.plan
    scale = domain.scale(eps)
    attack = torchattacks.PGD(
        domain.attack_model(eps), eps=eps / scale, alpha=2.5 * eps / plan.steps / scale, steps=steps or plan.steps,
        random_start=seed is not None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)
        output = attack(domain.attack_inputs(rows, eps), target.labels[rows]).detach()
    adversarial = domain.project(output, rows, eps)
    return target.evaluate(adversarial) != target.labels[rows].numpy()


@pytest.fixture(params=["tabular", "image"])
def setting(request, tmp_path):
    if request.param == "tabular":
        # no integer feature here: rounding would make PGD run every step (no early exit)
        spec = tabular_spec(tmp_path, robustness_check={"epsilons": [0.1, 0.25, 0.5, 1.0, 2.0]})
        text = spec.read_text().replace("integer: true", "integer: false")
        spec.write_text(text)
    else:
        spec = image_spec(tmp_path, robustness_check={"epsilons": [0.02, 0.05, 0.1, 0.2]}, n=80)
    ctx, setup = _setup(spec)
    with attack_session(ctx.model, row_size=int(ctx.data.features[0].numel())):
        yield ctx, setup


def test_exact_sweep_equals_independent_pgd_on_the_points_it_attacks(setting):
    ctx, setup = setting
    exact = dataclasses.replace(setup.plan, early_exit=False, restarts=0)  # the deterministic start alone
    outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, exact, keep=0)
    for k, eps in enumerate(setup.epsilons):
        attacked = np.flatnonzero(outcome.broken_at >= k)  # correct and not broken before epsilon k
        if eps == 0 or not attacked.size:
            continue
        assert outcome.attacked[k] == attacked.size
        assert np.array_equal(_independent(setup, eps, attacked), outcome.broken_at[attacked] == k), eps


def test_early_exit_breaks_a_point_exactly_when_some_torchattacks_iterate_is_adversarial(setting):
    ctx, setup = setting
    assert setup.domain.rounds is False  # no integer feature: early exit is on
    plan = dataclasses.replace(setup.plan, restarts=0)  # the deterministic start alone
    outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, plan, keep=0)
    for k, eps in enumerate(setup.epsilons):
        attacked = np.flatnonzero(outcome.broken_at >= k)
        if eps == 0 or not attacked.size:
            continue
        # torchattacks.PGD with t steps ends at iterate t of the 10-step run (deterministic, no random start)
        visited = np.zeros(attacked.size, bool)
        for steps in range(1, setup.plan.steps + 1):
            visited |= _independent(setup, eps, attacked, steps=steps)
        assert np.array_equal(visited, outcome.broken_at[attacked] == k), eps


def test_sweep_robust_points_are_robust_in_independent_runs(setting):
    ctx, setup = setting
    outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, setup.plan, keep=0)
    correct = np.flatnonzero(setup.target.correct)
    for k, eps in enumerate(setup.epsilons):
        theirs = np.zeros(setup.target.n, bool)
        theirs[correct] = ~_independent(setup, eps, correct) if eps > 0 else True
        ours = outcome.robust(k)
        assert not (ours & ~theirs).any() and ours.mean() <= theirs.mean(), eps


def test_a_point_robust_in_the_sweep_survives_the_deterministic_start_and_every_seeded_restart(setting):
    # reference: torchattacks.PGD itself, once without random start and once per restart r with its own
    # random start under torch.manual_seed(seed + r), each run on every correct point at each epsilon alone
    ctx, setup = setting
    plan = dataclasses.replace(setup.plan, restarts=3)
    outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, plan, keep=0)
    rows = np.arange(setup.target.n)  # every point in one batch, as the sweep draws the starts
    for k, eps in enumerate(setup.epsilons):
        if eps == 0:
            continue
        for seed in (None, *(plan.seed + r for r in range(1, plan.restarts + 1))):
            theirs = setup.target.correct & ~_independent(setup, eps, rows, seed=seed)
            assert not (outcome.robust(k) & ~theirs).any(), (eps, seed)


def _pgd_case(setup):
    """The second-largest epsilon on every point: the model, inputs and PGD settings of both PGD tests."""
    domain, target = setup.domain, setup.target
    rows = np.arange(target.n)
    eps = setup.epsilons[-2]
    scale = domain.scale(eps)
    model, inputs = domain.attack_model(eps), domain.attack_inputs(rows, eps)
    return target, rows, eps, model, inputs, dict(eps=eps / scale, alpha=0.25 * eps / scale, steps=10)


def test_restarts_without_early_exit_are_seeded_torchattacks_runs_bit_for_bit(setting):
    # reference: torchattacks.PGD(random_start=True) under torch.manual_seed(seed + r) on the same points
    ctx, setup = setting
    target, rows, eps, model, inputs, settings = _pgd_case(setup)
    start = sweep._random_start(target, eps, setup.plan, 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.plan.seed + 2)
        theirs = torchattacks.PGD(model, random_start=True, **settings)(inputs, target.labels)
    assert torch.equal(SweepPGD(model, early_exit=False, start=start, **settings)(inputs, target.labels), theirs)
    half = rows[::2]  # and a point's start and steps do not depend on its batch
    alone = SweepPGD(model, early_exit=True, start=start[half], **settings)(inputs[half], target.labels[half])
    assert torch.equal(alone, SweepPGD(model, early_exit=True, start=start, **settings)(inputs, target.labels)[half])


def test_pgd_without_early_exit_is_torchattacks_pgd_bit_for_bit(setting):
    ctx, setup = setting
    target, rows, eps, model, inputs, settings = _pgd_case(setup)
    theirs = torchattacks.PGD(model, random_start=False, **settings)(inputs, target.labels)
    ours = SweepPGD(model, early_exit=False, **settings)(inputs, target.labels)
    assert torch.equal(ours, theirs)
    # and a point's result does not depend on its batch: every other row, alone, gives the same
    half = rows[::2]
    alone = SweepPGD(model, early_exit=True, **settings)(inputs[half], target.labels[half])
    together = SweepPGD(model, early_exit=True, **settings)(inputs, target.labels)
    assert torch.equal(alone, together[half])


def test_the_tabular_model_reads_each_row_from_its_key_whatever_the_batch(tmp_path):
    ctx, setup = _setup(tabular_spec(tmp_path))
    domain = setup.domain
    rows = np.arange(setup.target.n)
    model = domain.attack_model(0.5)
    inputs = domain.attack_inputs(rows, 0.5)
    with torch.no_grad():
        full = model(inputs)
        order = np.random.default_rng(0).permutation(rows)[:37]
        assert torch.equal(model(inputs[order]), full[order])
        # a jitter below the key's tolerance changes nothing but the movable features
        jitter = inputs.clone()
        flat = jitter.reshape(len(rows), -1)
        flat[:, domain.movable:] += 0.2 * torch.sign(torch.randn_like(flat[:, domain.movable:]))
        assert torch.equal(model(jitter.clamp(0, 1)), full)
        clean = ctx.model.module(ctx.data.features[setup.rows])
        assert torch.allclose(full[:, 1] - full[:, 0], clean[:, 1] - clean[:, 0], atol=1e-5)


def _check_tabular_example(setup, ctx, row: int, example: torch.Tensor, eps: float, norm: str) -> None:
    """Every rule, written out from the spec and the data rather than read from the domain."""
    clean = ctx.data.features[setup.rows[row]].double()
    example = example.double()
    names = [c.name for c in ctx.data.columns]
    fixed = [i for i, n in enumerate(names) if n.startswith("colour=") or n == "age"]
    assert torch.equal(example[fixed], clean[fixed]), "one-hot block or age moved"
    data = ctx.data.features.double()
    sd = data.std(dim=0, unbiased=False)
    movable = [names.index(n) for n in ("x1", "x2", "x3")]
    low, high = data.min(dim=0).values, data.max(dim=0).values
    for j in movable:
        assert low[j] - 1e-5 <= example[j] <= high[j] + 1e-5, names[j]
    x1_bounds = setup.domain.rules.low[0], setup.domain.rules.high[0]  # spec bounds [-2, 3] in data units
    assert x1_bounds == pytest.approx(((-2 - 1) / 2, (3 - 1) / 2))
    assert min(x1_bounds[0], clean[0]) - 1e-5 <= example[0] <= max(x1_bounds[1], clean[0]) + 1e-5
    assert float(example[2]) == round(float(example[2])), "x3 is an integer feature"
    move = (example[movable] - clean[movable]) / sd[movable]
    size = move.abs().max() if norm == "Linf" else move.norm()
    assert float(size) <= eps * (1 + 1e-5) + 1e-6


@pytest.mark.parametrize("norm, names", [("Linf", ["FGSM", "PGD", "APGD", "Square", "DeepFool"]), ("L2", ["PGDL2", "FAB", "CW"])])
def test_every_adversarial_example_respects_the_domain_and_fools_the_network(tmp_path, norm, names):
    check = {"attacks": names, "norm": norm, "rows": 60, "immutable": ["x2"], "bounds": {"x1": [-2, 3]}}
    ctx, setup = _setup(tabular_spec(tmp_path, robustness_check=check))
    assert setup.domain.rounds  # x3 is an integer feature
    with attack_session(ctx.model, row_size=int(ctx.data.features[0].numel())):
        for name in names:
            outcome = sweep.run(attacks.get(name), setup.target, setup.epsilons, setup.plan, keep=None)
            broken = np.flatnonzero(np.isfinite(outcome.distance))
            assert set(outcome.examples) == set(broken.tolist())
            for row, example in outcome.examples.items():
                level = outcome.broken_at[row]  # a minimal attack may find an example past the largest epsilon
                eps = setup.epsilons[level] if level < len(setup.epsilons) else setup.domain.large_epsilon()
                _check_tabular_example(setup, ctx, row, example, eps, norm)
                assert example[1] == ctx.data.features[setup.rows[row], 1], "x2 is immutable in the spec"
                with torch.no_grad():
                    logits = ctx.model.module(example[None])
                assert int(logits.argmax()) != int(setup.target.labels[row]), name


def test_attacks_change_the_predictions_of_a_non_robust_model(tmp_path):
    ctx, setup = _setup(image_spec(tmp_path, n=80))
    with attack_session(ctx.model, row_size=int(ctx.data.features[0].numel())):
        for name in ("FGSM", "PGD", "Square"):
            outcome = sweep.run(attacks.get(name), setup.target, setup.epsilons, setup.plan, keep=None)
            assert outcome.robust(len(setup.epsilons) - 1).mean() < 0.5, name
            for row, example in outcome.examples.items():
                eps = setup.epsilons[outcome.broken_at[row]]
                assert 0 <= float(example.min()) and float(example.max()) <= 1
                clean = ctx.data.features[setup.rows[row]]
                assert float((example - clean).abs().max()) <= eps * (1 + 1e-6)
                with torch.no_grad():
                    assert int(ctx.model.module(example[None]).argmax()) != int(setup.target.labels[row])


def test_state_counts_give_robust_accuracy_and_success_rate_by_hand():
    # 6 points, 3 epsilons: already wrong, broken at 0, 1, 2, and two never broken
    broken_at = np.array([-1, 0, 1, 2, 3, 3])
    counts = summary.state_counts(broken_at, 3)
    assert counts.tolist() == [1, 1, 1, 1, 2]
    assert summary.robust_accuracy(counts).tolist() == pytest.approx([4 / 6, 3 / 6, 2 / 6])
    assert summary.success_rate(counts).tolist() == pytest.approx([1 / 5, 2 / 5, 3 / 5])


def test_group_curves_by_hand_with_stratified_replicates():
    from audit.groups import code_cells, groupings
    import pandas as pd

    broken_at = np.array([-1, 0, 2, 2, 1, 2, 2, 2])
    cells = code_cells(pd.DataFrame({"g": ["a", "a", "a", "a", "b", "b", "b", "b"]}))
    grouping = groupings(cells, [])[0]
    found = summary.group_curves(broken_at, 2, cells, grouping, 200, np.random.default_rng(0))
    # a: wrong, broken at 0, two never broken; b: broken at 1, three never broken
    assert found["robust_accuracy"].ravel().tolist() == pytest.approx([2 / 4, 2 / 4, 4 / 4, 3 / 4])
    assert found["size"].tolist() == [4, 4]
    boot = found["boot:robust_accuracy"]
    assert boot.shape == (200, 2, 2)
    assert np.all(boot[:, 1, 0] == 1.0)  # group b is never broken at epsilon 0, whatever the resample
    assert np.all((boot * 4) == np.round(boot * 4))  # each replicate keeps 4 points per group


def test_median_is_numpys_median_and_infinite_when_most_points_hold():
    rng = np.random.default_rng(1)
    for size in (1, 2, 7, 10):
        values = rng.choice([0.1, 0.2, 0.5, np.inf], size=size)
        distinct, counts = np.unique(values, return_counts=True)
        assert summary.median(distinct, counts) == np.median(values)
    point, boot = summary.median_perturbation(np.array([np.nan, 0.1, 0.2, np.inf]), 100, rng)
    assert point == 0.2 and boot.shape == (100,)
    assert summary.median_perturbation(np.array([np.nan, np.inf, np.inf, 0.3]), 0, rng)[0] == np.inf
