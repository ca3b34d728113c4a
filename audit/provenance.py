"""What an auditor needs to re-run a spec and get the same numbers."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from audit.config import AuditConfig

PACKAGES = (
    "rai-audit", "torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "fairlearn",
    "captum", "shap", "lime", "torchattacks", "onnxruntime", "safetensors", "pydantic", "Jinja2",
    "transformers", "tokenizers",
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(config: AuditConfig) -> dict[str, str]:
    """Every file the spec reads, by role."""
    files = {"data": config.data.path}
    for role, path in (
        ("features_file", getattr(config.data, "features_file", None)),
        ("labels", getattr(config.data, "labels_path", None)),
        ("metadata", getattr(config.data, "metadata", None)),
        ("model", config.model.path),
    ):
        if path:
            files[role] = path
    if config.model.factory and config.model.factory.rpartition(":")[0].endswith(".py"):
        files["factory"] = str((config.base_dir / config.model.factory.rpartition(":")[0]).resolve())
    tokenizer = getattr(getattr(config.data, "tokenizer", None), "path", None)
    if tokenizer:
        files["tokenizer"] = tokenizer
    return _folder_files(files)


def _folder_files(files: dict[str, str]) -> dict[str, str]:
    # a transformers model is a folder: hash each file in it (config, weights, tokenizer)
    out: dict[str, str] = {}
    for role, path in files.items():
        if Path(path).is_dir():
            out |= {f"{role}/{f.name}": str(f) for f in sorted(Path(path).iterdir()) if f.is_file()}
        else:
            out[role] = path
    return out


def _config_sha256(config: AuditConfig) -> str:
    # a config built in code has no spec text: hash its canonical JSON instead
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build(
    config: AuditConfig, *, device: str, started: str, finished: str, command: str | None
) -> dict[str, Any]:
    return {
        "spec_path": str(config.source) if config.source else None,
        "spec_sha256": config.source_sha256 or _config_sha256(config),
        "command": command,
        "files": {role: {"path": path, "sha256": file_sha256(path)} for role, path in input_files(config).items()},
        "seed": config.seed,
        "bootstrap": config.statistics.bootstrap,
        "ci_level": config.statistics.ci_level,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "started": started,
        "finished": finished,
    }
