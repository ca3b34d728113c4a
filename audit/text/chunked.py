"""Token attributions and text attacks in chunks of rows, through an executor (:mod:`audit.scale.executor`).

A task holds one chunk's texts and settings, never the model; ``run(model)`` tokenizes,
explains or attacks on whichever process holds the model (this one, or a Ray actor), and
returns per-row results that join in chunk order, which is row order.

Attributions: each chunk is one batch cut to its own longest text, so results travel per row
(word values, completeness terms), not as padded arrays. A chunk is seeded from the audit seed
and its first row id (:func:`audit.sampling.chunk_seed`): LIME draws its samples from one
generator per call, so its values depend on the chunk size (never on the worker).
LayerIntegratedGradients and LayerGradientXActivation use no seed: with the default chunk (one
chunk for the audited rows) they give the values of one call, with smaller chunks the same up
to float32 rounding (other batch shapes). Partition explains one text per call: any chunking
gives its values bit for bit.

Attacks: each text's search is seeded by its row id, so none of its draws depends on its chunk
(the outcomes are tested equal across chunk sizes); a chunk scores its searches' queries in
lockstep batches. The few adversarial texts
a chunk could show are scored again there, one text per call, as the check scored them before
it ran in chunks. So the driver runs the model for neither check (the highlights only read
the counterfactual swaps' scores, which :func:`audit.text.checks.swap_outcomes` computes once).
"""

from __future__ import annotations

import functools
import os
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from audit import sampling
from audit.scale.executor import chunks

if TYPE_CHECKING:
    from audit.config import ModelSpec
    from audit.text.attacks import Outcome
    from audit.text.attributions import Word


# ---------------------------------------------------------------- attributions


