"""The whole audit against rows: the Adult MLP with every default check at 1k to 1M rows.

The UCI Adult test set is resampled with replacement (seeded) to each size and written as
Parquet; the audit is ``examples/adult_mlp.yaml`` pointed at that file, every check at its
defaults, run in a child process (``python -m audit run``) so that wall time and peak RSS
include interpreter start, imports, loading and rendering, as a user sees them. Per-check
seconds come from ``provenance.check_seconds`` of the result. The floor beside each row is
one pass over the rows in the same process family: one argsort of 1M scores plus one
bincount of the cells (what any per-group statistic must at least read).

Usage: ``python bench/bench_scale.py [ROWS ...]`` (default 1000 10000 100000 1000000). The
child's CPU seconds (user + system) are printed beside its wall time: on the shared machine
the gap is time spent waiting for a core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000, 100_000, 1_000_000)
CHECKS = ("data", "performance", "fairness", "explanations", "robustness")


def adult_frame() -> tuple[pd.DataFrame, dict]:
    """The Adult test rows as the example spec reads them, and that spec."""
    from audit.config import load_config
    from audit.data import read_table

    config = load_config(ROOT / "examples" / "adult_mlp.yaml")
    raw = yaml.safe_load((ROOT / "examples" / "adult_mlp.yaml").read_text())
    return read_table(config.data), raw


def write_case(folder: Path, rows: int, frame: pd.DataFrame, raw: dict) -> Path:
    rng = np.random.default_rng(rows)
    data = folder / f"adult_{rows}.parquet"
    frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True).to_parquet(data)
    spec = dict(raw)
    spec["data"] = {k: v for k, v in raw["data"].items() if k not in ("csv", "format")}
    spec["data"]["path"] = data.name
    spec["data"]["features_file"] = str(ROOT / "models" / "adult_mlp" / "preprocessing.yaml")
    spec["model"] = dict(raw["model"], path=str(ROOT / "models" / "adult_mlp" / "model.pt"))
    path = folder / f"adult_{rows}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_audit(spec: Path, out: Path) -> dict:
    code = (
        "import resource, sys; from audit.cli import main; "
        f"rc = main(['run', {str(spec)!r}, '--out', {str(out)!r}, '--quiet']); "
        "usage = resource.getrusage(resource.RUSAGE_SELF); "
        "print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime); sys.exit(rc)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads((out / "result.json").read_text())
    seconds = result["provenance"]["check_seconds"]
    peak, cpu = done.stdout.strip().splitlines()[-1].split()
    return {"wall": wall, "peak": int(peak) / 1024, "cpu": float(cpu), "checks": seconds}


def floor_seconds(rows: int) -> float:
    """One argsort of the scores and one bincount of 60 cells: a single pass over the rows."""
    rng = np.random.default_rng(0)
    scores, cells = rng.random(rows), rng.integers(0, 60, rows)
    start = time.perf_counter()
    np.argsort(scores, kind="stable")
    np.bincount(cells * 4 + rng.integers(0, 4, rows), minlength=240)
    return time.perf_counter() - start


def main(sizes: tuple[int, ...]) -> None:
    frame, raw = adult_frame()
    rows_out = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for rows in sizes:
            spec = write_case(folder, rows, frame, raw)
            measured = run_audit(spec, folder / f"out_{rows}")
            rows_out.append((rows, measured, floor_seconds(rows)))
    print("Whole audit against rows: Adult MLP resampled (seeded, with replacement), "
          "examples/adult_mlp.yaml with every default check, child process; targets at 1M: "
          "wall <= 60 s, peak RSS <= 1 GiB\n")
    print("| rows | wall (s) | CPU (s) | peak RSS (MiB) | " + " | ".join(f"{c} (s)" for c in CHECKS) + " | floor: sort + bincount (s) |")
    print("|---" * (len(CHECKS) + 5) + "|")
    for rows, measured, floor in rows_out:
        parts = [f"{measured['checks'].get(c, float('nan')):.2f}" for c in CHECKS]
        print(f"| {rows:,} | {measured['wall']:.1f} | {measured['cpu']:.1f} | {measured['peak']:.0f} | "
              + " | ".join(parts) + f" | {floor:.3f} |")
    print("\nWall and CPU: the whole child process (start, imports, load, predict, checks, gate, report files); "
          "per check: wall seconds from provenance.check_seconds. CPU below wall means the process waited for a core.")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
