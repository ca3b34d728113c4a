"""Which rows the costly checks explain and attack: order statistics of row ids, so any sharding agrees.

A row's id is its position in the data as read, before filter and sampling, counted across
files in sorted order (:attr:`audit.context.AuditData.row_ids`). Every sampling stream (the
explanations sample, the SHAP background, the proxy-association rows, the attacked rows, the
texts explained or attacked)
takes the ``k`` rows with the smallest ``(hash(seed, stream, row id), row id)``. The chosen
local rows (the most confident errors, the least certain predictions) are order statistics
too, with ties broken by row id. So the rows picked from the whole data are exactly the rows
picked again from the union of each batch's own picks: :func:`candidate_mask` keeps those per
batch, and a sharded run (local streaming or Ray) explains and attacks the rows a local run
does, whatever the number of shards or workers.

The hash is splitmix64's finaliser (Steele, Lea and Flood, "Fast splittable pseudorandom
number generators", OOPSLA 2014), written here in numpy because nothing installed offers a
seeded 64-bit integer hash that is vectorised and stable across versions and platforms:
``numpy.random`` generators draw sequences, not a function of a key (and document no stream
stability across versions), ``pandas.util.hash_array`` takes no seed beyond a 16-byte
string key and documents its values as an implementation detail, and pyarrow's hash kernels are
not public compute functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from audit.config import AuditConfig
    from audit.context import AuditData, Predictions

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
STREAMS = {"explanations": 1, "background": 2, "robustness": 3, "text_explanations": 4, "text_robustness": 5,
           "chunk_seed": 6, "proxies": 7}
"""One hash stream per use: each sample is independent of the others."""
BACKGROUND_ROWS = 100
"""Background sample of the SHAP methods: their base value is its mean output."""
PROXY_ROWS = 50_000
"""Rows the explanations check measures proxy associations on (all rows up to this many)."""


def mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 whose output bits all depend on every input bit."""
    x = np.asarray(values, dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64 by design
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_hash(row_ids: np.ndarray, seed: int, stream: str) -> np.ndarray:
    """A seeded 64-bit hash of each row id, for one stream (uint64, vectorised).

    Examples
    --------
    >>> row_hash(np.arange(3), 0, "explanations").dtype
    dtype('uint64')
    >>> bool((row_hash(np.arange(3), 0, "robustness") == row_hash(np.arange(3), 0, "robustness")).all())
    True
    """
    key = mix(np.array([seed % 2**64, STREAMS[stream]], dtype=np.uint64))
    with np.errstate(over="ignore"):
        state = mix(key[:1] + GOLDEN * key[1:]) + np.asarray(row_ids, dtype=np.int64).astype(np.uint64) * GOLDEN
    return mix(state)


def smallest(keys: np.ndarray, row_ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest ``(key, row id)``, in that order.

    Only the rows up to the ``k``-th smallest key (ties included) are sorted, so a million rows
    cost one partition, not one sort.
    """
    k = min(int(k), len(keys))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    limit = np.partition(keys, k - 1)[k - 1]
    candidates = np.flatnonzero(keys <= limit)
    order = np.lexsort((np.asarray(row_ids)[candidates], keys[candidates]))
    return candidates[order[:k]].astype(np.int64)


def ids_of(data: "AuditData") -> np.ndarray:
    """The data's row ids; its positions when a caller built the data without them."""
    row_ids = getattr(data, "row_ids", None)
    return np.arange(data.n, dtype=np.int64) if row_ids is None else np.asarray(row_ids, dtype=np.int64)


def sample(row_ids: np.ndarray, seed: int, stream: str, k: int) -> np.ndarray:
    """Positions of the stream's ``k`` rows, in hash order (so a prefix is the stream's smaller sample)."""
    return smallest(row_hash(row_ids, seed, stream), row_ids, k)


def sorted_sample(row_ids: np.ndarray, seed: int, stream: str, k: int) -> np.ndarray:
    """The stream's ``k`` rows as positions in row-id order (attacks report rows in data order)."""
    chosen = sample(row_ids, seed, stream, k)
    return chosen[np.argsort(np.asarray(row_ids)[chosen], kind="stable")]


def chunk_seed(seed: int, first_row_id: int) -> int:
    """The seed of a chunk of rows for a library that takes one seed per call (31 bits: every library accepts it)."""
    return int(row_hash(np.array([first_row_id]), seed, "chunk_seed")[0] >> np.uint64(33))


# ---------------------------------------------------------------- chosen rows


def worst_errors(row_ids: np.ndarray, labels: np.ndarray, decisions: np.ndarray, probabilities: np.ndarray | None,
                 count: int) -> np.ndarray:
    """Positions of the wrong predictions made with the highest confidence (ties: smaller row id first)."""
    wrong = np.flatnonzero(decisions != labels)
    if count == 0 or wrong.size == 0 or probabilities is None:
        return np.zeros(0, dtype=np.int64)
    confidence = probabilities[wrong, decisions[wrong]]
    return wrong[smallest(-confidence, np.asarray(row_ids)[wrong], count)]


def margins(probabilities: np.ndarray, *, positive_index: int | None, threshold: float) -> np.ndarray:
    """Distance of each prediction from the decision: to the threshold (binary) or between the top two classes."""
    if positive_index is not None:
        return np.abs(probabilities[:, positive_index] - threshold)
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def least_certain(row_ids: np.ndarray, margin: np.ndarray | None, count: int, *, exclude: np.ndarray) -> np.ndarray:
    """Positions of the ``count`` smallest margins outside ``exclude`` (ties: smaller row id first)."""
    if count == 0 or margin is None:
        return np.zeros(0, dtype=np.int64)
    chosen = smallest(margin, row_ids, count + len(exclude))
    return chosen[~np.isin(chosen, exclude)][:count]


# ---------------------------------------------------------------- one batch of a sharded run


def candidate_mask(config: "AuditConfig", row_ids: np.ndarray, labels: np.ndarray, predictions: "Predictions",
                   *, margin: np.ndarray | None = None) -> np.ndarray:
    """Which rows of ONE batch any costly check could pick from the whole data.

    Each stream's ``k`` smallest hashes, the batch's most confident errors, its
    ``least_certain + worst_errors`` smallest margins (the least certain rows skip the errors
    already chosen), and the requested ids. Every row the whole-data plan picks is among its
    batch's candidates, so picking again from the merged candidates gives the same rows.
    ``margin`` is the batch's :func:`margins`; computed from ``config`` when not given.
    """
    row_ids = np.asarray(row_ids, dtype=np.int64)
    keep = np.zeros(len(row_ids), dtype=bool)
    for stream, k in stream_sizes(config).items():
        keep[sample(row_ids, config.seed, stream, k)] = True
    local = _local_spec(config)
    if local is not None and predictions.probabilities is not None:
        keep[worst_errors(row_ids, labels, predictions.decisions, predictions.probabilities, local.worst_errors)] = True
        if margin is None:
            margin = margins(predictions.probabilities, positive_index=config.data.label.binary_positive_index, threshold=_threshold(config))
        keep[smallest(margin, row_ids, local.least_certain + local.worst_errors)] = True
    if local is not None:
        keep |= np.isin(row_ids, np.asarray(local.ids, dtype=np.int64))
    if _enabled(config, "token_attributions") and predictions.scores is not None:
        keep |= _text_candidates(config, row_ids, labels, predictions)
    return keep


def _text_candidates(config: "AuditConfig", row_ids: np.ndarray, labels: np.ndarray, predictions: "Predictions") -> np.ndarray:
    """The texts highlighted in the report: the errors farthest from the threshold, the scores nearest it."""
    keep = np.zeros(len(row_ids), dtype=bool)
    section = config.checks.token_attributions
    distance = np.abs(predictions.scores - _threshold(config))
    wrong = np.flatnonzero(predictions.decisions != labels)
    keep[wrong[smallest(-distance[wrong], row_ids[wrong], section.examples)]] = True
    keep[smallest(distance, row_ids, 2 * section.examples)] = True
    return keep


def stream_sizes(config: "AuditConfig") -> dict[str, int]:
    """Rows each sampling stream takes under this spec (only the checks that run)."""
    checks = config.checks
    sizes: dict[str, int] = {}
    if _enabled(config, "explanations"):
        sizes |= {"explanations": checks.explanations.rows, "background": BACKGROUND_ROWS, "proxies": PROXY_ROWS}
    if _enabled(config, "robustness"):
        sizes["robustness"] = checks.robustness.rows
    for name, stream in (("token_attributions", "text_explanations"), ("text_robustness", "text_robustness")):
        if _enabled(config, name):
            sizes[stream] = getattr(checks, name).rows
    return sizes


def _enabled(config: "AuditConfig", name: str) -> bool:
    """Whether the check runs: enabled, fitting the data kind, and with a model to explain or attack."""
    from audit.checks import applies

    return bool(getattr(config.checks, name).enabled) and applies(name, config) and config.model.kind != "predictions"


def _local_spec(config: "AuditConfig"):
    return config.checks.explanations.local if _enabled(config, "explanations") else None



def _threshold(config: "AuditConfig") -> float:
    return float(getattr(config.model, "threshold", 0.5))
