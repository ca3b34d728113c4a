"""Run every bench/bench_*.py and append its figures, with command and machine, to RESULTS.md.

Each benchmark prints Markdown (a heading line and a table); this script adds the context.
Usage: ``make bench`` or ``python bench/run_all.py [NAME ...]`` (names without bench_ and .py).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, load average {load} (1, 5, 15 min)"


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    status = 0
    for script in scripts:
        command = f"{Path(sys.executable).name} bench/{script.name}"
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=HERE.parent)
        if run.returncode != 0:
            print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
            status = run.returncode
            continue
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        entry = f"\n## {script.stem} ({stamp})\n\nCommand: `{command}`  \nMachine: {machine()}\n\n{run.stdout.strip()}\n"
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as results:
            results.write(entry)
        print(entry)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
