"""Load a model of any supported kind behind one :class:`ModelAdapter`, and predict once.

Kinds: TorchScript, torch.export (.pt2), state_dict (.safetensors, or .pt read with
``weights_only=True``) plus a factory, ONNX (a black box through onnxruntime), a pickled whole
module (only with ``allow_pickle: true``), and ``predictions`` (columns of precomputed
decisions or scores, no model at all).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import pickle
import sys
import traceback
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch

from audit import progress
from audit.config import AuditConfig, LabelSpec, ModelSpec
from audit.context import AuditData, Predictions
from audit.data import as_strings, encode_labels
from audit.errors import ConfigError, DataError, ModelError


class ModelAdapter:
    """A loaded model: batched prediction, and the torch module when gradients are available.

    ``module`` is None for black boxes (ONNX); gradient-based checks must call
    :meth:`require_gradients` first, which refuses with a message naming what works instead.
    ``static_batch`` is the batch size an exported graph was fixed to, if any: the last batch
    is padded to it.
    """

    def __init__(
        self,
        *,
        kind: str,
        forward: Callable[[torch.Tensor], torch.Tensor | np.ndarray],
        device: torch.device,
        module: torch.nn.Module | None = None,
        static_batch: int | None = None,
    ) -> None:
        self.kind = kind
        self.forward = forward
        self.device = device
        self.module = module
        self.static_batch = static_batch
        self.forward_calls = 0

    @property
    def differentiable(self) -> bool:
        return self.module is not None

    def require_gradients(self, purpose: str, *, alternatives: str) -> torch.nn.Module:
        if self.module is None:
            raise ModelError(
                f"{purpose} needs gradients, but a {self.kind} model is a black box",
                hint=f"use {alternatives}, or audit the PyTorch model itself",
            )
        return self.module

    def rows(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model on any number of rows, ``(N, width)``: the one way every check invokes it.

        Differentiable when the model has a module (explanations, attacks); a graph exported
        for a fixed batch size gets its rows in chunks of that size, the last one padded with
        zeros and the padding cut off (``torch.cat`` keeps the gradient); a tuple output is
        reduced to its first element. Callers set eval mode and grad mode (see
        :func:`torch_evaluation`), since whether gradients are wanted is theirs to say.
        """
        size = self.static_batch
        if not size or len(inputs) == size:
            return self._call_once(inputs)
        parts = []
        for start in range(0, len(inputs), size):
            batch = inputs[start : start + size]
            rows = len(batch)
            if rows < size:
                batch = torch.cat([batch, batch.new_zeros((size - rows, *batch.shape[1:]))])
            parts.append(self._call_once(batch)[:rows])
        return torch.cat(parts) if parts else inputs.new_zeros((0, 1))

    def _call_once(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.forward(batch.to(self.device))
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        if not isinstance(out, torch.Tensor):
            out = torch.from_numpy(_output_array(out))
        if out.dim() == 0 or out.shape[0] != len(batch):
            found = "a single number" if out.dim() == 0 else f"{out.shape[0]} rows"
            raise ModelError(
                f"the model returned {found} for a batch of {len(batch)} inputs; it must return one row per input",
                hint="make forward() return a tensor of shape (batch, outputs)",
            )
        return out.reshape(out.shape[0], -1)

    def outputs(self, features: torch.Tensor, *, batch_size: int, step: progress.Task | None = None) -> np.ndarray:
        """Raw model outputs for every row, batched, as float64 on the CPU; ``step`` counts batches."""
        size = self.static_batch or batch_size
        chunks = []
        row_size = int(features[0].numel()) if len(features) else None
        with torch_evaluation(self.module), small_rows_on_one_thread(self.device, row_size):
            for start in range(0, len(features), size):
                batch = features[start : start + size]
                chunks.append(self._batch_outputs(batch))
                if step is not None:
                    step.advance()
        return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 1))

    def slot_outputs(self, features: torch.Tensor, row_ids: np.ndarray, *, slots: int,
                     step: progress.Task | None = None) -> np.ndarray:
        """Raw outputs with every row computed at slot ``row_id % slots`` of a batch of ``slots`` rows.

        CPU (and GPU) kernels may change an output's last bits with the batch's size and the
        row's place in it (the demo MLP, CNN and transformer all do: up to 1e-5). Placing each
        row by its own id makes its output depend on nothing but its own input, so any
        sharding of the rows (Ray workers, streaming batches, the whole file at once) gives the
        same bits. Free slots hold a copy of a present row; ``row_ids`` must be increasing.
        """
        if len(features) == 0:
            return np.zeros((0, 1))
        if np.any(np.diff(row_ids) <= 0):
            raise ValueError("row ids must be strictly increasing")
        features = self.fixed_shape(features)
        blocks = row_ids // slots
        starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
        chunks = []
        with torch_evaluation(self.module), small_rows_on_one_thread(self.device, int(features[0].numel())):
            for first, end in zip(starts, np.r_[starts[1:], len(row_ids)]):
                places = torch.from_numpy(row_ids[first:end] % slots)
                batch = features[first : first + 1].expand(slots, *features.shape[1:]).clone()
                batch[places] = features[first:end]
                chunks.append(self._batch_outputs(batch)[places.numpy()])
                if step is not None:
                    step.advance()
        return np.concatenate(chunks, axis=0)

    def fixed_shape(self, features: torch.Tensor) -> torch.Tensor:
        """The rows in the one shape every batch gets (text models pad token ids to a fixed width)."""
        return features

    def _batch_outputs(self, batch: torch.Tensor) -> np.ndarray:
        self.forward_calls += 1
        try:
            result = self.rows(batch)
        except ModelError:
            raise
        except Exception as exc:  # any failure inside a user's model is a model problem
            raise ModelError(
                f"the model failed on a batch of shape {list(batch.shape)}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                hint="check that data.features (or the image layout) build the input it was trained on",
            ) from None
        return result.detach().cpu().numpy().astype(np.float64)