@dataclass(frozen=True)
class Explained:
    """One method's word attributions of some texts, one entry per text, in row order.

    ``gaps`` and ``scales`` are each text's completeness gap (values' sum minus
    ``f(x) - f(baseline)``) and ``|f(x) - f(baseline)|``: the completeness measurement sums them.
    """

    method: str
    rows: np.ndarray  # positions in the audited rows
    words: list[list["Word"]]
    gaps: np.ndarray
    scales: np.ndarray
    additive: bool

    @property
    def n(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ExplainTask:
    """One method on one chunk of texts: the texts, their rows and predicted classes, steps and seed."""

    method: str
    texts: tuple[str, ...]
    rows: np.ndarray
    decisions: np.ndarray
    steps: int
    seed: int

    def run(self, model) -> Explained:
        from audit.text import attributions as attr

        targets = explained_targets(model, self.texts[0], self.decisions)
        batch = attr.text_batch(model, list(self.texts), self.rows, targets)
        found = attr.explain(model, self.method, batch, steps=self.steps, seed=self.seed)
        words = [attr.word_values(found, batch, i) for i in range(len(self.texts))]
        return Explained(self.method, self.rows, words, found.completeness_gaps(),
                         np.abs(found.outputs - found.base_values), found.additive)


def explained_targets(model, text: str, decisions: np.ndarray) -> np.ndarray:
    """The predicted class as an output column (column 0 for a model with one output)."""
    import torch

    probe = model.tokenizer.encode([text]).ids
    with torch.no_grad():
        width = model.call(probe, (probe != model.pad_id).long()).reshape(1, -1).shape[1]
    return decisions if width > 1 else np.zeros_like(decisions)


def explain_in_chunks(executor, method: str, texts: list[str], rows: np.ndarray, *, decisions: np.ndarray,
                      row_ids: np.ndarray, steps: int, seed: int, size: int) -> Explained:
    """``method`` on ``texts`` (of the audited ``rows``), chunk by chunk through ``executor``, joined.

    ``decisions`` and ``row_ids`` are the whole audited data's; a chunk's seed comes from its first row's id.
    """
    rows = np.asarray(rows, dtype=np.int64)
    tasks = [ExplainTask(method, tuple(texts[part]), rows[part], decisions[rows[part]], steps,
                         sampling.chunk_seed(seed, int(row_ids[rows[part][0]])))
             for part in chunks(len(rows), size) if part.stop > part.start]
    return joined_explained(method, executor.map(tasks))


def joined_explained(method: str, parts: list[Explained]) -> Explained:
    """The chunks' word attributions as one, in chunk order (none: an empty one)."""
    if not parts:
        empty = np.zeros(0)
        return Explained(method, np.zeros(0, dtype=np.int64), [], empty, empty, additive=False)
    return Explained(method, np.concatenate([p.rows for p in parts]), [w for p in parts for w in p.words],
                     np.concatenate([p.gaps for p in parts]), np.concatenate([p.scales for p in parts]),
                     parts[0].additive)


# ---------------------------------------------------------------- attacks


@dataclass(frozen=True)
class AttackSettings:
    """What every chunk of one attack shares: the search's settings and how to read the model's outputs."""

    attack: str  # char | word
    budget: float  # the largest: every budget is read off one search
    protected: tuple[str, ...]  # identity terms the attack leaves alone
    neighbours: int
    word_vectors: str | None
    seed: int
    examples: int  # adversarial texts the check shows: a chunk scores at most this many again
    classes: tuple[str, ...]
    positive_index: int
    model_spec: "ModelSpec"


@dataclass(frozen=True)
class AttackTask:
    """One attack's searches over one chunk of the attacked texts (those the model gets right)."""

    keys: tuple[int, ...]  # positions among the attacked rows
    texts: tuple[str, ...]
    row_ids: tuple[int, ...]
    is_positive: tuple[bool, ...]
    readable: tuple[int, ...]  # words the model reads in each text
    settings: AttackSettings

    def run(self, model) -> "Attacked":
        from audit.text import attacks

        settings = self.settings
        candidates = attack_candidates(model, settings)
        protected = protection(settings.protected)
        searches = {key: search(text, row_id=row_id, is_positive=positive, readable=readable, candidates=candidates,
                                protected=protected, budget=settings.budget, threshold=settings.model_spec.threshold,
                                seed=settings.seed)
                    for key, text, row_id, positive, readable in zip(self.keys, self.texts, self.row_ids,
                                                                      self.is_positive, self.readable)}
        positives = dict(zip(self.keys, self.is_positive))
        outcomes = attacks.run_searches(searches, lambda key, scores: true_probability(positives[key], scores),
                                        lambda batch: positive_scores(model, batch, settings))
        return Attacked(outcomes, self._scored_examples(model, outcomes))

    def _scored_examples(self, model, outcomes: dict[int, "Outcome"]) -> dict[int, float]:
        """The positive score of each adversarial text this chunk may show, each scored alone."""
        return {key: float(positive_scores(model, [outcomes[key].adversarial], self.settings)[0])
                for _, key in fewest_changes(outcomes, self.settings.examples)}


@dataclass(frozen=True)
class Attacked:
    """A chunk's (or the joined) search outcomes by key, and the scores of the adversarial texts it may show."""

    outcomes: dict[int, "Outcome"]
    example_scores: dict[int, float]


def attack_in_chunks(executor, texts: list[str], correct: np.ndarray, *, row_ids: np.ndarray,
                     is_positive: np.ndarray, readable: list[int], settings: AttackSettings, size: int) -> Attacked:
    """Search every correctly decided text of the attacked rows, in chunks of ``size`` attacked rows.

    ``texts``, ``correct``, ``row_ids``, ``is_positive`` and ``readable`` are per attacked row;
    outcomes are keyed by the position among the attacked rows.
    """
    tasks = []
    for part in chunks(len(texts), size):
        keys = [k for k in range(part.start, part.stop) if correct[k]]
        if keys:
            tasks.append(AttackTask(tuple(keys), tuple(texts[k] for k in keys), tuple(int(row_ids[k]) for k in keys),
                                    tuple(bool(is_positive[k]) for k in keys), tuple(int(readable[k]) for k in keys),
                                    settings))
    found = executor.map(tasks)
    outcomes = {k: o for part in found for k, o in part.outcomes.items()}
    scores = {k: s for part in found for k, s in part.example_scores.items()}
    return Attacked(outcomes, {k: scores[k] for _, k in fewest_changes(outcomes, settings.examples)})


def fewest_changes(outcomes: dict[int, "Outcome"], count: int) -> list[tuple[int, int]]:
    """(words changed, key) of the ``count`` successful searches that changed fewest words (ties: smaller key).

    The whole set's are among its chunks' own, so each chunk scores only its own few.
    """
    return sorted((len(o.change_queries), key) for key, o in outcomes.items() if o.flipped)[:count]


def search(text: str, *, row_id: int, is_positive: bool, readable: int, candidates, protected: Callable[[str], bool],
           budget: float, threshold: float, seed: int):
    """One text's greedy search (:func:`audit.text.attacks.search`), seeded by its row id, not its position."""
    from audit.text import attacks

    def flipped(p: float) -> bool:
        return p < threshold if is_positive else p <= 1.0 - threshold

    words = sum(piece[0].isalpha() for piece in attacks.pieces(text))
    return attacks.search(text, flipped, limit=attacks.word_limit(budget, words), candidates=candidates,
                          protected=protected, readable_words=readable, seed=seed + row_id)


def true_probability(is_positive: bool, scores: np.ndarray) -> np.ndarray:
    return scores if is_positive else 1.0 - scores


def protection(terms: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a word is one of ``terms`` (whole word, any case); none: nothing is protected."""
    from audit.text.identity import term_pattern

    if not terms:
        return lambda word: False
    pattern = term_pattern(list(terms))
    return lambda word: pattern.fullmatch(word) is not None


def positive_scores(model, texts: list[str], settings: AttackSettings) -> np.ndarray:
    """Positive-class scores of new texts, as the audit scores its data."""
    from audit.context import AuditData
    from audit.models import predictions_from_outputs

    classes = AuditData(labels=np.zeros(0, dtype=np.int64), classes=settings.classes,
                        positive_index=settings.positive_index, sensitive=pd.DataFrame(), features=None)
    outputs = model.score_texts(texts, batch_size=settings.model_spec.batch_size)
    return predictions_from_outputs(outputs, classes, settings.model_spec).scores


def attack_candidates(model, settings: AttackSettings) -> Callable:
    """The attack's replacement candidates for a word: character edits, or nearest words."""
    from audit.errors import CheckError
    from audit.text import attacks

    if settings.attack == "char":
        return attacks.char_candidates
    if settings.word_vectors:
        neighbours = _file_neighbours(settings.word_vectors, settings.neighbours, *_stamp(settings.word_vectors))
    elif model.embeddings is not None:
        neighbours = _model_neighbours(model, settings.neighbours)
    else:
        raise CheckError("the word attack needs the model's token embeddings or a word-vector file",
                         hint="set checks.text_robustness.word_vectors, or attack with char only")
    return lambda word, rng: neighbours(word)


_NEIGHBOURS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _model_neighbours(model, k: int):
    """The model's embedding neighbours, built once per model (an actor attacks many chunks).

    Keyed by the weight's version counter too: weights edited in place between two audits in one
    process (a notebook fine-tuning the model) must not be attacked with the old weights' neighbours.
    """
    from audit.text import attacks

    weight = model.embeddings.weight
    key = (k, weight.data_ptr(), weight._version)
    cached = _NEIGHBOURS.setdefault(model, {})
    if key not in cached:
        cached.clear()
        cached[key] = attacks.model_neighbours(model, k)
    return cached[key]


def _stamp(path: str) -> tuple[int, int]:
    found = os.stat(path)
    return found.st_size, found.st_mtime_ns


@functools.lru_cache(maxsize=2)
def _file_neighbours(path: str, k: int, size: int, modified: int):
    """A word-vector file's neighbours, read once per process while the file is unchanged (size, mtime)."""
    from audit.text import attacks

    return attacks.file_neighbours(path, k)
