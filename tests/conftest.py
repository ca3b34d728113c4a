"""Shared fixtures: a small tabular data set and one network saved in every supported format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

FACTORY_SOURCE = '''
import torch


def build(hidden=8):
    return torch.nn.Sequential(torch.nn.Linear(6, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
'''

FEATURES = [
    {"name": "x1", "type": "numeric", "encoding": "standardize", "mean": 1.0, "std": 2.0},
    {"name": "x2", "type": "numeric", "encoding": "minmax", "min": -1.0, "max": 3.0},
    {"name": "x3", "type": "numeric"},
    {"name": "colour", "type": "categorical", "categories": ["blue", "green", "red"]},
]


def make_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(1, 2, n),
            "x2": rng.uniform(-1, 3, n),
            "x3": rng.integers(0, 5, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 80, n),
        }
    )
    logit = frame.x1 - 0.5 * frame.x2 + 0.3 * (frame.colour == "red")
    frame["label"] = (logit + rng.normal(0, 1, n) > 0.5).astype(int)
    return frame


def build_network(hidden: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)).eval()


class Project:
    """A folder with data, a model in several formats, and a helper that writes specs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.frame = make_frame()
        self.frame.to_csv(root / "data.csv", index=False)
        self.network = build_network()
        (root / "arch.py").write_text(FACTORY_SOURCE)

    def spec(self, name: str = "spec.yaml", *, model: dict | None = None, data: dict | None = None, **extra) -> Path:
        raw = {
            "name": "test audit",
            "data": {
                "kind": "tabular",
                "path": "data.csv",
                "label": {"column": "label", "classes": [0, 1], "positive": 1},
                "features": FEATURES,
                "sensitive": [{"column": "sex"}, {"column": "age", "bins": [0, 40, 120]}],
            }
            | (data or {}),
            "model": model or self.model("torchscript"),
            "statistics": {"bootstrap": 50},
        } | extra
        path = self.root / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    def model(self, kind: str) -> dict:
        """Save the network in the given format and return the spec's model section."""
        return MODEL_WRITERS[kind](self)


def _torchscript(project: Project) -> dict:
    torch.jit.script(project.network).save(str(project.root / "model.ts.pt"))
    return {"kind": "torchscript", "path": "model.ts.pt"}


def _export(project: Project) -> dict:
    example = torch.zeros(4, 6)
    program = torch.export.export(project.network, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(project.root / "model.pt2"))
    return {"kind": "export", "path": "model.pt2"}


def _safetensors(project: Project) -> dict:
    from safetensors.torch import save_file

    save_file(project.network.state_dict(), str(project.root / "weights.safetensors"))
    return {"kind": "state_dict", "path": "weights.safetensors", "factory": "arch.py:build"}


def _state_pt(project: Project) -> dict:
    torch.save(project.network.state_dict(), project.root / "weights.pt")
    return {"kind": "state_dict", "path": "weights.pt", "factory": "arch.py:build"}


def _pickle(project: Project) -> dict:
    torch.save(project.network, project.root / "whole.pt")
    return {"kind": "pickle", "path": "whole.pt", "allow_pickle": True}


def _onnx(project: Project) -> dict:
    """The same network written as an ONNX graph by hand (no exporter needed)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    first, second = project.network[0], project.network[2]
    weights = [
        numpy_helper.from_array(first.weight.detach().numpy().T.copy(), "w1"),
        numpy_helper.from_array(first.bias.detach().numpy(), "b1"),
        numpy_helper.from_array(second.weight.detach().numpy().T.copy(), "w2"),
        numpy_helper.from_array(second.bias.detach().numpy(), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["o0"]),
        helper.make_node("Add", ["o0", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(project.root / "model.onnx"))
    return {"kind": "onnx", "path": "model.onnx"}


MODEL_WRITERS = {
    "torchscript": _torchscript,
    "export": _export,
    "safetensors": _safetensors,
    "state_pt": _state_pt,
    "pickle": _pickle,
    "onnx": _onnx,
}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