def _output_array(result: Any) -> np.ndarray:
    if isinstance(result, torch.Tensor):
        return result.detach().cpu().numpy()
    if isinstance(result, np.ndarray) and np.issubdtype(result.dtype, np.number):
        return result
    raise ModelError(
        f"the model returned {type(result).__name__}, not a tensor of outputs",
        hint="make forward() return a tensor of shape (batch, outputs), e.g. the logits of a dict output",
    )


SMALL_INPUT = 16384
"""Elements per row up to which prediction and attacks run on one CPU thread."""


@contextlib.contextmanager
def small_rows_on_one_thread(device: torch.device, row_size: int | None) -> Iterator[None]:
    """One torch thread on a CPU for rows of at most :data:`SMALL_INPUT` elements; restored after.

    Small rows make small operations, which a second thread barely speeds up, and on a busy
    machine each one waits at a barrier for a thread the system gave to another process:
    predicting 1,000,000 Adult rows took 15 to 40 s with two threads and 1.8 s with one on the
    shared 2-core machine (bench/RESULTS.md, bench_threads). Larger rows keep torch's setting.
    """
    threads = torch.get_num_threads()
    if row_size is not None and row_size <= SMALL_INPUT and device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_evaluation(module: torch.nn.Module | None) -> Iterator[None]:
    """Eval mode and no-grad for a forward pass, restoring the module's training flag after."""
    was_training = bool(module is not None and module.training)
    set_training(module, False)
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            set_training(module, True)


def set_training(module: torch.nn.Module | None, training: bool) -> None:
    if module is None:
        return
    try:
        module.train(training)
    except NotImplementedError:
        pass  # a torch.export program fixed its mode when it was exported


def select_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device is 'cuda' but no CUDA device is available", hint="use device: auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


# ---------------------------------------------------------------- loaders


