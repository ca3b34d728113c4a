"""Greedy text attacks ranked by word importance, written here because TextAttack is not
installed and its word-embedding resources download at run time.

Both families follow TextAttack's greedy word-importance-ranking search ("greedy-WIR",
Jin et al. 2020 TextFooler; Gao et al. 2018 DeepWordBug for characters):

1. each word's importance is the drop in the true class's probability when it is deleted
   (one query per word);
2. words are visited from the most important; a word is skipped if it is a stop word, an
   identity term (unless the spec allows it), not alphabetic, or beyond the text the model reads
   (past ``max_length`` tokens);
3. each visited word gets candidate replacements (character: a swap of neighbouring letters, a
   deletion, an insertion and a keyboard-neighbour substitution; word: its nearest neighbours
   by cosine in the model's own input embedding space, or in a word-vector file), every
   candidate is scored, and the one lowering the true class's probability most is kept if it
   lowers it at all;
4. the search stops when the decision flips (success) or the share of words changed would
   exceed the budget (failure).

Metrics match TextAttack's ``AttackSummary``: texts the model already gets wrong are
*skipped*; attack success rate = successes / (successes + failures); accuracy under attack
(robust accuracy) = failures / all attacked texts; perturbed word share = mean over successes
of words changed / words; queries per example = mean over successes and failures.

Searches run in lockstep (:func:`run_searches`): one model call scores the pending queries
of every text, so the model sees large batches although each search is sequential.

Every budget of a sweep comes from one search with the largest budget: the greedy path does
not depend on the budget until it stops, so the result at a smaller budget is the prefix of the
path that fits it, identical to an independent run (tested), at a fraction of the queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Generator

import numpy as np

STOP_WORDS = frozenset(
    "a an the and or but if of at by for with about against between into through during before after above "
    "below to from up down in out on off over under again further then once here there when where why how all "
    "any both each few more most other some such no nor not only own same so than too very i me my myself we "
    "our ours you your he him his she her it its they them their what which who whom this that these those am "
    "is are was were be been being have has had do does did can will just should now".split()
)
KEYBOARD = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl",
    "p": "ol", "a": "qsz", "s": "adwx", "d": "sfec", "f": "dgrv", "g": "fhtb", "h": "gjyn", "j": "hkum",
    "k": "jlim", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}
_PIECES = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z]+")


@dataclass(frozen=True)
class Outcome:
    """One text's search: the queries spent by each kept change, and how it ended."""

    words: int
    change_queries: tuple[int, ...]  # queries spent when the k-th change was kept (k = 1, 2, ...)
    flipped: bool  # the last kept change flipped the decision
    queries: int  # all queries of the search
    adversarial: str | None

    def at_limit(self, limit: int) -> tuple[bool, int, int]:
        """(success, queries, words changed) of the same search stopped at ``limit`` changes."""
        if limit == 0 or not self.words:
            return False, 1, 0
        kept = len(self.change_queries)
        if self.flipped and kept <= limit:
            return True, self.change_queries[-1], kept
        if kept >= limit:
            return False, self.change_queries[limit - 1], limit
        return False, self.queries, kept


def pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def char_candidates(word: str, rng: np.random.Generator) -> list[str]:
    """DeepWordBug's four edits at one seeded position each."""
    if len(word) < 2:
        return []
    out = []
    i = int(rng.integers(0, len(word) - 1))
    out.append(word[:i] + word[i + 1] + word[i] + word[i + 2:])
    i = int(rng.integers(0, len(word)))
    out.append(word[:i] + word[i + 1:])
    i = int(rng.integers(0, len(word) + 1))
    out.append(word[:i] + chr(int(rng.integers(97, 123))) + word[i:])
    i = int(rng.integers(0, len(word)))
    near = KEYBOARD.get(word[i].lower(), "")
    if near:
        out.append(word[:i] + near[int(rng.integers(0, len(near)))] + word[i + 1:])
    return [c for c in dict.fromkeys(out) if c and c != word]


class EmbeddingNeighbours:
    """Nearest whole-word tokens by cosine similarity of the model's input embeddings."""

    def __init__(self, vectors: np.ndarray, words: list[str], k: int) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit = vectors / np.maximum(norms, 1e-12)
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.k = k

    def __call__(self, word: str) -> list[str]:
        at = self.index.get(word.lower())
        if at is None:
            return []
        similarity = self.unit @ self.unit[at]
        similarity[at] = -np.inf
        best = np.argsort(-similarity, kind="stable")[: self.k]
        return [_same_case(word, self.words[j]) for j in best]


