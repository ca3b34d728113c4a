"""Scaling out: a generated Parquet decision log audited four ways, with equal numbers.

A predictions-only decision log (three sensitive columns: region, sex, binned age; scores to
three decimals) is written as Parquet shards, then audited by

- the local engine (the whole file in pandas), the reference;
- the local streaming engine (``engine: {batch_rows: B}``): summaries batch by batch;
- the Ray engine in local mode with 1 and 2 workers (one Ray session per run).

Each run is its own subprocess so that its peak memory is its own: the peak resident set
(VmHWM) of the driver and of every process it started (Ray's raylet, GCS and workers) is read
from /proc just before the run ends. Every run's measurements are compared with the reference:
counts equal, floats to 1e-12. Usage: ``python bench/bench_ray.py [ROWS]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2_000_000
PARTS = 8
BATCH_ROWS = 250_000
RUNS = {
    "local (whole file)": None,
    "local streaming": {"batch_rows": BATCH_ROWS},
    "ray, 1 worker": {"kind": "ray", "workers": 1, "batch_rows": BATCH_ROWS},
    "ray, 2 workers": {"kind": "ray", "workers": 2, "batch_rows": BATCH_ROWS},
}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        return _one(Path(sys.argv[2]), sys.argv[3])
    if len(sys.argv) > 2 and sys.argv[1] == "--parts":
        return _parts(int(sys.argv[2]))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _write_log(root)
        results = {name: _run_child(root, name) for name in RUNS}
        _print(results)


def _write_log(root: Path) -> None:
    import pandas as pd

    from tests.decision_log import decision_log, spec, split

    frame = decision_log(ROWS, seed=0)
    (root / "parquet").mkdir()
    for k, part in enumerate(split(frame, PARTS)):
        part.to_parquet(root / "parquet" / f"part-{k}.parquet", row_group_size=BATCH_ROWS)
    frame.to_parquet(root / "whole.parquet")
    del frame
    for name, engine in RUNS.items():
        path = "whole.parquet" if engine is None else "parquet"
        spec(root, path, engine=engine, name=_spec_name(name), bootstrap=200)
    assert pd  # imported for to_parquet's engine check


def _parts(rows: int) -> None:
    """The costs a cluster projection needs: one batch's summary, the merge, the context the checks read."""
    from audit import load_config
    from audit.scale import engine, summaries
    from tests.decision_log import decision_log, spec, split

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        frame = decision_log(rows, seed=0)
        frame.iloc[:10].to_csv(root / "head.csv", index=False)
        config = load_config(spec(root, "head.csv", engine={"batch_rows": BATCH_ROWS}, bootstrap=200))
        batches = split(frame, max(1, rows // BATCH_ROWS))
        start = time.perf_counter()
        parts = [engine.summarize_batch(config, batch) for batch in batches]
        per_row = (time.perf_counter() - start) / rows
        start = time.perf_counter()
        merged = summaries.merge(parts)
        merge = time.perf_counter() - start
        start = time.perf_counter()
        engine.context_from_summary(config, merged, [engine.Shard("head.csv", "csv")])
        rebuild = time.perf_counter() - start
    print(f"## Scaling out, parts: {rows:,} rows in {len(parts)} batches of {BATCH_ROWS:,}\n")
    print("| part | seconds |\n|---|---|")
    print(f"| summarize, per 1M rows (one process) | {per_row * 1e6:.2f} |")
    print(f"| merge {len(parts)} summaries ({sum(p.counts.size for p in parts):,} distinct rows in, {merged.counts.size:,} out) | {merge:.3f} |")
    print(f"| the checks' context from the merged summary ({merged.counts.size:,} weighted entries, no rows rebuilt) | {rebuild:.2f} |")


def _spec_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name) + ".yaml"


def _run_child(root: Path, name: str) -> dict:
    out = root / (_spec_name(name) + ".json")
    subprocess.run([sys.executable, __file__, "--one", str(root), name], check=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    return json.loads(out.read_text())


def _one(root: Path, name: str) -> None:
    from audit import load_config, run_audit
    from tests.decision_log import numbers

    config = load_config(root / _spec_name(name))
    if config.engine.kind == "ray":
        import ray

        temp = tempfile.mkdtemp(dir=root)
        ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=temp)
    start = time.perf_counter()
    result = run_audit(config)
    seconds = time.perf_counter() - start
    memory = _peak_memory()
    values = {json.dumps(k): v for k, v in numbers(result).items()}
    record = {"seconds": seconds, "memory": memory, "values": values, "distinct": result.data.get("distinct_rows")}
    (root / (_spec_name(name) + ".json")).write_text(json.dumps(record, default=list))


def _peak_memory() -> dict[str, float]:
    """Peak resident MiB of this process and each process it started, by command name."""
    me = os.getpid()
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError):
                continue
    family, frontier = {me}, [me]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        family.update(children)
        frontier.extend(children)
    out = {}
    for pid in sorted(family):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
        except OSError:
            continue
        peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
        label = "driver" if pid == me else command.split()[0].rsplit("/", 1)[-1] if command else str(pid)
        out[f"{label} ({pid})"] = round(peak / 1024, 1)
    return out


def _print(results: dict[str, dict]) -> None:
    reference = results["local (whole file)"]["values"]
    print(f"## Scaling out: {ROWS:,} rows in {PARTS} Parquet shards, 3 sensitive columns, bootstrap 200\n")
    print("| run | wall time (s) | driver peak (MiB) | largest other process (MiB) | processes | equal to local? |")
    print("|---|---|---|---|---|---|")
    for name, record in results.items():
        driver, largest, processes = memory_columns(record["memory"])
        print(f"| {name} | {record['seconds']:.1f} | {driver:.0f} | {largest:.0f} | {processes} | {_equal(reference, record['values'])} |")
    print(f"\nDistinct rows in the merged summary: {results['local streaming']['distinct']:,}")


def memory_columns(memory: dict[str, float]) -> tuple[float, float, int]:
    """The driver's peak MiB, the largest other process's, and how many processes ran."""
    driver = next(v for k, v in memory.items() if k.startswith("driver"))
    others = [v for k, v in memory.items() if not k.startswith("driver")]
    return driver, max(others, default=0.0), len(memory)


def _equal(reference: dict, values: dict) -> str:
    if reference.keys() != values.keys():
        return "no: different measurements"
    worst = 0.0
    for key, (value, ci, n, *words) in reference.items():
        other = values[key]
        if n != other[2] or words != list(other[3:]):
            return f"no: {key}"
        for a, b in zip([value, *(ci or [])], [other[0], *(other[1] or [])]):
            if a is not None and b is not None and a == a:
                worst = max(worst, abs(a - b))
    return f"yes, {len(reference)} values, largest gap {worst:.1e}"


if __name__ == "__main__":
    main()
