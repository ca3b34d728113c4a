"""The Ray driver: shards to a pool of Ray actors, summaries back.

Each actor loads the model once, in its constructor (on its GPU when ``gpus_per_worker`` > 0:
Ray gives the actor its devices and ``device: auto`` picks CUDA), and summarizes whole shards
with the same reader and batch function as the local streaming engine; only the parts
(distinct rows and their counts, and the candidate rows of the costly checks) leave the
actors; they are merged pairwise in Ray tasks (a reduction tree, :mod:`audit.scale.tree`) and
the driver receives one. Ray restarts an actor whose process dies and retries its shard, and a
retried shard gives the same part: rows are predicted slot by row id, so no output depends on
which actor, or which batch, computed it.

The pool is plain Ray actors, a free actor taking the next shard, not a Ray Data actor pool:
Ray Data always passes its map function to an actor's constructor through the object store,
which with restarts on makes Ray's core worker print an error line on the driver's stderr for
every pool (ray-project/ray#53727), its own logger prints progress and timing lines there too
(library code never prints), and it held each map task's outputs in the actor's heap, so the
actor grew with the shards a task summarized (bench/RESULTS.md, bench_ray_memory).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
from collections.abc import Callable, Iterator

from audit.config import AuditConfig
from audit.errors import AuditError, ConfigError
from audit.scale import tree
from audit.scale.engine import Part, Shard, load_batch_model, merge_parts, summarize_shard

# a dead actor is restarted and its shard retried this often; a shard that kills every attempt
# fails the run instead of retrying forever (the executor's actors allow the same)
RESTARTS = 2


def parts(config: AuditConfig, shards: list[Shard]) -> list[Part]:
    """Summarize every shard on the cluster and merge them there: one part, in a list.

    Raise ConfigError when Ray is missing or unreachable.
    """
    ray = _ray()
    _connect(ray, config.engine.address)
    engine = config.engine
    cpus = _cpus_per_worker(ray, engine.workers)
    summarizer = ray.remote(_ShardSummarizer).options(
        num_cpus=cpus, num_gpus=engine.gpus_per_worker, max_restarts=RESTARTS, max_task_retries=RESTARTS,
    )
    actors = [summarizer.remote(config) for _ in range(min(engine.workers, len(shards)))]
    try:
        merge = functools.partial(merge_parts, config)  # summaries, facts, candidate rows and feature tables
        first, follow = _dealt(actors, shards)
        with worker_errors(ray):
            return [tree.merged_on_cluster(ray, first, num_cpus=cpus, merge=merge, follow=follow)]
    finally:
        for actor in actors:
            ray.kill(actor)


def _dealt(actors: list, shards: list[Shard], *, queued: int = 2) -> tuple[list, Callable]:
    """The first shards' refs, ``queued`` per actor, and ``follow``: an actor that finishes a shard takes the next.

    Shards differ in size (CSV files, the last row group of a file) and actors in speed, so
    shards go to whichever actor is free, ``queued`` at a time each so none waits for work. The
    parts stay on the cluster, where the merge tree takes them as they come.
    """
    waiting = list(reversed(shards))
    running: dict = {}

    def give(actor):
        if not waiting:
            return None
        ref = actor.summarize.remote(waiting.pop())
        running[ref] = actor
        return ref

    first = [ref for _ in range(queued) for actor in actors if (ref := give(actor)) is not None]

    def follow(ref):
        actor = running.pop(ref, None)
        return give(actor) if actor is not None else None

    return first, follow


class _ShardSummarizer:
    """One actor of the pool: holds the spec and the model, loaded once for all its shards."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.model = load_batch_model(config)

    def summarize(self, shard: Shard) -> bytes:
        """The shard's part, pickled (the reduction tree unpickles what it merges)."""
        return pickle.dumps(summarize_shard(self.config, shard, self.model))


@contextlib.contextmanager
def worker_errors(ray) -> Iterator[None]:
    """Raise the exception a worker raised as itself (a bad shard's DataError stays one line).

    Ray wraps it in a RayTaskError whose text is the worker's whole traceback, once more for
    every task that waited on the failed one (the merge tasks above a bad shard).
    A worker process that died on every attempt (Ray restarted it ``RESTARTS`` times) is one line
    too, saying so, rather than Ray's account of the actor's death.
    """
    try:
        yield
    except ray.exceptions.RayTaskError as exc:
        cause = exc
        while isinstance(cause, ray.exceptions.RayTaskError) and cause.cause is not None:
            cause = cause.cause
        if isinstance(cause, ray.exceptions.RayActorError):
            raise _died() from exc
        if isinstance(cause, ray.exceptions.RayTaskError):
            raise
        raise cause from exc
    except ray.exceptions.RayActorError as exc:
        raise _died() from exc


def _died() -> AuditError:
    return AuditError(
        f"a Ray worker process died on every one of its {RESTARTS + 1} attempts at the same work "
        "(killed, out of memory, or a crash in the model or a reader)",
        hint="read the worker's log in Ray's session folder (logs/worker-*.err); give each worker more memory "
             "or lower engine.batch_rows",
    )


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "engine.kind ray needs Ray, which is not installed", hint="pip install 'rai-audit[ray]'"
        ) from None
    return ray


def _connect(ray, address: str) -> None:
    """Join the running Ray session, the cluster at ``address``, or start a local one for 'auto'."""
    if ray.is_initialized():
        return
    # Ray's driver logger prints on stderr from import on; only its errors may still print there
    # (failures also raise, and the CLI prints them as one line). Workers' output stays in their
    # log files (log_to_driver). The settings are ray.init's own, so a cluster's logs are untouched.
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": logging.ERROR}
    try:
        if address == "auto":
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, TimeoutError... for a bad address
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {first}",
            hint="start the cluster (ray start --head) or correct engine.address",
        ) from None


def _cpus_per_worker(ray, workers: int) -> float:
    """Share the cluster's CPUs among the workers (at most one each), so a small machine still runs them all."""
    available = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.1, min(1.0, available / (workers + 1)))
