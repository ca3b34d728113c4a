"""A tiny text project: a WordLevel tokenizer, a one-layer BERT saved with save_pretrained, a CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

WORDS = ("she her he him his wife husband mom dad work exam money sleep tired happy calm party "
         "friend stress deadline worried fine great good bad anxious car told keys the a to and").split()


def make_texts(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 14))))
        text = " ".join(words)
        if i % 7 == 0:
            text = text.capitalize()
        label = int(sum(w in {"stress", "deadline", "worried", "anxious", "exam", "bad", "tired"} for w in words) >= 1)
        rows.append({"text": text, "label": label, "source": ["forum", "chat"][i % 2]})
    return pd.DataFrame(rows)


def save_model(folder: Path, *, hidden: int = 16, positions: int = 32, vocab_extra: int = 0) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab) + vocab_extra, hidden_size=hidden, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=positions,
                        num_labels=2, pad_token_id=0)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)


def write_spec(root: Path, name: str = "spec.yaml", **changes) -> Path:
    spec = {
        "version": 1, "name": "tiny text", "seed": 0,
        "data": {"kind": "text", "path": "texts.csv", "label": {"column": "label", "classes": [0, 1], "positive": 1},
                 "sensitive": [{"column": "source"}],
                 "tokenizer": {"max_length": 10},
                 "identity": {"female": ["she", "her", "wife", "mom"], "male": ["he", "him", "his", "husband", "dad"]}},
        "model": {"kind": "transformers", "path": "model", "batch_size": 16},
        "statistics": {"bootstrap": 50},
        "checks": {
            "fairness": {"min_group_size": 5},
            "counterfactual": {"swaps": {"gender": {"groups": ["male", "female"], "pairs": [
                ["he", "she"], ["his", "her"], ["him", "her"], ["husband", "wife"], ["dad", "mom"]]}}},
            "token_attributions": {"rows": 8, "steps": 8, "examples": 1},
            "text_robustness": {"rows": 8, "budgets": [0.1, 0.3]},
        },
    }
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = root / name
    path.write_text(yaml.safe_dump(spec))
    return path


def make_project(root: Path) -> Path:
    make_texts().to_csv(root / "texts.csv", index=False)
    save_model(root / "model")
    return write_spec(root)
