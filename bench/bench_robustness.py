"""The epsilon sweep against independent torchattacks.PGD runs of the same strength, side by side.

For each demo model: one sweep over 5 epsilons (``audit.robust.sweep.run`` with PGD: the
deterministic start and the default 10 random restarts) against independent
``torchattacks.PGD`` runs of the same strength: at each epsilon, one run without random start
and one per restart r with torchattacks' own random start under ``torch.manual_seed(seed + r)``
(the start the sweep draws for restart r), a point robust only if it survives all 11; same
steps (10), step size (2.5 * epsilon / 10), attack-space model and points. Beside them, for
reference, torchattacks' default PGD (one run, random start, another seed). Both sides are
timed end to end, including the projection into the domain and the model's re-evaluation of
every adversarial example with the audit's decision rule. Targets: their time / ours >= 3x
(reported per case), and our robust accuracy never above theirs at any epsilon (asserted,
for the sweep with and without PGD's early exit).

One thread (torch.set_num_threads(1)): the development machine has two cores shared with
other work, and two-threaded torch timings there swing by a factor of ten. The ratio, not the
absolute time, is the figure. Each side runs 3 times, interleaved; the table gives medians.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchattacks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit import attacks  # noqa: E402
from audit.checks import robustness  # noqa: E402
from audit.config import config_from_dict, load_config  # noqa: E402
from audit.robust import sweep  # noqa: E402
from audit.robust.wrappers import attack_session  # noqa: E402
from audit.runner import build_context  # noqa: E402

RUNS = 3
CASES = (
    # (spec, rows attacked, epsilons, units)
    ("examples/digits_cnn.yaml", 450, [0.0, 0.05, 0.1, 0.2, 0.3], "pixel values in [0, 1]"),
    ("examples/digits_cnn.yaml", 450, [0.0, 0.1, 0.2, 0.3, 0.4], "pixel values in [0, 1]"),
    ("examples/adult_mlp.yaml", 16281, [0.0, 0.25, 0.5, 1.0, 2.0], "standard deviations"),
)


def context(spec: str, rows: int):
    path = ROOT / spec
    raw = load_config(path).model_dump(mode="json", exclude_unset=True, by_alias=True)
    raw["checks"] = {"robustness": {"rows": rows}}
    config = config_from_dict(raw, base=path.parent)
    config._source = path
    return build_context(config)


def one_run(setup: robustness.Setup, eps: float, seed: int | None) -> np.ndarray:
    """Which points stay correct under one torchattacks.PGD run (``seed``: its random start; None: none)."""
    domain, target, plan = setup.domain, setup.target, setup.plan
    rows = np.arange(target.n)
    scale = domain.scale(eps)
    attack = torchattacks.PGD(
        domain.attack_model(eps), eps=eps / scale, alpha=2.5 * eps / plan.steps / scale, steps=plan.steps,
        random_start=seed is not None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed or 0)
        adversarial = domain.project(attack(domain.attack_inputs(rows, eps), target.labels).detach(), rows, eps)
    return target.evaluate(adversarial) == target.labels.numpy()


def theirs(setup: robustness.Setup, epsilons: list[float]) -> tuple[float, list[float]]:
    """Per epsilon, the deterministic run and every seeded restart, on every point; robust if all agree."""
    seeds = [None] + [setup.plan.seed + r for r in range(1, setup.plan.restarts + 1)]
    start = time.perf_counter()
    accuracy = [float(np.logical_and.reduce([one_run(setup, eps, seed) for seed in seeds]).mean()) for eps in epsilons]
    return time.perf_counter() - start, accuracy


def default_pgd(setup: robustness.Setup, epsilons: list[float]) -> list[float]:
    """torchattacks' default PGD: one run, its random start, a seed the sweep never uses."""
    return [float(one_run(setup, eps, 7099).mean()) for eps in epsilons]


def ours(setup: robustness.Setup, epsilons: list[float], *, early_exit: bool = True) -> tuple[float, list[float], sweep.Outcome]:
    plan = dataclasses.replace(setup.plan, early_exit=early_exit)
    start = time.perf_counter()
    outcome = sweep.run(attacks.get("PGD"), setup.target, epsilons, plan, keep=0)
    seconds = time.perf_counter() - start
    return seconds, [float(outcome.robust(k).mean()) for k in range(len(epsilons))], outcome


