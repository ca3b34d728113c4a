"""Train the digits CNN deterministically; write weights.safetensors, eval.npz, eval_metadata.csv.

Run from anywhere: ``python models/digits_cnn/train.py``. The data are scikit-learn's bundled
8x8 digits (no download). Two runs give identical files: seeded generators, deterministic
algorithms, one thread, and an .npz written with fixed zip timestamps.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from architecture import build  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
STROKE_LABELS = ("light", "medium", "heavy")


def stroke_weight(ink: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """light: ink <= first tertile; medium: <= second tertile; heavy: above it."""
    return np.array(STROKE_LABELS, dtype=object)[np.searchsorted(edges, ink, side="left")]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez, but with a fixed timestamp so the file's bytes do not change between runs."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


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

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8) in [0, 1]
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels), dtype=np.int64)
    train_idx, test_idx = train_test_split(index, test_size=0.25, random_state=SEED, stratify=labels)
    test_idx = np.sort(test_idx)  # eval rows in load_digits order

    x_train, y_train = torch.from_numpy(images[train_idx]), torch.from_numpy(labels[train_idx])
    x_test, y_test = torch.from_numpy(images[test_idx]), labels[test_idx]

    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
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
        if (epoch + 1) % 5 == 0:
            print(f"epoch {epoch + 1}/{EPOCHS}: train loss {total / len(order):.4f}")

    model.eval()
    with torch.no_grad():
        pred = model(x_test).argmax(dim=1).numpy()
        train_acc = float((model(x_train).argmax(dim=1) == y_train).float().mean())
    test_acc = float((pred == y_test).mean())

    # stroke weight: total ink cut at the tertiles of the TRAINING images' total ink
    train_ink = images[train_idx].sum(axis=(1, 2, 3), dtype=np.float64)
    edges = np.quantile(train_ink, [1 / 3, 2 / 3])
    test_ink = images[test_idx].sum(axis=(1, 2, 3), dtype=np.float64)
    strokes = stroke_weight(test_ink, edges)

    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(HERE / "weights.safetensors"), metadata={"architecture": "architecture.py:build"})
    os.chmod(HERE / "weights.safetensors", 0o644)  # safetensors creates the file owner-only
    save_npz(HERE / "eval.npz", {"images": images[test_idx], "labels": y_test, "index": test_idx})
    with open(HERE / "eval_metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "stroke_weight"])
        writer.writerows(zip(test_idx.tolist(), strokes.tolist()))

    # the saved weights must rebuild the trained model
    from safetensors.torch import load_file

    rebuilt = build()
    rebuilt.load_state_dict(load_file(str(HERE / "weights.safetensors")))
    rebuilt.eval()
    with torch.no_grad():
        if not torch.equal(rebuilt(x_test).argmax(dim=1), torch.from_numpy(pred)):
            raise AssertionError("weights.safetensors does not reproduce the trained model")

    print(f"train images {len(train_idx)}, eval images {len(test_idx)}")
    print(f"train accuracy {train_acc:.4f}; test accuracy {test_acc:.4f}")
    print(f"stroke-weight edges (total ink, [0,1] pixels): {float(edges[0])!r}, {float(edges[1])!r}")
    for label in STROKE_LABELS:
        rows = strokes == label
        print(f"  stroke_weight={label}: n={rows.sum()}, accuracy {(pred[rows] == y_test[rows]).mean():.4f}")
    print(f"weights sha256: {fingerprint(model.state_dict())}")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
