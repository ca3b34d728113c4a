"""Silence before the first sign of life: `rai-audit demo` with and without progress.

Runs the demo in a child process with stderr read as it arrives; reports the seconds until the
first byte on stderr or stdout (what a user waits for) and the total wall time. With
``--baseline DIR`` the same for another checkout (before progress existed, the first output
came at the end of the first audit).
Usage: python bench/bench_progress.py [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def first_output(package_root: Path, out: Path, *extra: str) -> tuple[float, float]:
    env = os.environ | {"PYTHONPATH": str(package_root)}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "audit", "demo", "--out", str(out), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    selector.register(child.stderr, selectors.EVENT_READ)
    first = None
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
            elif first is None:
                first = time.perf_counter() - start
    child.wait()
    total = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"demo failed ({child.returncode})")
    return first if first is not None else total, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, help="another checkout of the package")
    args = parser.parse_args()
    print("`rai-audit demo` (Adult MLP + digits CNN), one run each: seconds until the first output, and in all\n")
    print("| code | flags | first output (s) | total (s) |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        runs = [("ours", HERE.parent, ("--progress",)), ("ours", HERE.parent, ())]
        if args.baseline:
            runs.append(("baseline", args.baseline, ()))
        for index, (label, root, flags) in enumerate(runs):
            first, total = first_output(root, Path(folder) / f"run{index}", *flags)
            print(f"| {label} | {' '.join(flags) or '(none)'} | {first:.1f} | {total:.1f} |")


if __name__ == "__main__":
    main()
