"""The registry of adversarial attacks: torchattacks behind one small interface.

Each entry builds a ``torchattacks.Attack`` for a model that takes inputs in the attack's
space, ``[0, 1]`` in every coordinate (:mod:`audit.robust.domain` maps the real inputs there),
and says what the attack needs: its norms, whether it needs gradients, and whether it is run
once per epsilon (``budget``) or once for a minimal perturbation (``minimal``).

torchattacks is installed without its declared dependencies: nothing here may import
torchvision, and nothing does (``import torchattacks`` pulls in torch, NumPy and SciPy; it is
imported only when an attack is built, since it costs about a second).

>>> names()
['FGSM', 'PGD', 'PGDL2', 'CW', 'DeepFool', 'APGD', 'FAB', 'Square', 'AutoAttack']
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import torch

from audit.errors import CheckError
from audit.registry import Registry

SQUARE_QUERIES = 1000
"""Queries per point and epsilon for Square (torchattacks' default is 5000): the black-box
search stops early for every point it breaks, so only robust points pay the full count."""

TORCHATTACKS_SQUARE_QUERIES = 5000
"""torchattacks.Square's own default ``n_queries``; the report names both numbers."""

BLACK_BOX = "Square"


@dataclass(frozen=True)
class AttackSettings:
    """What one attack call needs, in the attack's [0, 1] space (``eps`` and ``step_size`` too)."""

    eps: float
    step_size: float
    steps: int
    norm: str
    seed: int
    classes: int
    images: bool  # real 4-D images with 4+ classes: the setting AutoAttack's parts are built for
    early_exit: bool = True  # PGD: stop a point at its first adversarial iterate (see audit.robust.pgd)
    restart: int = 0  # 0: the deterministic start; r >= 1: random start number r (seeded with seed + r)
    start: torch.Tensor | None = None  # PGD's random start for restart r, drawn by the sweep for every point


@dataclass(frozen=True)
class Attack:
    """One registered attack: what it needs and how to build it."""

    name: str
    description: str
    norms: tuple[str, ...]
    gradients: bool
    minimal: bool  # finds a minimal perturbation by itself: run once, not per epsilon
    build: Callable[[torch.nn.Module, AttackSettings], object]
    restarts: bool = False  # gains from random restarts: the sweep runs it from the clean input and from random starts

    def note(self, settings: AttackSettings) -> str | None:
        """What the reader must know about how this attack ran, or None."""
        if self.name == "AutoAttack" and not settings.images:
            return (
                "AutoAttack's targeted parts (APGD-T, FAB-T) need image input and at least four classes "
                "(APGD-T's loss reads the fourth-largest logit); ran APGD-CE, FAB and Square instead of the standard AutoAttack"
            )
        if self.name == BLACK_BOX:
            return (
                f"Square ran with a stated budget of {SQUARE_QUERIES} queries per point and epsilon (torchattacks' "
                f"default is {TORCHATTACKS_SQUARE_QUERIES}): its robust accuracy is an upper bound, which a larger "
                "budget may lower"
            )
        if self.name in ("CW", "DeepFool"):
            return f"{self.name} minimises an L2 perturbation; its examples are measured in the audit's norm"
        return None


ATTACKS: Registry[Attack] = Registry("attack", field="checks.robustness.attacks", hint="names are case-sensitive")


def register(
    name: str, *, description: str, norms: tuple[str, ...], gradients: bool = True, minimal: bool = False, restarts: bool = False
):
    """Decorator: add a builder ``(model, settings) -> torchattacks.Attack`` to the registry."""

    def add(build: Callable[[torch.nn.Module, AttackSettings], object]) -> Callable:
        ATTACKS.add(Attack(name, description, norms, gradients, minimal, build, restarts))
        return build

    return add


def require_torchattacks() -> None:
    """Refuse early, in one line, when torchattacks is not installed (it is installed apart)."""
    if importlib.util.find_spec("torchattacks") is None:
        raise CheckError(
            "the robustness check needs torchattacks, which is not installed",
            hint="pip install --no-deps torchattacks==3.5.1, or set checks.robustness.enabled: false",
        )


def names() -> list[str]:
    return ATTACKS.names()


def get(name: str) -> Attack:
    """The registered attack called ``name``; a ConfigError listing the valid names otherwise."""
    return ATTACKS.lookup(name)


# ---------------------------------------------------------------- the attacks


@register("FGSM", description="fast gradient sign method, one step (Linf)", norms=("Linf",))
def _fgsm(model, s: AttackSettings):
    import torchattacks

    return torchattacks.FGSM(model, eps=s.eps)


@register("PGD", description="projected gradient descent, clean and random starts, early exit (Linf)", norms=("Linf",), restarts=True)
def _pgd(model, s: AttackSettings):
    from audit.robust.pgd import SweepPGD

    # torchattacks.PGD's steps from the start the sweep drew (None: the clean input); independent of the batch
    return SweepPGD(model, eps=s.eps, alpha=s.step_size, steps=s.steps, early_exit=s.early_exit, start=s.start)


@register("PGDL2", description="projected gradient descent, clean and random starts (L2)", norms=("L2",), restarts=True)
def _pgdl2(model, s: AttackSettings):
    import torchattacks

    return torchattacks.PGDL2(model, eps=s.eps, alpha=s.step_size, steps=s.steps, random_start=s.restart > 0)


@register("CW", description="Carlini-Wagner L2, a minimal-perturbation attack", norms=("Linf", "L2"), minimal=True)
def _cw(model, s: AttackSettings):
    import torchattacks

    return torchattacks.CW(model)


@register("DeepFool", description="DeepFool, a minimal-perturbation attack (L2)", norms=("Linf", "L2"), minimal=True)
def _deepfool(model, s: AttackSettings):
    import torchattacks

    return torchattacks.DeepFool(model)


@register("APGD", description="auto-PGD with cross-entropy loss", norms=("Linf", "L2"))
def _apgd(model, s: AttackSettings):
    import torchattacks

    return torchattacks.APGD(model, norm=s.norm, eps=s.eps, steps=s.steps, seed=s.seed, loss="ce")


@register("FAB", description="fast adaptive boundary attack (untargeted)", norms=("Linf", "L2"))
def _fab(model, s: AttackSettings):
    import torchattacks

    return torchattacks.FAB(model, norm=s.norm, eps=s.eps, steps=s.steps, seed=s.seed, n_classes=s.classes)


@register("Square", description="Square attack, black-box random search", norms=("Linf", "L2"), gradients=False)
def _square(model, s: AttackSettings):
    import torchattacks

    return torchattacks.Square(model, norm=s.norm, eps=s.eps, n_queries=SQUARE_QUERIES, seed=s.seed)


@register("AutoAttack", description="AutoAttack (standard), or APGD-CE + FAB + Square where it cannot run", norms=("Linf", "L2"))
def _autoattack(model, s: AttackSettings):
    import torchattacks

    if s.images:
        return torchattacks.AutoAttack(model, norm=s.norm, eps=s.eps, version="standard", n_classes=s.classes, seed=s.seed)
    # APGD-T and FAB-T target the other classes (APGD-T's DLR loss needs four logits), and they
    # and Square are written for images
    parts = [_apgd(model, s), _fab(model, s), _square(model, s)]
    return torchattacks.MultiAttack(parts)


# ---------------------------------------------------------------- running one attack


def perturb(attack: Attack, model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, settings: AttackSettings) -> torch.Tensor:
    """Adversarial inputs for ``inputs`` (attack space) from one attack, seeded, on the CPU.

    The global random state is left as it was: attacks with a random part draw from a fork
    seeded with ``settings.seed + settings.restart``, so the same seed gives the same examples.
    """
    built = attack.build(model, settings)
    # torchattacks 3.5.1 emits no warning on torch 2.13 for any attack here (checked with every
    # attack under warnings-as-errors in tests/test_robustness*.py), so none is filtered
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed + settings.restart)
        adversarial = built(inputs, labels)
    return adversarial.detach().to("cpu")


