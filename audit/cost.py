"""How long the explanations and robustness checks will take, estimated from the spec.

Counted in model evaluations of one row (a gradient counts as three: forward, backward and
the bookkeeping), from the settings that set them (rows x methods x samples, rows x attacks x
epsilons x steps), and turned into seconds with the time the audit's own prediction pass took
per row. An estimate to warn before a long run, not a promise: batching, caching and early
exits make real runs faster, tiny models make the per-row time noisy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.config import AuditConfig

WARN_SECONDS = 60.0
"""Warn when one check is estimated to take longer than this."""
FLOOR_SECONDS = 5e-6
"""Least time one row evaluation costs: building the inputs in Python and numpy (KernelSHAP's
coalition table: about 1 s for 207,000 rows of 91 columns, measured on the 2-core machine)
outweighs a small model's own time (0.4 microseconds a row for the Adult MLP)."""
GRADIENT = 3  # one backward pass costs about two forward passes
BACKGROUND = 100  # background rows of the SHAP methods and exact Shapley (audit.explain.plan)
ATTACK_STEPS = {"FGSM": lambda steps: 1, "Square": lambda steps: 1000, "CW": lambda steps: steps * 10,
                "AutoAttack": lambda steps: 4 * steps + 1000}


@dataclass(frozen=True)
class Cost:
    check: str
    evaluations: float  # model evaluations of one row
    detail: str  # what makes it up, in the spec's words
    setting: str  # the spec setting that would cut it most


def method_evaluations(name: str, *, columns: int, steps: int) -> float:
    """Row evaluations to explain one row with ``name`` (``columns``: source columns)."""
    per_row = {
        "IntegratedGradients": GRADIENT * steps, "GradientShap": GRADIENT * 20, "GradientExplainer": GRADIENT * 200,
        "DeepLift": GRADIENT * 2, "DeepExplainer": GRADIENT * BACKGROUND, "Saliency": GRADIENT, "InputXGradient": GRADIENT,
        "FeatureAblation": columns + 1, "Occlusion": 64,
        "KernelExplainer": (2 * columns + 2048) * BACKGROUND, "PermutationExplainer": max(500, 2 * columns + 1) * BACKGROUND,
        # exact.py evaluates only the coalitions where a row differs from a background row
        "ExactShapley": 2 ** min(columns, 12) * 10, "LIME": 1000,
    }
    return float(per_row.get(name, GRADIENT * steps))


def explanations(config: "AuditConfig", *, rows: int, columns: int, methods: list[str]) -> Cost:
    section = config.checks.explanations
    parts, total = [], 0.0
    for name in methods:
        explained = min(rows, section.rows)
        if name in {"KernelExplainer", "PermutationExplainer", "ExactShapley", "LIME"}:
            explained = min(explained, section.costly_rows)
        each = method_evaluations(name, columns=columns, steps=section.steps)
        total += explained * each
        parts.append((explained * each, f"{name}: {explained} rows x ~{each:,.0f} evaluations"))
    parts.sort(reverse=True)
    costly = parts and any(m in parts[0][1] for m in ("KernelExplainer", "PermutationExplainer", "ExactShapley", "LIME"))
    setting = ("checks.explanations.costly_rows, or a cheaper method in checks.explanations.methods" if costly
               else "checks.explanations.rows (or .steps)")
    return Cost("explanations", total, "; ".join(text for _, text in parts), setting)


def robustness(config: "AuditConfig", *, rows: int, attacks: list[str], epsilons: int) -> Cost:
    section = config.checks.robustness
    attacked = min(rows, section.rows)
    parts, total = [], 0.0
    for name in attacks:
        steps = ATTACK_STEPS.get(name, lambda s: s)(section.steps)
        each = GRADIENT * steps * (1 if name in {"CW", "DeepFool", "FAB"} else epsilons)
        total += attacked * each
        parts.append((attacked * each, f"{name}: {attacked} rows x {epsilons} epsilons x ~{steps} steps"))
    parts.sort(reverse=True)
    return Cost("robustness", total, "; ".join(text for _, text in parts),
                "checks.robustness.rows, .epsilons or .attacks")


def warnings(costs: list[Cost], *, seconds_per_row: float) -> list[str]:
    """One line per check estimated to run longer than :data:`WARN_SECONDS`."""
    lines = []
    for cost in costs:
        seconds = cost.evaluations * max(seconds_per_row, FLOOR_SECONDS)
        if seconds > WARN_SECONDS:
            lines.append(f"{cost.check} may take about {_minutes(seconds)} ({cost.detail}); "
                         f"to cut it, lower {cost.setting}")
    return lines


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
