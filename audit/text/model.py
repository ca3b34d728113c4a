"""Text models: a Hugging Face sequence classifier folder, or any module taking ids and a mask.

``model.kind: transformers`` loads a ``save_pretrained`` folder with local files only (never a
hub download) and safetensors weights only, unless ``allow_pickle``. The other module kinds
(TorchScript, torch.export, state_dict + factory, pickle) are called as ``module(ids, mask)``;
an ONNX graph taking token ids (and a mask) is a black box run by onnxruntime.
Every text model is checked against its tokenizer (vocabulary size, positions: a transformers
config's ``max_position_embeddings``, a module's or graph's position-embedding table, an ONNX
graph's fixed input length) and predicts in batches sorted by length, each cut to its longest
text, so little time goes on padding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
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
        limit = getattr(module.config, "max_position_embeddings", None)
        positions = None if limit is None else Positions(limit, "max_position_embeddings")
        vocabulary = getattr(embeddings, "num_embeddings", None)
    elif spec.kind == "onnx":
        module, embeddings, device = None, None, torch.device("cpu")
        call, positions, vocabulary = load_onnx_text(Path(spec.path), tokenizer.pad_id)
    else:
        base = loaders[spec.kind](spec, Path(spec.path), device, config.base_dir)
        module, call = base.module, _plain_call(base.forward)
        embeddings = _embedding_layer(module)
        positions = position_table(module.named_parameters()) if module is not None else None
        vocabulary = getattr(embeddings, "num_embeddings", None) or _scripted_vocabulary(module)
    _check_fit(tokenizer, config, vocabulary, positions)
    trim = config.data.tokenizer.padding == "longest"
    return TextModelAdapter(kind=spec.kind, call=call, device=device, module=module, tokenizer=tokenizer,
                            trim=trim, embeddings=embeddings)


@dataclasses.dataclass(frozen=True)
class Positions:
    """The most tokens a model reads, and where that limit was read (for the refusal)."""

    limit: int
    source: str


POSITION_NAME = re.compile(r"(pos|position|positions|positional)(_?(emb|embed|embeds|embedding|embeddings))?|wpe",
                           re.IGNORECASE)
"""A position-embedding table's own name: ``pos``, ``position_embeddings``, ``pos_embed``, GPT-2's ``wpe``."""


def position_table(named_shapes) -> Positions | None:
    """The rows of the first position-embedding table among ``(name, tensor or shape)`` pairs, if any.

    A module that adds a learned position embedding indexes a ``(positions, width)`` table by
    token position, so a text longer than its rows fails or reads garbage; the table is found by
    its name (``embeddings.position_embeddings.weight``, ``pos.weight``, ``pos_embed``), 2-D, or
    3-D with a leading 1 (a raw parameter of shape ``(1, positions, width)``).
    """
    for name, value in named_shapes:
        shape = tuple(getattr(value, "shape", value))
        parts = [p for p in re.split(r"[./:]", name) if p]
        if parts and parts[-1] == "weight":
            parts = parts[:-1]
        if not parts or not POSITION_NAME.fullmatch(parts[-1]):
            continue
        if len(shape) == 2 or (len(shape) == 3 and shape[0] == 1):
            return Positions(int(shape[-2]), f"{name} table")
    return None


def _scripted_vocabulary(module) -> int | None:
    """Rows of a TorchScript module's token embedding: its first ``Embedding`` that is not a position table.

    Scripting hides the ``nn.Embedding`` class (and its hooks) but keeps the original class name.
    """
    for name, child in (module.named_modules() if module is not None else ()):
        last = name.rsplit(".", 1)[-1]
        if getattr(child, "original_name", None) == "Embedding" and name and not POSITION_NAME.fullmatch(last):
            return int(child.weight.shape[0])
    return None


def load_onnx_text(path: Path, pad_id: int) -> tuple[Callable, Positions | None, int | None]:
    """An ONNX text classifier as ``call(ids, mask)``: a black box taking ids and, if it has one, a mask.

    The first input takes token ids, a second one (or one named like ``*mask*``) the attention
    mask, each in the integer type the graph declares. A graph exported for a fixed length gets
    its batches padded to it (and that length is its limit); a fixed batch size gets its rows
    in chunks of that size, the last one padded.
    """
    from audit.models import onnx_session

    session = onnx_session(path, torch.device("cpu"))
    inputs = session.get_inputs()
    masks = [i for i in inputs if "mask" in i.name.lower()]
    ids_input = next(i for i in inputs if i not in masks[:1])
    mask_input = masks[0] if masks else next((i for i in inputs if i is not ids_input), None)
    shape = list(ids_input.shape or [])
    batch = shape[0] if shape and isinstance(shape[0], int) else None
    length = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None

    def run(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        feed = {ids_input.name: ids.cpu().numpy().astype(_onnx_dtype(ids_input.type))}
        if mask_input is not None:
            feed[mask_input.name] = mask.cpu().numpy().astype(_onnx_dtype(mask_input.type))
        return session.run(None, feed)[0]

    def call(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if length is not None and ids.shape[1] < length:
            extra = length - ids.shape[1]
            ids = torch.nn.functional.pad(ids, (0, extra), value=pad_id)
            mask = torch.nn.functional.pad(mask, (0, extra), value=0)
        if batch is None or len(ids) == batch:
            return torch.from_numpy(np.asarray(run(ids, mask)))
        return torch.from_numpy(_in_fixed_batches(run, ids, mask, batch))

    graph = _onnx_graph(path)
    positions = Positions(length, "fixed input length") if length is not None else _onnx_position_table(graph)
    return call, positions, _onnx_vocabulary(graph, ids_input.name)


def _in_fixed_batches(run: Callable, ids: torch.Tensor, mask: torch.Tensor, batch: int) -> np.ndarray:
    """A graph exported for ``batch`` rows: chunks of that size, the last one padded with its first row."""
    parts = []
    for start in range(0, len(ids), batch):
        rows, masks = ids[start : start + batch], mask[start : start + batch]
        fill = batch - len(rows)
        part = run(torch.cat([rows, rows[:1].expand(fill, -1)]), torch.cat([masks, masks[:1].expand(fill, -1)]))
        parts.append(np.asarray(part)[: len(rows)])
    return np.concatenate(parts)


def _onnx_dtype(onnx_type: str) -> type:
    return {"tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(double)": np.float64}.get(onnx_type, np.int64)


def _onnx_graph(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False).graph


def _onnx_position_table(graph) -> Positions | None:
    return position_table((t.name, tuple(t.dims)) for t in graph.initializer)


def _onnx_vocabulary(graph, ids_name: str) -> int | None:
    """Rows of the table the token ids index: a ``Gather`` over an initializer whose indices are the ids (or a cast of them)."""
    tables = {t.name: tuple(t.dims) for t in graph.initializer}
    ids = {ids_name}
    for node in graph.node:  # nodes are in topological order
        if node.op_type in ("Cast", "Identity") and node.input and node.input[0] in ids:
            ids.update(node.output)
        elif node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in ids and node.input[0] in tables:
            return int(tables[node.input[0]][0])
    return None


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


def _check_fit(tokenizer: TextTokenizer, config: AuditConfig, rows: int | None, positions: "Positions | None") -> None:
    """The tokenizer within the model's vocabulary (``rows`` of its token embedding) and positions."""
    if rows is not None and tokenizer.vocab_size > rows:
        raise ModelError(
            f"the tokenizer {tokenizer.path.name} has {tokenizer.vocab_size:,} tokens but the model embeds only {rows:,}",
            hint="give the tokenizer the model was trained with (data.tokenizer.path)",
        )
    if positions is not None and config.data.tokenizer.max_length > positions.limit:
        raise ConfigError(
            f"data.tokenizer.max_length {config.data.tokenizer.max_length} exceeds the model's {positions.limit} "
            f"positions ({positions.source})",
            hint=f"set data.tokenizer.max_length to {positions.limit} or less",
        )
