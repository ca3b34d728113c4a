"""The robustness check: how much an adversary must change an input to change the decision.

For each attack, on a seeded sample of ``rows`` points: robust accuracy (the share of points
still classified correctly under attack) and attack success rate (the share of correctly
classified points the attack breaks) at each epsilon, with bootstrap intervals; the median
perturbation the attack needed; the same per sensitive group, with the gap between groups; a
check at an epsilon reaching every allowed input; and flags for gradient masking
(:mod:`audit.robust.sanity`). A few adversarial examples are kept for the report.

Defaults, chosen to keep the demo fast and the curve readable:

- attacks: FGSM and PGD (Linf), PGDL2 for ``norm: L2``, Square for a black-box model;
- epsilons: images, in input units, ``(0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)`` times the width
  of ``value_range``; tabular data, in standard deviations, ``(0, 0.05, 0.1, 0.2, 0.5, 1)``;
  for L2 both are multiplied by the square root of the number of movable inputs (the L2 size
  of an Linf perturbation that uses the whole budget in every coordinate). Epsilon 0, the
  clean accuracy on the attacked rows, is always included;
- 10 steps of 2.5 * epsilon / 10; PGD from the clean input and from ``restarts`` random
  starts (a point is robust only if it survives all of them); 500 rows.

Per group: each sensitive column on its own (crossed groups of 500 rows are mostly too small
to say anything), robust accuracy with intervals stratified by group, and the median
perturbation per group: the group with the smaller median has decisions that flip under
smaller changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from audit import attacks, groups, sampling, stats
from audit.checks import metric_names
from audit.context import AuditContext
from audit.errors import ConfigError
from audit.models import predictions_from_outputs
from audit.results import Measurement, Reason, small_group
from audit.robust import chunked, sanity, summary, sweep
from audit.robust.domain import build_domain, column_rules
from audit.robust.wrappers import attack_session, decision_logits
from audit.scale.executor import executor_for

CHECK = "robustness"
CATALOGUE = metric_names.ROBUSTNESS_CATALOGUE
METRICS = metric_names.ROBUSTNESS
DEFAULT_ATTACKS = {"Linf": ("FGSM", "PGD"), "L2": ("PGDL2",)}
LARGE_EPSILON_ATTACK = {"Linf": "PGD", "L2": "PGDL2"}
HEADLINE_ATTACKS = ("PGD", "PGDL2", "AutoAttack", "APGD")  # the examples come from the first that ran
ATTACK_BATCH_BYTES = 16 * 2**20
MAX_GROUPS = 50  # per sensitive column; more groups in a few hundred rows say nothing about each
THUMBNAIL = 32  # largest side of an example image kept for the report, in pixels


# ---------------------------------------------------------------- input rules


def attack_names(config, *, black_box: bool) -> list[str]:
    """The spec's attacks; by default FGSM + PGD (Linf), PGDL2 (L2), or Square for a black box."""
    check = config.checks.robustness
    if "attacks" in check.model_fields_set:
        return list(check.attacks)
    return [attacks.BLACK_BOX] if black_box else list(DEFAULT_ATTACKS[check.norm])


def validate(config) -> None:
    """Attack names, their norms and tabular-only settings, before anything is loaded."""
    check = config.checks.robustness
    names = attack_names(config, black_box=False)
    for index, name in enumerate(names):
        attack = attacks.get(name)
        if name in names[:index]:
            raise ConfigError(f"checks.robustness.attacks: {name!r} is listed twice", hint="list each attack once")
        if check.norm not in attack.norms:
            fitting = [a for a in attacks.names() if check.norm in attacks.get(a).norms]
            raise ConfigError(
                f"checks.robustness.attacks: {name} is an {'/'.join(attack.norms)} attack, but checks.robustness.norm "
                f"is {check.norm}; attacks for {check.norm}: {', '.join(fitting)}",
                hint=f"choose attacks for {check.norm}, or change the norm",
            )
    if config.data.kind == "image" and (check.immutable or check.bounds):
        raise ConfigError(
            "checks.robustness.immutable and bounds are for tabular data",
            hint="remove them: every pixel may move within data.value_range",
        )


def prepare(ctx: AuditContext) -> None:
    """Refuse gradient attacks on a black box, and unknown feature names, before any check runs."""
    if ctx.model is None:
        return
    attacks.require_torchattacks()
    for name in attack_names(ctx.config, black_box=not ctx.model.differentiable):
        if attacks.get(name).gradients:
            ctx.model.require_gradients(
                f"the {name} attack", alternatives="the black-box attack Square (checks.robustness.attacks: [Square])"
            )
    if ctx.config.data.kind == "tabular":
        column_rules(ctx.config, ctx.data)


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Setup:
    """What a robustness run attacks and how: public for the benchmark and the tests."""

    rows: np.ndarray  # positions in the evaluation data, in row-id order
    domain: object
    target: sweep.Target
    plan: sweep.Plan
    epsilons: list[float]
    names: list[str]
    level: float
    replicates: int
    min_group_size: int


