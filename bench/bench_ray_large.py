"""The 100,000,000-row decision log: generated once under /tmp, audited streaming and on Ray.

``python bench/bench_ray_large.py generate DIR ROWS`` writes ROWS rows of
:func:`tests.decision_log.decision_log` as Parquet files of 1,000,000 rows (each file its own
seed, row groups of 250,000: four shards a file). Scores are stored to 3 decimals, as decision
logs often store them; that is what keeps the distinct rows few.

``python bench/bench_ray_large.py run DIR NAME`` audits DIR/parquet with one engine (``streaming``,
``ray1``, ``ray2``) in this process and writes DIR/NAME.json: wall time, peak memory of the driver
and of every process it started, the load average, and every measurement (for the equality check).
``python bench/bench_ray_large.py compare DIR NAME...`` compares the runs' numbers, and
``python bench/bench_ray_large.py parts DIR K`` times the parts a cluster projection needs on K
shards: one shard's summary, merges of two summaries (a tree's step) and of 16 (the local one).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

FILE_ROWS = 1_000_000
ROW_GROUP = 250_000
BATCH_ROWS = 250_000
ENGINES = {
    "streaming": {"batch_rows": BATCH_ROWS},
    "ray1": {"kind": "ray", "workers": 1, "batch_rows": BATCH_ROWS},
    "ray2": {"kind": "ray", "workers": 2, "batch_rows": BATCH_ROWS},
}


def generate(root: Path, rows: int) -> None:
    from tests.decision_log import decision_log

    (root / "parquet").mkdir(parents=True, exist_ok=True)
    for k in range(rows // FILE_ROWS):
        target = root / "parquet" / f"part-{k:05d}.parquet"
        if target.exists():
            continue
        partial = target.with_suffix(".tmp")
        decision_log(FILE_ROWS, seed=k).to_parquet(partial, row_group_size=ROW_GROUP, index=False)
        partial.rename(target)  # a killed generator leaves no half-written shard behind


def run(root: Path, name: str) -> None:
    from audit import load_config, run_audit
    from bench_ray import _peak_memory
    from tests.decision_log import numbers, spec

    config = load_config(spec(root, "parquet", engine=ENGINES[name], name=f"{name}.yaml", bootstrap=200))
    if config.engine.kind == "ray":
        import ray

        temp = tempfile.mkdtemp(dir="/tmp", prefix="ray-large-")
        ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _temp_dir=temp)
    merge_seconds = _time_merges()
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = run_audit(config)
    seconds = time.perf_counter() - start
    record = {
        "seconds": seconds,
        "merge_seconds": merge_seconds[0],
        "check_seconds": result.provenance.get("check_seconds"),
        "load": [load_before, os.getloadavg()],
        "memory": _peak_memory(),
        "rows": result.data.get("rows_read"),
        "distinct": result.data.get("distinct_rows"),
        "values": {json.dumps(k): v for k, v in numbers(result).items()},
    }
    (root / f"{name}.json").write_text(json.dumps(record, default=list))


def _time_merges() -> list[float]:
    """Wrap the driver's merges (a running merge, or waiting for the cluster's tree) to add up their time."""
    from audit.scale import summaries, tree

    spent = [0.0]

    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return wrapper

    summaries.merge = timed(summaries.merge)
    tree.merged_on_cluster = timed(tree.merged_on_cluster)
    return spent


def parts(root: Path, count: int) -> None:
    """The costs a cluster projection needs, in this process: one shard's summary, a merge of two."""
    from audit import load_config
    from audit.scale import engine, summaries
    from tests.decision_log import spec

    config = load_config(spec(root, "parquet", engine=ENGINES["streaming"], name="parts.yaml", bootstrap=200))
    shards = engine.list_shards(config.data)[:count]
    start = time.perf_counter()
    made = [engine.summarize_shard(config, shard) for shard in shards]
    per_shard = (time.perf_counter() - start) / len(made)
    halves = [summaries.merge(made[: count // 2]), summaries.merge(made[count // 2 :])]
    from bench_group_scores import best

    pair = best(lambda: summaries.merge(made[:2]))
    top = best(lambda: summaries.merge(halves))
    fold = best(lambda: summaries.merge(made[:16]))
    print(f"| summarize one shard of {ROW_GROUP:,} rows (read, filter, encode, group-by) | {per_shard:.3f} s |")
    print(f"| merge two shard summaries ({made[0].counts.size:,} + {made[1].counts.size:,} distinct rows) | {pair:.3f} s |")
    print(f"| merge two merged summaries ({halves[0].counts.size:,} + {halves[1].counts.size:,}: a tree's top) | {top:.3f} s |")
    print(f"| merge 16 shard summaries at once (the local running merge's step) | {fold:.3f} s |")


def compare(root: Path, names: list[str]) -> None:
    from bench_ray import _equal, memory_columns

    records = {name: json.loads((root / f"{name}.json").read_text()) for name in names}
    reference = records[names[0]]["values"]
    print("| run | rows | wall time (s) | merge (s) | load (start/end) | driver peak (MiB) | largest other process (MiB) "
          "| processes | equal to first? |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, record in records.items():
        driver, largest, processes = memory_columns(record["memory"])
        load = f"{record['load'][0][0]:.1f}/{record['load'][1][0]:.1f}"
        print(f"| {name} | {record['rows']:,} | {record['seconds']:.0f} | {record['merge_seconds']:.1f} | {load} | "
              f"{driver:.0f} | {largest:.0f} | {processes} | {_equal(reference, record['values'])} |")
    print(f"\nDistinct rows in the merged summary: {records[names[0]]['distinct']:,}")


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "generate":
        generate(folder, int(sys.argv[3]))
    elif command == "run":
        run(folder, sys.argv[3])
    elif command == "parts":
        parts(folder, int(sys.argv[3]))
    else:
        compare(folder, sys.argv[3:])
