"""Where the per-row work of the costly checks runs: in this process, or on a pool of Ray actors.

Attributions and attacks run in chunks of the picked rows. A chunk holds a fixed number of
consecutive picked rows (``engine.chunk_rows``, never derived from the worker count), carries
only those rows and the settings (a :class:`Task`), and returns per-row results; the caller
merges them in chunk order, which is row order. Randomness is seeded per chunk from the audit
seed and the chunk's first row id (:func:`audit.sampling.chunk_seed`): the libraries involved
(SHAP's KernelExplainer, LIME, Captum's GradientShap, torchattacks' random starts) take one seed
per call, not one per row. So a chunk's results depend on its rows and the seed only, and the
merged results are the same with one worker or many, locally or on a cluster.

:class:`LocalExecutor` runs the chunks one after the other on the audit's loaded model.
:class:`RayExecutor` sends them to an actor pool; each actor loads the model once from the
spec (:func:`audit.models.load_model`). Ray retries a chunk whose actor dies; a retried chunk
gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from audit.config import AuditConfig
    from audit.models import ModelAdapter

class Task(Protocol):
    """One chunk of per-row work: picklable, holding its rows and settings, never the model."""

    def run(self, model: "ModelAdapter") -> Any: ...


def chunks(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``count`` picked rows, ``size`` each (the last may be shorter; none picked: one empty)."""
    if count == 0:
        yield slice(0, 0)
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


class LocalExecutor:
    """Every chunk in this process, in order, on the already loaded model."""

    def __init__(self, model: "ModelAdapter") -> None:
        self.model = model

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        return [task.run(self.model) for task in tasks]

    def close(self) -> None:
        return None

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *_) -> None:
        self.close()


class RayExecutor:
    """Chunks on a pool of Ray actors, each holding the model loaded once; results in task order."""

    def __init__(self, config: "AuditConfig", *, workers: int) -> None:
        self.config = config
        self.workers = workers
        self._actors: list | None = None

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        if not tasks:
            return []
        import ray
        from ray.util import ActorPool

        from audit.scale.ray_engine import worker_errors

        actors = self._pool(min(self.workers, len(tasks)))
        with worker_errors(ray):  # a chunk's error as the local run raises it, not a worker's traceback
            return list(ActorPool(actors).map(lambda actor, task: actor.run.remote(task), list(tasks)))

    def _pool(self, size: int) -> list:
        if self._actors is None:
            from audit.scale import ray_engine

            ray = ray_engine._ray()
            ray_engine._connect(ray, self.config.engine.address)
            holder = ray.remote(_ModelHolder).options(
                num_cpus=ray_engine._cpus_per_worker(ray, self.workers), num_gpus=self.config.engine.gpus_per_worker,
                max_restarts=2, max_task_retries=2,
            )
            self._actors = [holder.remote(self.config) for _ in range(self.workers)]
        return self._actors[:size]

    def close(self) -> None:
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor)
        self._actors = None

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *_) -> None:
        self.close()


class _ModelHolder:
    """A Ray actor: loads the spec's model once and runs chunks on it."""

    def __init__(self, config: "AuditConfig") -> None:
        from audit.models import load_model

        self.model = load_model(config)

    def run(self, task: Task) -> Any:
        return task.run(self.model)


def executor_for(config: "AuditConfig", model: "ModelAdapter") -> LocalExecutor | RayExecutor:
    """The Ray pool when ``engine.kind`` is ray, else this process."""
    if config.engine.kind == "ray":
        return RayExecutor(config, workers=config.engine.workers)
    return LocalExecutor(model)