def run(ctx: AuditContext) -> list[Measurement]:
    if ctx.model is None:
        ctx.skip(CHECK, Reason.NO_MODEL, "robustness: a predictions-only audit has no model to attack; the check was skipped")
        return []
    setup = plan_run(ctx)
    if setup.domain.movable == 0:
        ctx.warn("robustness: every input feature is held fixed (immutable, sensitive or categorical), so no attack can change anything")
    keep = ctx.config.checks.robustness.examples
    row_size = int(ctx.data.features[0].numel())
    with attack_session(ctx.model, row_size=row_size), executor_for(ctx.config, ctx.model) as executor:
        outcomes = [attack_in_chunks(executor, ctx, setup, name, setup.epsilons, setup.plan, keep) for name in setup.names]
        large = _large_epsilon_run(ctx, setup, executor)
        examples = _examples(ctx, outcomes, setup)
    rng = np.random.default_rng([ctx.seed, 6])
    cells, groupings = _groupings(ctx, setup)
    out: list[Measurement] = []
    for outcome in outcomes:
        out += _curve(outcome, setup, rng) + _by_group(outcome, setup, cells, groupings, rng)
    return out + _large_epsilon(large, setup, rng) + _flags(ctx, outcomes, large, setup) + examples


def attack_in_chunks(executor, ctx: AuditContext, setup: Setup, name: str, epsilons: list[float], plan: sweep.Plan,
                     keep: int | None) -> sweep.Outcome:
    """One attack's sweep, chunk by chunk of the attacked rows through ``executor``, joined in row order."""
    size = ctx.config.engine.chunk_rows
    found = executor.map(chunked.tasks(
        name, setup.target, epsilons, plan, keep=keep, row_ids=sampling.ids_of(ctx.data)[setup.rows], seed=ctx.seed,
        size=size, classes=ctx.data.classes, positive_index=ctx.data.positive_index, model_spec=ctx.config.model,
    ))
    return chunked.joined(found, size, keep)


def plan_run(ctx: AuditContext) -> Setup:
    """Sample the rows, build the domain and the target, and settle the epsilons and attacks."""
    check, data, spec = ctx.config.checks.robustness, ctx.data, ctx.config.model
    # the rows with the smallest seeded hashes of their row ids, in row-id order: the same rows in a sharded run
    rows = sampling.sorted_sample(sampling.ids_of(data), ctx.seed, "robustness", check.rows)
    logits = decision_logits(
        ctx.model, positive_index=data.positive_index, output=spec.output, threshold=spec.threshold, batch_size=spec.batch_size
    )
    domain = build_domain(ctx.config, data, rows, logits=logits, device=ctx.model.device)

    def evaluate(inputs: torch.Tensor) -> np.ndarray:
        return predictions_from_outputs(ctx.model.outputs(inputs, batch_size=spec.batch_size), data, spec).decisions

    correct = ctx.predictions.decisions[rows] == data.labels[rows]
    target = sweep.Target(domain, torch.from_numpy(data.labels[rows]), correct, evaluate)
    plan = sweep.Plan(
        check.norm, check.steps, check.step_size, ctx.seed, len(data.classes), _attack_batch(data, spec.batch_size),
        restarts=check.restarts,
    )
    epsilons = sorted({0.0, *check.epsilons}) if check.epsilons is not None else domain.default_epsilons()
    return Setup(
        rows, domain, target, plan, epsilons, attack_names(ctx.config, black_box=not ctx.model.differentiable),
        ctx.config.statistics.ci_level, ctx.config.statistics.bootstrap, ctx.config.checks.fairness.min_group_size,
    )


