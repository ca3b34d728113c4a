"""Merge the shards' summaries on the cluster, pairwise in tasks: a reduction tree.

Merging every summary on the driver costs the driver the sum of all their sizes (shards x
distinct rows per shard) in one group-by; the tree merges pairs in Ray tasks, round after
round, so each task holds a few summaries at a time (each bounded by the distinct rows of the
whole data) and the driver receives one. The result is the same summary to the last bit: the
merge adds integer counts and sorts the keys, so neither the pairing nor the order matters.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from audit.scale import summaries


def merged_on_cluster(ray, blocks: list, *, merge: Callable[[Iterable[Any]], Any] = summaries.merge_stream,
                      num_cpus: float = 1.0) -> Any:
    """One summary from ``blocks`` (Ray object refs to arrays of pickled summaries), merged pairwise.

    ``ceil(log2(len(blocks)))`` rounds; each round's tasks run in parallel. ``merge`` folds an
    iterable of summaries into one (a module-level function, so that Ray can send it to the
    tasks): :func:`summaries.merge_stream` by default, or any exact merge of mergeable parts.
    """
    merge_pair = ray.remote(num_cpus=num_cpus)(_merge_pair)
    level = list(blocks)
    if len(level) == 1:
        level = [merge_pair.remote(merge, level[0])]
    while len(level) > 1:
        level = [merge_pair.remote(merge, *level[k : k + 2]) for k in range(0, len(level), 2)]
    return pickle.loads(ray.get(level[0]))


def _merge_pair(merge: Callable[[Iterable[Any]], Any], *blocks) -> bytes:
    """Merge the summaries in one or two blocks (an array of pickled summaries, or one merged summary).

    A running merge (:func:`summaries.merge_stream` by default): a block may hold many shards'
    summaries, and merging them all at once would hold all of them in the task's memory.
    """
    return pickle.dumps(merge(_unpickled(blocks)))


def _unpickled(blocks) -> Iterator[Any]:
    for block in blocks:
        if isinstance(block, bytes):
            yield pickle.loads(block)
        else:
            yield from (pickle.loads(item) for item in block)