def _same_case(original: str, replacement: str) -> str:
    return replacement.capitalize() if original[:1].isupper() else replacement


def model_neighbours(adapter, k: int) -> EmbeddingNeighbours:
    """Whole-word entries of the tokenizer's vocabulary with their embedding rows."""
    vocab = adapter.tokenizer.tokenizer.get_vocab()
    weight = adapter.embeddings.weight.detach().double().cpu().numpy()
    words = sorted(w for w, i in vocab.items() if w.isalpha() and len(w) > 1 and i < len(weight))
    return EmbeddingNeighbours(weight[[vocab[w] for w in words]], words, k)


def file_neighbours(path: str, k: int) -> EmbeddingNeighbours:
    """A word2vec text file: a word and its numbers per line (an optional header line is skipped)."""
    words, rows = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip().split(" ")
            if len(parts) < 3:
                continue
            words.append(parts[0].lower())
            rows.append(np.asarray(parts[1:], dtype=np.float64))
    return EmbeddingNeighbours(np.vstack(rows), words, k)


def word_limit(budget: float, words: int) -> int:
    """Most words a budget (a share of the text's words) lets the attack change."""
    return int(np.floor(budget * words + 1e-9))


def search(text: str, flipped: Callable[[float], bool], *, limit: int,
           candidates: Callable[[str, np.random.Generator], list[str]], protected: Callable[[str], bool],
           readable_words: int, seed: int) -> Generator[list[str], np.ndarray, Outcome]:
    """Greedy word-importance search on one correctly classified text (see the module docstring).

    A generator: it yields the texts it needs scored and is sent back their true-class
    probabilities, so :func:`run_searches` can score many searches' queries in one batch.
    ``limit``: the most words changed; ``flipped(p)``: whether a true-class probability ``p``
    changes the decision. Returns the :class:`Outcome`.
    """
    parts = pieces(text)
    word_at = [i for i, p in enumerate(parts) if p[0].isalpha()]
    open_words = [i for i in word_at[:readable_words] if not protected(parts[i]) and parts[i].lower() not in STOP_WORDS]
    if not open_words or limit == 0:
        return Outcome(len(word_at), (), False, 1, None)
    deleted = ["".join(parts[:i] + parts[i + 1:]) for i in open_words]
    found = yield [text] + deleted
    start, drops = float(found[0]), float(found[0]) - found[1:]
    queries = 1 + len(deleted)
    current, best, kept = list(parts), start, []
    for position in np.argsort(-drops, kind="stable"):
        if len(kept) >= limit:
            break
        i = open_words[position]
        options = candidates(parts[i], np.random.default_rng([seed, i]))
        if not options:
            continue
        found = yield ["".join(current[:i] + [o] + current[i + 1:]) for o in options]
        queries += len(options)
        pick = int(np.argmin(found))
        if found[pick] < best:
            current[i], best = options[pick], float(found[pick])
            kept.append(queries)
            if flipped(best):
                return Outcome(len(word_at), tuple(kept), True, queries, "".join(current))
    return Outcome(len(word_at), tuple(kept), False, queries, None)


def run_searches(searches: dict, true_probability: Callable[[object, list[str]], np.ndarray],
                 score: Callable[[list[str]], np.ndarray]) -> dict:
    """Drive many searches in lockstep: each round scores every pending query in one call.

    ``score(texts)`` gives the positive-class score; ``true_probability(key, scores)`` turns it
    into the probability of that search's true class.
    """
    results, pending = {}, {}
    for key, running in searches.items():
        _advance(key, running, None, pending, results)
    while pending:
        keys = list(pending)
        flat = [text for key in keys for text in pending[key][1]]
        scores = score(flat)
        offset = 0
        for key in keys:
            running, asked = pending.pop(key)
            found = true_probability(key, scores[offset : offset + len(asked)])
            offset += len(asked)
            _advance(key, running, found, pending, results)
    return results


def _advance(key, running, found, pending: dict, results: dict) -> None:
    try:
        asked = next(running) if found is None else running.send(found)
        pending[key] = (running, asked)
    except StopIteration as stop:
        results[key] = stop.value
