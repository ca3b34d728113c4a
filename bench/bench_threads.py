"""Torch threads in prediction, attacks and Integrated Gradients: one thread against two.

The Adult MLP on the demo's 16,281 rows resampled to 200,000 (prediction), and on 500 rows
(PGD, 10 steps, the robustness check's default; Integrated Gradients, 50 steps). Each is
timed with torch's setting forced to 1 and to 2 threads, alternating, best of three, with
wall and CPU seconds: on a machine shared with other jobs the second thread waits at every
operation's barrier for a core another process holds. The audit pins one thread for rows of
at most ``audit.models.SMALL_INPUT`` elements in all three.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from audit.config import load_config
from audit.data import load_data
from audit.models import load_model

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3


def timed(function, threads: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(REPEATS):
        torch.set_num_threads(threads)
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    config = load_config(ROOT / "examples" / "adult_mlp.yaml")
    data = load_data(config)
    adapter = load_model(config)
    module = adapter.module.eval()
    big = data.features[torch.from_numpy(np.random.default_rng(0).integers(0, data.n, 200_000))]
    rows = data.features[:500]
    labels = torch.from_numpy(data.labels[:500])

    def predict():
        with torch.no_grad():
            for start in range(0, len(big), 1024):  # the spec's default batch_size
                module(big[start : start + 1024])

    def pgd():
        x = rows.clone()
        for _ in range(10):
            x.requires_grad_(True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(module(x)[:, 0], labels.float())
            (grad,) = torch.autograd.grad(loss, x)
            x = (x.detach() + 0.01 * grad.sign()).clamp(rows - 0.1, rows + 0.1)

    def integrated_gradients():
        alphas = torch.linspace(0, 1, 50)
        scaled = (alphas[:, None, None] * rows[None]).reshape(-1, rows.shape[1]).requires_grad_(True)
        torch.autograd.grad(module(scaled).sum(), scaled)

    print(f"Torch threads, Adult MLP; best of {REPEATS}; load at start: `{load}`\n")
    print("| task | 1 thread wall (s) | 2 threads wall (s) | 2 / 1 | 1 thread CPU (s) | 2 threads CPU (s) |")
    print("|---|---|---|---|---|---|")
    for name, function in (("prediction, 200,000 rows, batches of 1,024", predict),
                           ("PGD, 500 rows x 10 steps", pgd),
                           ("Integrated Gradients, 500 rows x 50 steps", integrated_gradients)):
        one, two = timed(function, 1), timed(function, 2)
        print(f"| {name} | {one[0]:.3f} | {two[0]:.3f} | {two[0] / one[0]:.1f}x | {one[1]:.3f} | {two[1]:.3f} |")
    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
