"""The costly checks of the demo audits, unchunked (one chunk) and in chunks: CPU and wall seconds.

Runs in the tree on PYTHONPATH, so the same command measures main before chunking and this
branch after: ``PYTHONPATH=TREE python bench/bench_chunks.py``. Each check runs 3 times on one
context (the data loaded and predicted once); the table gives the best of 3. CPU seconds are
the figure to compare on a loaded machine: a busy machine adds waiting to the wall time only.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from audit import load_config
from audit.checks import explanations, robustness
from audit.runner import build_context

SPECS = ("examples/adult_mlp.yaml", "examples/digits_cnn.yaml")
RUNS = 3


def best(check, ctx) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        check.run(ctx)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def settings(ctx) -> list[tuple[str, object]]:
    """The default, and 100 rows a chunk (5 chunks of the demo's 500 rows) where the tree has chunks."""
    if "chunk_rows" not in type(ctx.config.engine).model_fields:
        return [("no chunks (before)", ctx)]
    chunked = dataclasses.replace(ctx, config=ctx.config.replace(engine={"chunk_rows": 100}))
    return [(f"chunk_rows {ctx.config.engine.chunk_rows} (default)", ctx), ("chunk_rows 100", chunked)]


def main() -> None:
    print("| audit | setting | check | wall (s) | CPU (s) |\n|---|---|---|---|---|")
    for spec in SPECS:
        base = build_context(load_config(spec))
        for label, ctx in settings(base):
            for check in (explanations, robustness):
                wall, cpu = best(check, ctx)
                name = check.__name__.rsplit(".", 1)[-1]
                print(f"| {spec.split('/')[-1]} | {label} | {name} | {wall:.2f} | {cpu:.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