def load_model(config: AuditConfig) -> ModelAdapter:
    """Load the model the spec names; raise :class:`ModelError` naming the problem and the fix."""
    spec = config.model
    if spec.kind == "predictions":
        raise ConfigError("a predictions-only spec has no model to load")
    if config.data.kind == "text":
        from audit.text.model import load_text_model

        return load_text_model(config, LOADERS)
    device = select_device(spec.device)
    loader = LOADERS[spec.kind]
    return loader(spec, Path(spec.path), device, config.base_dir)


def _adapter_for_module(kind: str, module: torch.nn.Module, device: torch.device) -> ModelAdapter:
    module = module.to(device).eval()
    return ModelAdapter(kind=kind, forward=module, module=module, device=device)


def _load_torchscript(spec: ModelSpec, path: Path, device: torch.device, base: Path) -> ModelAdapter:
    check_archive(path, expected="torchscript")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
            module = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(
            f"{path.name} is not a TorchScript archive ({_first_line(exc)})",
            hint="set model.kind to the format it was saved in (export, state_dict, onnx)",
        ) from None
    return _adapter_for_module("torchscript", module, device)


def _load_export(spec: ModelSpec, path: Path, device: torch.device, base: Path) -> ModelAdapter:
    # torch.export.load logs a traceback to stderr for a foreign file: recognise it first
    check_archive(path, expected="export")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # torch.export raises several types for a foreign file
        raise ModelError(
            f"{path.name} is not a torch.export program ({_first_line(exc)})",
            hint="save it with torch.export.save, or set model.kind to its format",
        ) from None
    if device.type != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    module = program.module()
    adapter = ModelAdapter(kind="export", forward=module, module=module, device=device)
    adapter.static_batch = _exported_batch_size(program)
    return adapter


def _exported_batch_size(program: Any) -> int | None:
    # an exported program without dynamic_shapes has its batch size fixed in the graph
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            value = node.meta.get("val")
            size = value.shape[0] if value is not None and value.dim() else None
            return int(size) if isinstance(size, int) else None
    return None


def _load_state_dict(spec: ModelSpec, path: Path, device: torch.device, base: Path) -> ModelAdapter:
    module = build_from_factory(spec.factory, spec.factory_args, base)
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"the weights in {path.name} do not fit the module built by {spec.factory}: {_first_line(exc)}",
            hint="point model.factory at the architecture the weights were saved from",
        ) from None
    return _adapter_for_module("state_dict", module, device)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or torch.load with weights_only so no code runs."""
    if path.suffix != ".safetensors" and zipfile.is_zipfile(path):
        check_archive(path, expected="state_dict")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise ModelError(f"cannot read {path.name} as safetensors: {_first_line(exc)}") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(
            f"{path.name} holds a pickled object, not a plain state_dict; loading it would run code from the file",
            hint="save model.state_dict() instead, or (only for a file you trust) set kind: pickle and allow_pickle: true",
        ) from None
    except RuntimeError as exc:
        if "TorchScript" in str(exc):
            raise ModelError(f"{path.name} is a TorchScript archive", hint="set model.kind: torchscript") from None
        raise ModelError(f"cannot read {path.name}: {_first_line(exc)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name} does not hold a state_dict of tensors", hint="save model.state_dict()")
    return state


def build_from_factory(reference: str, arguments: dict[str, Any], base: Path) -> torch.nn.Module:
    """Call 'file.py:function' (relative to the spec) or 'module:function' to build the module."""
    target, _, name = reference.rpartition(":")
    if not target or not name:
        raise ConfigError(f"model.factory {reference!r} must look like 'file.py:function' or 'module:function'")
    module = _import_factory_module(target, base)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ModelError(f"factory '{name}' not found in {target}", hint="check model.factory's function name")
    try:
        built = factory(**arguments)
    except TypeError as exc:
        raise ModelError(f"factory {reference} failed: {exc}", hint="check model.factory_args") from None
    except Exception as exc:  # the user's code can raise anything
        raise factory_error(f"the factory {reference} raised", exc, hint="fix the factory or model.factory_args") from None
    if not isinstance(built, torch.nn.Module):
        raise ModelError(f"factory {reference} returned {type(built).__name__}, not a torch.nn.Module")
    return built


def _import_factory_module(target: str, base: Path) -> Any:
    if target.endswith(".py"):
        file = (base / target).resolve()
        if not file.is_file():
            raise ModelError(f"factory file not found: {file}", hint="paths are relative to the spec file")
        name = f"_rai_audit_factory_{abs(hash(str(file)))}"
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a syntax error, a failing import, anything at module level
            sys.modules.pop(name, None)
            raise factory_error(f"the factory file {target} failed to load with", exc, hint="fix the factory file") from None
        return module
    sys.path.insert(0, str(base))
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name != target.partition(".")[0] and exc.name != target:
            raise factory_error(f"the factory module {target} failed to load with", exc, hint="install what it imports") from None
        raise ModelError(
            f"factory module '{target}' not found (looked in {base} and on sys.path)",
            hint="use 'path/to/file.py:function' relative to the spec",
        ) from None
    except Exception as exc:  # the module's own code failed while importing
        raise factory_error(f"the factory module {target} failed to load with", exc, hint="fix the factory module") from None
    finally:
        sys.path.remove(str(base))


def factory_error(what: str, exc: BaseException, *, hint: str) -> ModelError:
    """'the factory X raised ValueError: ... (arch.py, line 3)': the error and where in the user's code."""
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename or '?').name}, line {exc.lineno})"
        return ModelError(f"{what}: SyntaxError: {exc.msg}{where}", hint=hint)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(str(Path(__file__).parent))]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    return ModelError(f"{what} {type(exc).__name__}: {_first_line(exc)}{where}", hint=hint)


