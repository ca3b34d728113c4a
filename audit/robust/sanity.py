"""Flags for gradient masking: signs that the gradient attacks understate what an attacker can do.

A model can look robust because its gradients are useless (flat, noisy or shattered), not
because it is. Carlini et al. (2019, "On evaluating adversarial robustness") list symptoms;
these are the ones an audit can check cheaply:

- ``not_falling``: robust accuracy stays the same although epsilon at least doubles, after
  the attack has started to work and while many points remain. A larger ball contains the
  smaller one, so a working attack should keep finding examples.
- ``black_box_stronger``: the black-box Square attack, which never sees a gradient, breaks
  more points than the gradient attacks at the same epsilon.
- ``single_step_stronger``: one FGSM step breaks more points than iterated PGD.
- ``large_epsilon``: at an epsilon that reaches every allowed input (the whole value range,
  or every movable feature's whole range), accuracy stays far from zero.

Each flag is a measurement (1 raised, 0 not) with a sentence; the check also warns when one is
raised. A raised flag is a reason to look closer, not proof: in a constrained tabular domain
the fixed features may decide some points by themselves, so accuracy may rightly stop falling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 0.01  # robust-accuracy difference (share of points) that counts as "beating"
STILL_ROBUST = 0.1  # share of points that must remain for a flat curve to be suspicious
FAR_FROM_ZERO = 0.1  # accuracy at the large epsilon above this is flagged
GRADIENT_BUDGET_ATTACKS = ("PGD", "PGDL2", "APGD", "AutoAttack", "FAB", "FGSM")


@dataclass(frozen=True)
class Flag:
    test: str
    raised: bool
    attack: str | None
    text: str


def not_falling(attack: str, epsilons: tuple[float, ...], robust: np.ndarray, clean: float) -> Flag:
    """Raised when robust accuracy is equal at two epsilons, the larger at least twice the smaller."""
    for i, small in enumerate(epsilons):
        if small <= 0 or robust[i] >= clean or robust[i] < STILL_ROBUST:
            continue
        for j in range(i + 1, len(epsilons)):
            if epsilons[j] >= 2 * small and robust[j] >= robust[i]:
                return Flag("not_falling", True, attack, (
                    f"{attack}: robust accuracy stays at {robust[i]:.1%} from epsilon {small:g} to {epsilons[j]:g}; "
                    "a working attack keeps finding examples as epsilon doubles, so the gradients may be masked "
                    "(or, for tabular data, the remaining points may be decided by features held fixed)"
                ))
    positive = [e for e in epsilons if e > 0]
    if positive and max(positive) >= 4 * min(positive) and clean >= STILL_ROBUST and (np.asarray(robust) >= clean).all():
        return Flag("not_falling", True, attack, (
            f"{attack}: robust accuracy stays at the clean accuracy, {clean:.1%}, at every epsilon up to {max(positive):g}; "
            "an attack that breaks nothing even at the largest epsilon may be facing masked gradients"
        ))
    return Flag("not_falling", False, attack, f"{attack}: robust accuracy falls as epsilon grows")


def stronger(test: str, strong: str, weak: str, epsilons: tuple[float, ...], strong_robust: np.ndarray, weak_robust: np.ndarray) -> Flag:
    """Raised when ``strong`` (which should be weaker) leaves fewer points robust than ``weak``."""
    why = {
        "black_box_stronger": "a black-box attack should not beat gradient attacks; their gradients may be masked",
        "single_step_stronger": "one gradient step should not beat many; the iterated attack may be stuck on masked gradients",
    }[test]
    lead = np.asarray(weak_robust) - np.asarray(strong_robust)
    worst = int(np.argmax(lead))
    if lead[worst] > MARGIN:
        return Flag(test, True, strong, (
            f"{strong} leaves {strong_robust[worst]:.1%} of points robust at epsilon {epsilons[worst]:g}, "
            f"fewer than {weak}'s {weak_robust[worst]:.1%}: {why}"
        ))
    return Flag(test, False, strong, f"{strong} does not beat {weak} at any epsilon (margin {MARGIN:.0%})")


def large_epsilon(attack: str, eps: float, accuracy: float, tabular: bool) -> Flag:
    """Raised when accuracy at an epsilon reaching every allowed input stays above 10%."""
    if accuracy > FAR_FROM_ZERO:
        caveat = " (or the features held fixed decide these points by themselves)" if tabular else ""
        return Flag("large_epsilon", True, attack, (
            f"{attack} at epsilon {eps:.3g}, which reaches every allowed input, leaves accuracy at {accuracy:.1%}: "
            f"an unbounded attack should reach nearly 0, so the gradients may be masked{caveat}"
        ))
    return Flag("large_epsilon", False, attack, f"{attack} at epsilon {eps:.3g} brings accuracy down to {accuracy:.1%}")
