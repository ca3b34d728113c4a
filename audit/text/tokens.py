"""The model's own tokenizer, read offline from a ``tokenizers`` tokenizer.json.

Truncation and padding come from the spec, not from whatever the file says, so the audit
feeds the model exactly what the spec declares, and counts the texts it had to cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audit.config import AuditConfig, TokenizerSpec
from audit.errors import ConfigError, DataError

PAD_CANDIDATES = ("[PAD]", "<pad>")


@dataclass(frozen=True)
class Encoded:
    """Token ids of every text, right-padded with ``pad_id``; ``lengths`` count real tokens."""

    ids: torch.Tensor
    lengths: np.ndarray
    truncated: np.ndarray


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with the spec's max length, truncation side and padding."""

    def __init__(self, tokenizer, *, spec: TokenizerSpec, path: Path) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.path = path
        self.pad_id = _pad_id(tokenizer, spec.pad_token, path)
        tokenizer.no_padding()
        tokenizer.enable_truncation(spec.max_length, direction=spec.truncation_side)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encodings(self, texts: list[str]) -> list:
        return self.tokenizer.encode_batch(list(texts))

    def encode(self, texts: list[str]) -> Encoded:
        """Ids of ``texts`` as one padded tensor (to the longest text, or to max_length)."""
        found = self.encodings(texts)
        lengths = np.array([len(e.ids) for e in found], dtype=np.int64)
        width = self.spec.max_length if self.spec.padding == "max_length" else int(lengths.max(initial=1))
        ids = torch.full((len(found), width), self.pad_id, dtype=torch.long)
        for row, encoding in enumerate(found):
            ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids, dtype=torch.long)
        truncated = np.array([bool(e.overflowing) for e in found], dtype=bool)
        return Encoded(ids=ids, lengths=lengths, truncated=truncated)


def tokenizer_file(config: AuditConfig) -> Path:
    """tokenizer.json named by the spec, or the one saved in the model folder."""
    spec = config.data.tokenizer
    where = spec.path or (config.model.path if config.model.kind == "transformers" else None)
    if where is None:
        raise ConfigError(
            "data.tokenizer.path is required for a text model that is not a transformers folder",
            hint="name the tokenizer.json the model was trained with",
        )
    path = Path(where)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(
            f"no tokenizer.json at {path}",
            hint="save the tokenizer with the model (tokenizer.save_pretrained or Tokenizer.save) or set data.tokenizer.path",
        )
    return path


def load_tokenizer(config: AuditConfig) -> TextTokenizer:
    from tokenizers import Tokenizer

    path = tokenizer_file(config)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises plain Exception for a bad file
        raise DataError(f"cannot read tokenizer {path.name}: {str(exc).splitlines()[0][:200]}",
                        hint="give a tokenizers tokenizer.json") from None
    return TextTokenizer(tokenizer, spec=config.data.tokenizer, path=path)


def _pad_id(tokenizer, pad_token: str | None, path: Path) -> int:
    candidates = [pad_token] if pad_token else [(tokenizer.padding or {}).get("pad_token"), *PAD_CANDIDATES]
    for token in filter(None, candidates):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    raise DataError(
        f"tokenizer {path.name} has no padding token ({pad_token or ', '.join(PAD_CANDIDATES)})",
        hint="name it in data.tokenizer.pad_token",
    )