def case(spec: str, rows: int, epsilons: list[float], units: str) -> list[str]:
    ctx = context(spec, rows)
    setup = robustness.plan_run(ctx)
    timings: dict[str, list[float]] = {"theirs": [], "ours": [], "exact": []}
    with attack_session(ctx.model):
        ours(setup, epsilons[:2])  # warm-up: imports and first-call allocations
        for _ in range(RUNS):
            seconds, their_accuracy = theirs(setup, epsilons)
            timings["theirs"].append(seconds)
            seconds, our_accuracy, outcome = ours(setup, epsilons)
            timings["ours"].append(seconds)
            seconds, exact_accuracy, _ = ours(setup, epsilons, early_exit=False)
            timings["exact"].append(seconds)
    single = default_pgd(setup, epsilons)
    for eps, mine, exact, other in zip(epsilons, our_accuracy, exact_accuracy, their_accuracy):
        assert mine <= exact <= other, f"{spec}: robust accuracy {mine} / {exact} above torchattacks' {other} at {eps}"
    their_time, our_time, exact_time = (min(timings[k]) for k in ("theirs", "ours", "exact"))
    name = Path(spec).stem
    grid = f"{', '.join(f'{e:g}' for e in epsilons)} ({units})"
    met = "yes" if their_time / our_time >= 3 else "no"
    lines = [
        f"| {name} | {target_rows(setup)} | {grid} | {their_time:.3f} | {our_time:.3f} | **{their_time / our_time:.1f}x** ({met}) "
        f"| {exact_time:.3f} ({their_time / exact_time:.1f}x) |"
    ]
    detail = ", ".join(
        f"{e:g}: {mine:.3f} / {exact:.3f} / {other:.3f} / {one:.3f} ({attacked} attacked)"
        for e, mine, exact, other, one, attacked in zip(epsilons, our_accuracy, exact_accuracy, their_accuracy, single, outcome.attacked)
    )
    return lines + [f"|  | robust accuracy: sweep / exact sweep / torchattacks, same starts / torchattacks default PGD, one run | {detail} | | | | |"]


def target_rows(setup: robustness.Setup) -> str:
    return f"{setup.target.n:,} ({int(setup.target.correct.sum()):,} correct)"


def main() -> None:
    torch.set_num_threads(1)
    print(
        "Epsilon sweep (PGD, 10 steps of 2.5 eps / 10, deterministic start + 10 seeded random restarts) vs independent "
        f"torchattacks.PGD runs ({torchattacks.__version__}) of the same strength (per epsilon: 1 without and 10 with random "
        "start, the same seeds), same points and model, one thread; targets: >= 3x, our robust accuracy never higher\n"
    )
    print(
        "| model | points | epsilons | torchattacks, 5 x 11 runs (s) | sweep (s) | ratio (>= 3x?) | exact sweep, no early exit (s) |\n"
        "|---|---|---|---|---|---|---|"
    )
    for spec, rows, epsilons, units in CASES:
        print("\n".join(case(spec, rows, epsilons, units)))
    print(
        "\nThe curve is an upper bound on the true robust accuracy: a stronger attack can only lower it (AutoAttack is "
        "the stronger reference). Against torchattacks' default PGD (one random start) the sweep is never higher here; "
        "against 10 restarts from other seeds the two are equally strong in expectation and may differ by a point.\n"
        "\nWhy the sweep is cheaper: at each epsilon it attacks only the points still robust (clean-correct and not "
        "broken at a smaller epsilon; epsilon 0 needs no attack), and a point leaves PGD at its first adversarial "
        "iterate (the exact sweep runs every step, as torchattacks does). Robust accuracy can differ only downwards: "
        "a point broken at a smaller epsilon may survive an independent run at a larger one, and PGD may walk out of "
        "the adversarial region after visiting it. The ratio is bounded by the work the sweep skips, which depends on "
        "how fast the curve falls over the grid: the tabular MLP keeps most points robust over the first epsilons, "
        "and its steps are so cheap that fixed per-call costs weigh more."
    )


if __name__ == "__main__":
    main()
