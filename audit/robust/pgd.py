"""PGD for the sweep: torchattacks.PGD's update, per point, with an early exit and a given start.

Three changes to ``torchattacks.PGD.forward``, each for the sweep:

- the loss is summed over points instead of averaged, so a point's gradient, and with it
  every step it takes, does not depend on which other points share its batch. The sign of
  the gradient, which is all PGD uses, is the same as for the mean;
- a point leaves the batch at the first iterate the model gets wrong (read from the forward
  pass the step needs anyway), and that iterate is its adversarial example. torchattacks
  returns the last iterate instead, so a point that PGD walks into the adversarial region and
  back out again is broken here and robust there; everywhere else the two agree exactly.
  With ``early_exit=False`` the output equals ``torchattacks.PGD``'s;
- the random start is given (``start``, one perturbation per point) rather than drawn here,
  so the sweep can draw it for every point at once and a point's start does not depend on its
  batch either. ``start=None`` is the deterministic start (the clean input). With the start
  torchattacks.PGD draws under the same seed for the same points
  (``uniform(-eps, eps)`` of the whole batch), the output equals its ``random_start=True`` run.

Imported only when an attack runs: ``import torchattacks`` costs about a second (SciPy).
"""

from __future__ import annotations

import torch
import torchattacks
from torch.nn import functional


class SweepPGD(torchattacks.PGD):
    def __init__(
        self, model, *, eps: float, alpha: float, steps: int, early_exit: bool, start: torch.Tensor | None = None
    ) -> None:
        super().__init__(model, eps=eps, alpha=alpha, steps=steps, random_start=start is not None)
        self.early_exit = early_exit
        self.start = start

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = images.clone().detach().to(self.device)
        labels = labels.clone().detach().to(self.device)
        adversarial = images.clone()
        current = images.clone()
        if self.start is not None:
            current = torch.clamp(current + self.start.to(self.device), min=0, max=1).detach()
        # the points still going: their positions, clean inputs and labels
        where, clean, truth = torch.arange(len(images), device=self.device), images, labels
        for _ in range(self.steps):
            current.requires_grad_(True)
            outputs = self.get_logits(current)
            going = outputs.argmax(dim=1) == truth if self.early_exit else None
            if going is not None and not bool(going.all()):
                adversarial[where[~going]] = current[~going].detach()
                where, clean, truth, outputs = where[going], clean[going], truth[going], outputs[going]
                current_kept = going
            else:
                current_kept = None
            if where.numel() == 0:
                return adversarial
            cost = functional.cross_entropy(outputs, truth, reduction="sum")
            grad = torch.autograd.grad(cost, current)[0]
            current = current.detach()
            if current_kept is not None:
                current, grad = current[current_kept], grad[current_kept]
            stepped = current + self.alpha * grad.sign()
            delta = torch.clamp(stepped - clean, min=-self.eps, max=self.eps)
            current = torch.clamp(clean + delta, min=0, max=1).detach()
        adversarial[where] = current
        return adversarial
