"""The Ray driver: shards to a Ray Data actor pool, summaries back.

Each actor is built once (it would load the model once, when model specs are sharded) and
summarizes whole shards with the same reader and batch function as the local streaming engine;
only the summaries (distinct rows and their counts) leave the actors; they are merged pairwise in
Ray tasks (a reduction tree, :mod:`audit.scale.tree`) and the driver receives one. Ray retries a
task whose worker dies, and a retried shard gives the same summary.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np

from audit.config import AuditConfig
from audit.errors import ConfigError
from audit.scale import tree
from audit.scale.engine import Shard, summarize_shard
from audit.scale.summaries import Summary


def summaries(config: AuditConfig, shards: list[Shard]) -> list[Summary]:
    """Summarize every shard on the cluster and merge them there: one summary, in a list.

    Raise ConfigError when Ray is missing or unreachable.
    """
    ray = _ray()
    _connect(ray, config.engine.address)
    import ray.data

    engine = config.engine
    with warnings.catch_warnings():
        # Ray 2.60's DataContext warns about its own deprecated defaults when it is created
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # library code never prints; the CLI owns the terminal
    context.print_on_execution_start = False
    items = [{"shard": pickle.dumps(shard)} for shard in shards]
    dataset = ray.data.from_items(items, override_num_blocks=min(len(items), max(engine.workers * 4, 1)))
    summarized = dataset.map_batches(
        _ShardSummarizer,
        fn_constructor_kwargs={"config": config},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=engine.workers),
        num_cpus=_cpus_per_worker(ray, engine.workers),
        num_gpus=engine.gpus_per_worker,
    )
    # merged pairwise in tasks on the cluster (audit.scale.tree): the driver receives one summary
    return [tree.merged_on_cluster(ray, summarized.to_numpy_refs(column="summary"), num_cpus=_cpus_per_worker(ray, engine.workers))]


class _ShardSummarizer:
    """One actor of the pool: holds the spec (and, for model specs, would hold the model)."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = [pickle.dumps(summarize_shard(self.config, pickle.loads(item))) for item in batch["shard"]]
        return {"summary": np.array(out, dtype=object)}


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
    try:
        if address == "auto":
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
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
