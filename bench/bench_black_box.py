"""A black box with many columns (German credit has 20): KernelExplainer against
PermutationExplainer, the default above 12 groups, for the same MLP as ONNX and as a torch module.

A 20-column MLP (20 -> 64 -> 2, seeded) is exported to ONNX (torch 2.13's exporter, which needs
onnxscript) and loaded through the audit's ONNX loader; the same network is also explained as a
torch module, with the same model-agnostic methods, so the runtime alone is compared. Each
method explains ``ROWS`` rows against 100 background rows; the table gives seconds per row,
model calls and rows per call (counted at the adapter: every perturbed row goes through it),
after one untimed run of each method (SHAP compiles numba helpers once per process, 10-25 s).
Usage: python bench/bench_black_box.py
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROWS = 4
COLUMNS = 20
METHODS = ("KernelExplainer", "PermutationExplainer")


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(COLUMNS, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)).eval()


def onnx_adapter(module: torch.nn.Module, folder: Path):
    from audit.models import _load_onnx

    path = folder / "wide.onnx"
    with contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(module, (torch.zeros(8, COLUMNS),), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch")},)).save(str(path))
    return _load_onnx(None, path, torch.device("cpu"), folder)


class Counted:
    """The adapter's forward, counting calls and rows."""

    def __init__(self, forward) -> None:
        self.forward, self.calls, self.rows = forward, 0, 0

    def __call__(self, batch):
        self.calls += 1
        self.rows += len(batch)
        return self.forward(batch)


def request(adapter):
    from audit.context import EncodedColumn
    from audit.explain.attribution import FeatureLayout
    from audit.explain.model import ExplainedModel, Request, rows_for_budget

    rng = np.random.default_rng(1)
    inputs = torch.from_numpy(rng.normal(size=(ROWS, COLUMNS)).astype(np.float32))
    background = torch.from_numpy(rng.normal(size=(100, COLUMNS)).astype(np.float32))
    layout = FeatureLayout.tabular([EncodedColumn(f"x{i}", f"x{i}") for i in range(COLUMNS)])
    model = ExplainedModel(adapter, classes=2, positive_index=1, output="logits", batch_rows=rows_for_budget(adapter, inputs, 64))
    return Request(model=model, inputs=inputs, targets=torch.ones(ROWS, dtype=torch.int64), rows=np.arange(ROWS),
                   baseline=background.mean(0, keepdim=True), background=background, layout=layout, steps=50, seed=0)


def main() -> None:
    from audit.explain import registry
    from audit.models import ModelAdapter

    module = network()
    with tempfile.TemporaryDirectory() as folder:
        def torch_forward(batch: torch.Tensor) -> np.ndarray:
            with torch.no_grad():
                return module(batch).numpy()

        forwards = {"onnx": onnx_adapter(module, Path(folder)).forward, "torch": torch_forward}
        for method in METHODS:  # SHAP compiles its numba helpers on first use: not the model's cost
            warm = request(ModelAdapter(kind="onnx", forward=torch_forward, device=torch.device("cpu")))
            with warm.model.session(0):
                registry.attribute(method, warm)
        print("| model | method | s / row | calls / row | rows / call |")
        print("|---|---|---|---|---|")
        for kind, forward in forwards.items():
            for method in METHODS:
                counted = Counted(forward)
                black = ModelAdapter(kind="onnx", forward=counted, device=torch.device("cpu"))  # both as black boxes
                found = request(black)
                with found.model.session(0):
                    start = time.perf_counter()
                    registry.attribute(method, found)
                    seconds = time.perf_counter() - start
                print(f"| {kind} | {method} | {seconds / ROWS:.2f} | {counted.calls / ROWS:.0f} | {counted.rows / max(counted.calls, 1):,.0f} |")


if __name__ == "__main__":
    main()
