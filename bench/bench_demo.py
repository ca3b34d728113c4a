"""The demo audit end to end: wall time and peak memory of `rai-audit demo` in a child process.

A child process, so the figure includes interpreter start and imports, as a user sees it.
Three runs; the table gives each and the median.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 3


def one_run(out: Path) -> tuple[float, float, float]:
    start = time.perf_counter()
    code = f"import resource, sys; from audit.cli import main; rc = main(['demo', '--out', {str(out)!r}, '--quiet']); " \
           "usage = resource.getrusage(resource.RUSAGE_SELF); print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime); sys.exit(rc)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"demo failed ({done.returncode}): {done.stderr.strip()}")
    peak, cpu = done.stdout.strip().splitlines()[-1].split()
    return wall, int(peak) / 1024, float(cpu)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(RUNS):
            rows.append(one_run(Path(folder) / f"run{run}"))
        sizes = {p.relative_to(Path(folder) / "run0").as_posix(): p.stat().st_size for p in (Path(folder) / "run0").rglob("*.*")}
    print("Demo audit (`rai-audit demo`: Adult MLP, 16,281 rows + digits CNN, 450 images), target <= 30 s\n")
    print("| run | wall time (s) | CPU time (s) | peak memory (MiB) |\n|---|---|---|---|")
    for index, (wall, peak, cpu) in enumerate(rows, 1):
        print(f"| {index} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |")
    print(f"| median | {statistics.median(r[0] for r in rows):.2f} | {statistics.median(r[2] for r in rows):.2f} "
          f"| {statistics.median(r[1] for r in rows):.0f} |")
    print("\nOutput sizes: " + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sorted(sizes.items())))


if __name__ == "__main__":
    main()
