"""Text models: a Hugging Face sequence classifier folder, or any module taking ids and a mask.

``model.kind: transformers`` loads a ``save_pretrained`` folder with local files only (never a
hub download) and safetensors weights only, unless ``allow_pickle``. The other module kinds
(TorchScript, torch.export, state_dict + factory, pickle) are called as ``module(ids, mask)``.
Every text model is checked against its tokenizer (vocabulary size, positions) and predicts in
batches sorted by length, each cut to its longest text, so little time goes on padding.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from audit.config import AuditConfig, ModelSpec
from audit.errors import ConfigError, ModelError
from audit.models import ModelAdapter, select_device
from audit.text.tokens import TextTokenizer, load_tokenizer


class TextModelAdapter(ModelAdapter):
    """A text classifier: ``forward(ids)`` builds the attention mask from the padding id.

    ``score_texts(texts)`` tokenizes and scores new texts (counterfactuals, attacks).

    ``call(ids, mask)`` runs the module itself (attributions and attacks use it);
    ``embeddings`` is the token embedding layer when one is found (None for a black box).
    """

    def __init__(self, *, kind: str, call: Callable, device: torch.device, module: torch.nn.Module | None,
                 tokenizer: TextTokenizer, trim: bool, embeddings: torch.nn.Module | None) -> None:
        super().__init__(kind=kind, forward=self._forward, device=device, module=module)
        self.call = call
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_id
        self.trim = trim
        self.embeddings = embeddings

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.call(ids, (ids != self.pad_id).long())

    def score_texts(self, texts: list[str], *, batch_size: int) -> np.ndarray:
        """Raw outputs for new texts, tokenized exactly as the audited data."""
        return self.outputs(self.tokenizer.encode(texts).ids, batch_size=batch_size)

    def fixed_shape(self, features: torch.Tensor) -> torch.Tensor:
        """Ids padded to the tokenizer's max_length: a batch's width must not depend on its other texts."""
        width = self.tokenizer.spec.max_length
        if features.shape[1] >= width:
            return features[:, :width]
        padding = features.new_full((len(features), width - features.shape[1]), self.pad_id)
        return torch.cat([features, padding], dim=1)

    def outputs(self, features: torch.Tensor, *, batch_size: int) -> np.ndarray:
        """Outputs in the rows' order, computed longest texts first, each batch cut to its longest."""
        if not self.trim or len(features) == 0:
            return super().outputs(features, batch_size=batch_size)
        lengths = (features != self.pad_id).sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        chunks = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(int(lengths[rows].max()), 1)
            chunks.append(super().outputs(features[rows, :width], batch_size=batch_size))
        result = np.empty((len(order), *chunks[0].shape[1:]))
        result[order.numpy()] = np.concatenate(chunks, axis=0)
        return result


def load_text_model(config: AuditConfig, loaders: dict) -> TextModelAdapter:
    """Load the model and check it against the tokenizer the data was encoded with."""
    spec = config.model
    tokenizer = load_tokenizer(config)
    device = select_device(spec.device)
    if spec.kind == "transformers":
        module = load_transformers(spec)
        module = module.to(device).eval()
        call = _hugging_face_call(module)
        embeddings = module.get_input_embeddings()
        positions = getattr(module.config, "max_position_embeddings", None)
    else:
        base = loaders[spec.kind](spec, Path(spec.path), device, config.base_dir)
        module, call, positions = base.module, _plain_call(base.forward), None
        embeddings = _embedding_layer(module)
    _check_fit(tokenizer, config, embeddings, positions)
    trim = config.data.tokenizer.padding == "longest"
    return TextModelAdapter(kind=spec.kind, call=call, device=device, module=module, tokenizer=tokenizer,
                            trim=trim, embeddings=embeddings)


def load_transformers(spec: ModelSpec) -> torch.nn.Module:
    folder = Path(spec.path)
    if not folder.is_dir():
        raise ModelError(f"{folder.name} is not a folder", hint="model.path names the folder written by save_pretrained")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder.name} has no config.json", hint="save the model with save_pretrained")
    if not any(folder.glob("*.safetensors")) and not spec.allow_pickle:
        raise ModelError(
            f"{folder.name} holds no .safetensors weights; other weight files run code when loaded",
            hint="save with save_pretrained(safe_serialization=True), or set allow_pickle: true only for a folder you trust",
        )
    from transformers import AutoModelForSequenceClassification

    try:
        with _quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False,
                use_safetensors=None if spec.allow_pickle else True,
            )
    except Exception as exc:  # transformers raises many types for a foreign folder
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {folder.name} as a sequence classifier: {text}",
                         hint="give a folder saved by save_pretrained of a *ForSequenceClassification model") from None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    # library code prints nothing: no download or loading progress bars, no advice on stderr
    from transformers.utils import logging

    bars = logging.is_progress_bar_enabled()
    level = logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _hugging_face_call(module: torch.nn.Module) -> Callable:
    def call(ids: torch.Tensor, mask: torch.Tensor, **extra) -> torch.Tensor:
        return module(input_ids=ids, attention_mask=mask, **extra).logits
    return call


def _plain_call(forward: Callable) -> Callable:
    def call(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return forward(ids, mask)
    return call


def _embedding_layer(module: torch.nn.Module | None) -> torch.nn.Module | None:
    if module is None:
        return None
    getter = getattr(module, "get_input_embeddings", None)
    if callable(getter):
        return getter()
    return next((m for m in module.modules() if isinstance(m, torch.nn.Embedding)), None)


def _check_fit(tokenizer: TextTokenizer, config: AuditConfig, embeddings, positions: int | None) -> None:
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and tokenizer.vocab_size > rows:
        raise ModelError(
            f"the tokenizer {tokenizer.path.name} has {tokenizer.vocab_size:,} tokens but the model embeds only {rows:,}",
            hint="give the tokenizer the model was trained with (data.tokenizer.path)",
        )
    if positions is not None and config.data.tokenizer.max_length > positions:
        raise ConfigError(
            f"data.tokenizer.max_length {config.data.tokenizer.max_length} exceeds the model's {positions} positions",
            hint=f"set data.tokenizer.max_length to {positions} or less",
        )
