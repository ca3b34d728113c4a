"""The same model as torch.export (.pt2) and as ONNX: audit time side by side (target: ONNX within 2x).

The Adult demo MLP is exported both ways (torch 2.13's exporter: ``torch.onnx.export(...,
dynamo=True)``, which needs onnxscript) and audited with the demo spec twice:

- defaults: each format gets the checks' defaults, which differ by design (gradients are
  available for .pt2: Integrated Gradients and PGD; an ONNX model is a black box: model-agnostic
  explanations and the Square attack);
- same methods: both run the black-box methods (ExactShapley and FeatureAblation; Square), so
  the runtime alone is compared.

Each audit runs in a child process (`rai-audit run ... --quiet`); the table gives the wall time
and each check's seconds from result.json. ``--baseline DIR`` times another checkout too.
Usage: python bench/bench_onnx.py [--baseline DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAME = {"explanations": {"methods": ["ExactShapley", "FeatureAblation"]}, "robustness": {"attacks": ["Square"]}}


def export(folder: Path) -> dict[str, Path]:
    import torch

    sys.path.insert(0, str(ROOT / "models" / "adult_mlp"))
    from model import AdultMLP

    scripted = torch.jit.load(str(ROOT / "models" / "adult_mlp" / "model.pt"))
    network = AdultMLP(91)
    network.load_state_dict(scripted.state_dict())
    network.eval()
    example, batch = torch.zeros(8, 91), torch.export.Dim("batch")
    torch.export.save(torch.export.export(network, (example,), dynamic_shapes=({0: batch},)), str(folder / "adult.pt2"))
    with contextlib.redirect_stdout(sys.stderr):  # the exporter reports its steps on stdout
        torch.onnx.export(network, (example,), dynamo=True, dynamic_shapes=({0: batch},)).save(str(folder / "adult.onnx"))
    return {"export": folder / "adult.pt2", "onnx": folder / "adult.onnx"}


def spec(folder: Path, kind: str, path: Path, checks: dict | None) -> Path:
    raw = yaml.safe_load((ROOT / "examples" / "adult_mlp.yaml").read_text())
    raw["data"]["features_file"] = str(ROOT / "models" / "adult_mlp" / "preprocessing.yaml")
    raw["model"] |= {"kind": kind, "path": str(path)}
    if checks:
        raw["checks"] = checks
    out = folder / f"{kind}-{'same' if checks else 'defaults'}.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def audit(spec_path: Path, package_root: Path, out: Path) -> tuple[float, dict[str, float]]:
    env = os.environ | {"PYTHONPATH": str(package_root)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "audit", "run", str(spec_path), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{spec_path.name} failed ({done.returncode}): {done.stderr.strip()}")
    seconds = json.loads((out / "result.json").read_text())["provenance"]["check_seconds"]
    return wall, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, help="another checkout of the package, timed beside this one")
    args = parser.parse_args()
    roots = {"ours": ROOT} | ({"baseline": args.baseline} if args.baseline else {})
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        models = export(folder)
        print("Adult MLP (16,281 rows) as .pt2 and as ONNX, one audit each, wall time in a child process\n")
        print("| code | methods | .pt2 (s) | ONNX (s) | ONNX / .pt2 | ONNX explanations (s) | ONNX robustness (s) | .pt2 explanations (s) | .pt2 robustness (s) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, root in roots.items():
            for methods, checks in (("defaults", None), ("same (black-box)", SAME)):
                pt2 = audit(spec(folder, "export", models["export"], checks), root, folder / f"{label}-pt2-{methods[:4]}")
                onnx = audit(spec(folder, "onnx", models["onnx"], checks), root, folder / f"{label}-onnx-{methods[:4]}")
                print(f"| {label} | {methods} | {pt2[0]:.1f} | {onnx[0]:.1f} | {onnx[0] / pt2[0]:.2f}x | "
                      f"{onnx[1].get('explanations', 0):.1f} | {onnx[1].get('robustness', 0):.1f} | "
                      f"{pt2[1].get('explanations', 0):.1f} | {pt2[1].get('robustness', 0):.1f} |")


if __name__ == "__main__":
    main()