def _load_pickle(spec: ModelSpec, path: Path, device: torch.device, base: Path) -> ModelAdapter:
    # the spec opted in (config refuses kind 'pickle' without allow_pickle)
    if zipfile.is_zipfile(path):
        check_archive(path, expected="pickle")
    try:
        module = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling can raise anything the file's code raises
        raise ModelError(f"cannot unpickle {path.name}: {_first_line(exc)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{path.name} holds {type(module).__name__}, not a torch.nn.Module")
    return _adapter_for_module("pickle", module, device)


def _load_onnx(spec: ModelSpec, path: Path, device: torch.device, base: Path) -> ModelAdapter:
    session = onnx_session(path, device)
    model_input = session.get_inputs()[0]
    batch = model_input.shape[0] if model_input.shape else None

    def forward(batch_tensor: torch.Tensor) -> np.ndarray:
        return session.run(None, {model_input.name: batch_tensor.cpu().numpy().astype(np.float32)})[0]

    return ModelAdapter(
        kind="onnx",
        forward=forward,
        device=torch.device("cpu"),
        static_batch=batch if isinstance(batch, int) else None,
    )


def onnx_session(path: Path, device: torch.device):
    """An onnxruntime session (one thread for small rows on a CPU); a ModelError for a bad file."""
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
        if device.type == "cpu" and _small_rows(session):
            session = onnxruntime.InferenceSession(str(path), _one_thread(), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        # the whole message: its first line is often only "[ONNXRuntimeError] : 10 : INVALID_GRAPH"
        whole = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        raise ModelError(f"cannot load {path.name} as ONNX: {whole}",
                         hint="check the export (torch.onnx.export(..., dynamo=True) needs onnxscript)") from None
    return session


ARCHIVE_KINDS = {
    "export": "a torch.export program (torch.export.save)",
    "torchscript": "a TorchScript archive (torch.jit.save)",
    "pickle": "a torch.save file (a state_dict or a pickled module)",
}
KIND_FIX = {"export": "kind: export", "torchscript": "kind: torchscript", "pickle": "kind: state_dict with a factory"}


def archive_kind(names: list[str]) -> str | None:
    """What a PyTorch zip archive holds, from its member names (nothing is unpickled)."""
    if any(n.endswith("archive_format") for n in names):
        return "export"
    if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "pickle"
    return None


def check_archive(path: Path, *, expected: str) -> None:
    """Refuse a corrupted archive (zip CRCs) or one of another kind, before torch reads it.

    A flipped byte in the weights would otherwise load and audit silently with wrong numbers.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        if expected in ("state_dict", "pickle"):
            return  # legacy (non-zip) torch.save files; torch.load reports on them
        raise ModelError(
            f"{path.name} is not {ARCHIVE_KINDS[expected]}: it is not a readable zip archive ({_first_line(exc)})",
            hint="check model.kind and that the file was copied whole",
        ) from None
    if broken is not None:
        raise ModelError(
            f"{path.name} is corrupted: the checksum of '{broken}' inside the archive does not match",
            hint="copy or save the model file again",
        )
    found = archive_kind(names)
    wanted = "pickle" if expected == "state_dict" else expected
    if found is not None and found != wanted:
        raise ModelError(
            f"{path.name} is {ARCHIVE_KINDS[found]}, not {ARCHIVE_KINDS[wanted]}",
            hint=f"set model.{KIND_FIX[found]}",
        )


LOADERS = {
    "torchscript": _load_torchscript,
    "export": _load_export,
    "state_dict": _load_state_dict,
    "pickle": _load_pickle,
    "onnx": _load_onnx,
}


ONNX_SMALL_ROW = 16384  # elements per row up to which a model runs on one thread, as attacks do


def _small_rows(session) -> bool:
    shape = session.get_inputs()[0].shape or []
    sizes = [d for d in shape[1:] if isinstance(d, int)]
    return len(sizes) == len(shape) - 1 and math.prod(sizes) <= ONNX_SMALL_ROW


def _one_thread():
    """One intra-op thread for small rows, as for torch (see :func:`audit.robust.wrappers.attack_session`).

    The audit calls the model thousands of times on small batches (attacks, KernelSHAP, LIME);
    onnxruntime's default pool of spinning threads, one per core, made each call slower, not
    faster, on the shared 2-core machine (0.64 ms against 0.37 ms a call, 500 Adult rows).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return options


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# ---------------------------------------------------------------- outputs to predictions


def predict(adapter: ModelAdapter, data: AuditData, spec: ModelSpec) -> Predictions:
    """Run the model once over the data and turn its outputs into decisions and probabilities.

    Data with row ids (every loader sets them) are predicted slot by row id
    (:meth:`ModelAdapter.slot_outputs`), so a sharded run predicts the same bits; with
    ``model.batching: fast`` in plain batches (text: sorted by length, each cut to its longest).
    """
    if data.features is None:
        raise DataError("the data has no feature tensor to feed the model")
    size = adapter.static_batch or spec.batch_size
    if data.row_ids is not None and spec.batching == "exact":
        blocks = len(np.unique(data.row_ids // size))
        with progress.task("predicting", total=blocks, unit="batch") as step:
            outputs = adapter.slot_outputs(data.features, data.row_ids, slots=size, step=step)
        return predictions_from_outputs(outputs, data, spec)
    with progress.task("predicting", total=-(-len(data.features) // size), unit="batch") as step:
        # adapters that override outputs (text models) are not counted batch by batch
        counted = {"step": step} if type(adapter).outputs is ModelAdapter.outputs else {}
        outputs = adapter.outputs(data.features, batch_size=spec.batch_size, **counted)
    return predictions_from_outputs(outputs, data, spec)


def predictions_from_outputs(outputs: np.ndarray, data: AuditData, spec: ModelSpec) -> Predictions:
    classes = len(data.classes)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if not np.isfinite(outputs).all():
        raise ModelError(f"the model returned {int((~np.isfinite(outputs)).sum())} NaN or infinite outputs")
    if outputs.ndim == 1 and classes == 2:
        positive = _sigmoid(outputs) if spec.output == "logits" else _checked_probability(outputs)
        probabilities = np.empty((len(positive), 2))
        probabilities[:, data.positive_index] = positive
        probabilities[:, 1 - data.positive_index] = 1.0 - positive
    elif outputs.ndim == 2 and outputs.shape[1] == classes:
        probabilities = _softmax(outputs) if spec.output == "logits" else _checked_rows(outputs)
    else:
        width = 1 if outputs.ndim == 1 else outputs.shape[1]
        raise ModelError(
            f"the model gives {width} output(s) per row but the label declares {classes} classes {list(data.classes)}",
            hint="declare the classes in model-output order (binary models may give 1 or 2 outputs)",
        )
    return Predictions(
        decisions=_decide(probabilities, data, spec.threshold),
        probabilities=probabilities,
        scores=probabilities[:, data.positive_index] if data.is_binary else None,
    )


def _decide(probabilities: np.ndarray, data: AuditData, threshold: float) -> np.ndarray:
    if data.is_binary:
        positive = probabilities[:, data.positive_index] >= threshold
        return np.where(positive, data.positive_index, 1 - data.positive_index).astype(np.int64)
    return probabilities.argmax(axis=1).astype(np.int64)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))  # stable for large |x|


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _checked_probability(values: np.ndarray) -> np.ndarray:
    if values.min() < 0 or values.max() > 1:
        raise ModelError(
            f"outputs are declared probabilities but span [{values.min():g}, {values.max():g}]",
            hint="set model.output: logits",
        )
    return values


def _checked_rows(values: np.ndarray) -> np.ndarray:
    _checked_probability(values)
    worst = float(np.abs(values.sum(axis=1) - 1.0).max())
    if worst > 1e-3:
        raise ModelError(
            f"outputs are declared probabilities but rows sum to 1 only within {worst:.3g}",
            hint="set model.output: logits",
        )
    return values / values.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- predictions-only audits


def predictions_from_columns(data: AuditData, spec: ModelSpec, label_map: dict) -> Predictions:
    """Decisions and scores read from the data (for example a vendor's risk score)."""
    frame = data.frame
    scores = probabilities = None
    if spec.score_column and not data.is_binary:
        raise ConfigError("model.score_column is supported for binary labels only")
    if spec.score_column:
        scores = _numeric_column(frame[spec.score_column], spec.score_column)
        if spec.score_type == "probability":
            probability = _checked_probability(scores)
            probabilities = np.empty((len(scores), 2))
            probabilities[:, data.positive_index] = probability
            probabilities[:, 1 - data.positive_index] = 1 - probability
    if spec.decision_column:
        decisions = _decisions_from_column(frame[spec.decision_column], data, spec, label_map)
    elif probabilities is not None:
        decisions = _decide(probabilities, data, spec.threshold)
    else:
        raise ConfigError(
            "a score of type 'score' does not give decisions by itself",
            hint="add model.decision_column, or declare score_type: probability to threshold it",
        )
    return Predictions(decisions=decisions, probabilities=probabilities, scores=scores)


def _decisions_from_column(values: Any, data: AuditData, spec: ModelSpec, label_map: dict) -> np.ndarray:
    if spec.decision_positive is not None:
        if not data.is_binary:
            raise ConfigError("model.decision_positive is for binary labels only")
        text = as_strings(values)
        positive = text.isin([str(v) for v in spec.decision_positive]).to_numpy()
        return np.where(positive, data.positive_index, 1 - data.positive_index).astype(np.int64)
    label = LabelSpec(classes=list(data.classes), map=label_map)
    return encode_labels(values, label, where=f"decision column '{spec.decision_column}'")


def _numeric_column(values: Any, name: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise DataError(
            f"score column '{name}' has {int((~np.isfinite(numbers)).sum())} missing or non-numeric values",
            hint="filter those rows with data.filter",
        )
    return numbers
