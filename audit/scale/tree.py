"""Merge the shards' summaries on the cluster, pairwise in tasks: a reduction tree.

Merging every summary on the driver costs the driver the sum of all their sizes (shards x
distinct rows per shard) in one group-by; the tree merges pairs in Ray tasks, each as soon as
its two inputs exist, so each task holds a few summaries at a time (each bounded by the distinct
rows of the whole data) and the driver receives one. The result is the same summary to the last bit: the
merge adds integer counts and sorts the keys, so neither the pairing nor the order matters.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from audit.scale import summaries


def merged_on_cluster(ray, blocks: list, *, merge: Callable[[Iterable[Any]], Any] = summaries.merge_stream,
                      num_cpus: float = 1.0, follow: Callable[[Any], Any] | None = None) -> Any:
    """One summary from ``blocks`` (Ray object refs to pickled summaries, or to arrays of them), merged pairwise.

    A merge task starts as soon as two blocks (or two merges) are ready, so the merging runs
    while the shards are still being summarized, and ready parts do not pile up in the object
    store. ``follow(ref)`` is called as each block becomes ready and may return the ref of one
    more block to merge (the next shard of the actor that just finished one). ``merge`` folds an
    iterable of summaries into one (a module-level function, so that Ray can send it to the
    tasks): :func:`summaries.merge_stream` by default, or any exact merge of mergeable parts.
    """
    merge_pair = ray.remote(num_cpus=num_cpus)(_merge_pair)
    waiting = dict.fromkeys(blocks)  # refs in the order given
    merges: set = set()
    ready: list = []
    while waiting:
        (ref,), _ = ray.wait(list(waiting), num_returns=1, fetch_local=False)
        del waiting[ref]
        more = follow(ref) if follow is not None and ref not in merges else None
        if more is not None:
            waiting[more] = None
        ready.append(ref)
        if len(ready) == 2:
            merged = merge_pair.remote(merge, *ready)
            merges.add(merged)
            waiting[merged] = None
            ready = []
    if not ready:
        raise ValueError("no summaries to merge")
    (last,) = ready
    if last not in merges:  # a single block: still unpickled and folded into one summary in a task
        last = merge_pair.remote(merge, last)
    return pickle.loads(ray.get(last))


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