def _attack_batch(data, batch_size: int) -> int:
    """Rows per attack call: the model's batch size, or more when rows are small (16 MiB of input).

    Fewer, larger calls matter for small models, whose cost per call is mostly overhead.
    """
    per_row = max(1, int(data.features[0].numel()))
    return max(batch_size, ATTACK_BATCH_BYTES // (4 * per_row))


def _params(outcome: sweep.Outcome, setup: Setup, **more) -> dict:
    return {"attack": outcome.attack, **more, "norm": outcome.norm, "units": setup.domain.units}


def _ci(replicates: np.ndarray, level: float) -> tuple[float, float] | None:
    if replicates.size == 0:
        return None
    low, high = stats.percentile_interval(replicates, level)
    return None if np.isnan(low) else (low, high)


def _rate_ci(replicates: np.ndarray, value: float, n: int, setup: Setup) -> tuple[float, float] | None:
    """A share's interval: the bootstrap one, or the exact binomial one where that is a point or n is small.

    A group of 12 points all broken at an epsilon resamples to 0 every time; its interval must
    still say that the true robust accuracy may be above 0 (:func:`audit.stats.rate_interval`).
    """
    ci, _ = stats.rate_interval(_ci(replicates, setup.level), round(value * n), n, setup.level, min_trials=setup.min_group_size)
    return ci


def _curve(outcome: sweep.Outcome, setup: Setup, rng: np.random.Generator) -> list[Measurement]:
    """Overall robust accuracy and success rate at each epsilon, and the median perturbation."""
    found = summary.curve(outcome.broken_at, len(outcome.epsilons), setup.replicates, rng)
    correct = int(setup.target.correct.sum())
    out = []
    for k, eps in enumerate(outcome.epsilons):
        params = _params(outcome, setup, eps=eps)
        for metric, n in (("robust_accuracy", setup.target.n), ("attack_success_rate", correct)):
            value = float(found[metric][k])
            boot = found.get(f"boot:{metric}", np.zeros((0, len(outcome.epsilons))))[:, k]
            if np.isnan(value):
                why = "undefined: no correctly classified points"
                out.append(Measurement(CHECK, metric, None, n=n, params=params, note=why, status="undefined",
                                       reason=Reason.NOTHING_TO_ATTACK))
            else:
                # nothing is attacked at epsilon 0, so its success rate is 0 for certain
                ci = _ci(boot, setup.level) if eps == 0 and metric == "attack_success_rate" else _rate_ci(boot, value, n, setup)
                out.append(Measurement(CHECK, metric, value, ci=ci, n=n, params=params, note=outcome.note))
    point, boot = summary.median_perturbation(outcome.distance, setup.replicates, rng)
    out.append(_median(outcome, setup, point, boot, None, correct))
    return out


def _median(outcome: sweep.Outcome, setup: Setup, point: float, boot: np.ndarray, group, n: int, status: str | None = None) -> Measurement:
    params = _params(outcome, setup)
    if np.isnan(point):
        why = "undefined: no correctly classified points"
        return Measurement(CHECK, "median_minimal_perturbation", None, group=group, n=n, params=params, note=why,
                           status="undefined", reason=Reason.NOTHING_TO_ATTACK)
    if np.isinf(point):
        note = f"more than half of the points withstand every epsilon tried (up to {outcome.epsilons[-1]:g})"
        if outcome.attack in ("CW", "DeepFool"):
            note = f"{outcome.attack} found no adversarial example for more than half of the points"
        why = f"undefined: {note}"
        return Measurement(CHECK, "median_minimal_perturbation", None, group=group, n=n, params=params, note=why,
                           status="undefined", reason=Reason.NOT_BROKEN)
    note = "the smallest adversarial perturbation the attack found per point, an upper bound on the true minimum"
    if status == "insufficient":
        note = f"insufficient: {n} points, fewer than {setup.min_group_size}"
    ci = _median_ci(boot, setup.level)
    if ci is None and boot.size:
        note += "; no interval: in many resamples more than half the points withstand every epsilon"
    return Measurement(CHECK, "median_minimal_perturbation", point, group=group, ci=ci, n=n, params=params, note=note,
                       status=status, reason=small_group(status))


def _median_ci(replicates: np.ndarray, level: float) -> tuple[float, float] | None:
    """Percentile interval of median replicates, some of which may be infinite (never broken)."""
    values = replicates[~np.isnan(replicates)]
    if values.size == 0:
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")  # no interpolation with inf
    return (float(low), float(high)) if np.isfinite(high) else None


def _groupings(ctx: AuditContext, setup: Setup) -> tuple[groups.Cells | None, list[groups.Grouping]]:
    """Each sensitive column on its own, over the attacked rows; columns with too many groups left out."""
    if ctx.data.sensitive.empty:
        return None, []
    cells = groups.code_cells(ctx.data.sensitive.iloc[setup.rows].reset_index(drop=True))
    kept = []
    for grouping in groups.groupings(cells, []):
        if grouping.size > MAX_GROUPS:
            ctx.warn(
                f"robustness: '{grouping.name}' has {grouping.size} groups among the {setup.target.n} attacked rows, "
                f"more than {MAX_GROUPS}: no per-group robustness for it (bin it to compare groups)"
            )
            continue
        kept.append(grouping)
    return cells, kept


def _by_group(outcome: sweep.Outcome, setup: Setup, cells, groupings, rng: np.random.Generator) -> list[Measurement]:
    """Per sensitive column: robust accuracy per group and epsilon, median perturbation, and the gap."""
    out = []
    for grouping in groupings:
        found = summary.group_curves(outcome.broken_at, len(outcome.epsilons), cells, grouping, setup.replicates, rng)
        out += _group_curve(outcome, setup, grouping, found)
        out += _group_medians(outcome, setup, cells, grouping, found["size"], rng)
    return out


def _group_curve(outcome, setup: Setup, grouping, found) -> list[Measurement]:
    out = []
    for g, label in enumerate(grouping.labels):
        size = int(found["size"][g])
        small = size < setup.min_group_size
        note = f"insufficient: {size} points, fewer than {setup.min_group_size}" if small else None
        for k, eps in enumerate(outcome.epsilons):
            boot = found.get("boot:robust_accuracy", np.zeros((0, grouping.size, len(outcome.epsilons))))[:, g, k]
            out.append(Measurement(
                CHECK, "robust_accuracy", float(found["robust_accuracy"][g, k]), group=label,
                ci=_rate_ci(boot, float(found["robust_accuracy"][g, k]), size, setup),
                n=size, params=_params(outcome, setup, eps=eps), note=note, status="insufficient" if small else None,
                reason=Reason.SMALL_GROUP if small else None,
            ))
    return out


def _group_medians(outcome, setup: Setup, cells, grouping, sizes, rng) -> list[Measurement]:
    membership = grouping.cell_to_group[cells.codes]
    points, boots, out = [], [], []
    for g, label in enumerate(grouping.labels):
        distance = outcome.distance[membership == g]
        point, boot = summary.median_perturbation(distance, setup.replicates, rng)
        correct = int((~np.isnan(distance)).sum())
        status = "insufficient" if sizes[g] < setup.min_group_size else None
        out.append(_median(outcome, setup, point, boot, label, correct, status))
        points.append(point)
        boots.append(boot if boot.size else np.zeros(setup.replicates))
    value, boot, high, low = summary.gap(np.array(points), np.stack(boots, axis=1) if boots else np.zeros((0, 0)))
    return out + [_gap(outcome, setup, grouping, value, boot, high, low, sizes)]


def _gap(outcome, setup: Setup, grouping, value, boot, high, low, sizes) -> Measurement:
    params = _params(outcome, setup, sensitive=grouping.name)
    total = int(np.sum(sizes))
    if np.isnan(value):
        note = "undefined: fewer than two groups have a finite median perturbation"
        return Measurement(CHECK, "robustness_gap", None, n=total, params=params, note=note, status="undefined",
                           reason=Reason.FEW_GROUPS)
    label = lambda g: ", ".join(f"{c}={v}" for c, v in grouping.labels[g].items())  # noqa: E731
    params |= {"most_fragile_group": label(low), "least_fragile_group": label(high)}
    weak = [label(g) for g in (low, high) if sizes[g] < setup.min_group_size]
    note = "largest minus smallest median perturbation between groups"
    if weak:
        note = f"insufficient: rests on small group(s) {'; '.join(weak)}"
    return Measurement(CHECK, "robustness_gap", value, ci=_ci(boot, setup.level) if setup.replicates else None, n=total,
                       params=params, note=note, status="insufficient" if weak else None,
                       reason=Reason.SMALL_GROUP if weak else None)


# ---------------------------------------------------------------- large epsilon and flags


def _large_epsilon_run(ctx: AuditContext, setup: Setup, executor) -> sweep.Outcome:
    name = LARGE_EPSILON_ATTACK[setup.plan.norm] if ctx.model.differentiable else attacks.BLACK_BOX
    # the deterministic start alone: this run tests the gradients, and random starts over a ball
    # that covers every input would break points whatever the gradients say
    plan = dataclasses.replace(setup.plan, restarts=0)
    return attack_in_chunks(executor, ctx, setup, name, [setup.domain.large_epsilon()], plan, 0)


def _large_epsilon(large: sweep.Outcome, setup: Setup, rng) -> list[Measurement]:
    found = summary.curve(large.broken_at, 1, setup.replicates, rng)
    boot = found.get("boot:robust_accuracy", np.zeros((0, 1)))[:, 0]
    note = "accuracy under an attack whose epsilon reaches every allowed input; near 0 unless gradients are masked"
    return [Measurement(
        CHECK, "large_epsilon_accuracy", float(found["robust_accuracy"][0]), n=setup.target.n,
        ci=_rate_ci(boot, float(found["robust_accuracy"][0]), setup.target.n, setup),
        params=_params(large, setup, eps=large.epsilons[0]), note=note,
    )]


def _flags(ctx: AuditContext, outcomes: list[sweep.Outcome], large: sweep.Outcome, setup: Setup) -> list[Measurement]:
    clean = float(setup.target.correct.mean()) if setup.target.n else 0.0
    curves = {o.attack: np.array([o.robust(k).mean() for k in range(len(o.epsilons))]) for o in outcomes}
    eps = tuple(setup.epsilons)
    # a minimal-perturbation attack runs once, not per epsilon: a flat curve there says the attack gave up
    found = [sanity.not_falling(name, eps, curve, clean) for name, curve in curves.items() if not attacks.get(name).minimal]
    gradient = [name for name in curves if name in sanity.GRADIENT_BUDGET_ATTACKS and name != "FGSM"]
    if attacks.BLACK_BOX in curves and gradient:
        best = min(gradient, key=lambda name: curves[name].sum())
        found.append(sanity.stronger("black_box_stronger", attacks.BLACK_BOX, best, eps, curves[attacks.BLACK_BOX], curves[best]))
    if "FGSM" in curves and "PGD" in curves:
        found.append(sanity.stronger("single_step_stronger", "FGSM", "PGD", eps, curves["FGSM"], curves["PGD"]))
    accuracy = float(large.robust(0).mean()) if setup.target.n else 0.0
    found.append(sanity.large_epsilon(large.attack, large.epsilons[0], accuracy, tabular=setup.domain.kind == "tabular"))
    out = []
    for flag in found:
        if flag.raised:
            ctx.warn(f"robustness: possible gradient masking: {flag.text}")
        params = {"test": flag.test, "attack": flag.attack}
        out.append(Measurement(CHECK, "gradient_masking_flag", float(flag.raised), n=setup.target.n, params=params, note=flag.text))
    return out


# ---------------------------------------------------------------- examples


def _examples(ctx: AuditContext, outcomes: list[sweep.Outcome], setup: Setup) -> list[Measurement]:
    """A few adversarial examples of the headline attack, the most fragile points first."""
    chosen = [o for name in HEADLINE_ATTACKS for o in outcomes if o.attack == name] + outcomes
    if not chosen or not chosen[0].examples:
        return []
    outcome = chosen[0]
    positions = np.array(list(outcome.examples), dtype=np.int64)
    adversarial = torch.stack([outcome.examples[p] for p in positions])
    decided = setup.target.evaluate(adversarial)
    classes = ctx.data.classes
    out = []
    for i, position in enumerate(positions):
        level = int(outcome.broken_at[position])  # past the grid: a minimal attack's example larger than every epsilon
        params = _params(
            outcome, setup, eps=outcome.epsilons[level] if level < len(outcome.epsilons) else None, row=int(sampling.ids_of(ctx.data)[setup.rows[position]]),
            true_class=classes[int(setup.target.labels[position])], adversarial_class=classes[int(decided[i])],
        )
        m = Measurement(CHECK, "adversarial_example", float(outcome.distance[position]), n=1, params=params)
        ctx.illustrate(m, _example_content(ctx, setup, int(position), adversarial[i]))
        out.append(m)
    return out


def _example_content(ctx: AuditContext, setup: Setup, position: int, adversarial: torch.Tensor) -> dict:
    domain = setup.domain
    if domain.kind == "tabular":
        return {"changes": domain.changes(adversarial, position)}
    low, high = ctx.config.data.value_range
    clean = _thumbnail(domain.clean[position])
    moved = _thumbnail(adversarial)
    difference = moved - clean
    scale = float(np.abs(difference).max())
    return {"image": {
        "shape": list(clean.shape),
        "clean": _levels(clean, low, high),
        "adversarial": _levels(moved, low, high),
        "difference": np.round(difference / (scale or 1.0) * 127).astype(int).ravel().tolist(),
        "difference_scale": scale,
    }}


def _thumbnail(image: torch.Tensor) -> np.ndarray:
    """At most 3 channels and THUMBNAIL pixels a side (average pooling), so the report stays small."""
    image = image[:3] if image.shape[0] in (3, 4) else image[:1]
    factor = -(-max(image.shape[1:]) // THUMBNAIL)
    if factor > 1:
        image = torch.nn.functional.avg_pool2d(image[None].double(), factor, ceil_mode=True)[0]
    return image.double().numpy()


def _levels(image: np.ndarray, low: float, high: float) -> list[int]:
    return np.clip(np.round((image - low) / (high - low) * 255), 0, 255).astype(int).ravel().tolist()
