"""Start-up cost of the fast commands: `--version`, `--help`, `gate`, `compare`, `import audit`.

Each command runs in a fresh interpreter (as a user starts it), five times; the table gives the
median wall time beside the floor (`python -c pass`) and what loading torch alone costs, since
an eager import of torch was where the seconds went. Targets (issue 13): --version < 0.5 s,
gate < 1.5 s on the 2-core development machine.

``--baseline DIR`` also times another checkout of the package (e.g. ``git archive`` of an older
commit unpacked into DIR) for a before/after column.
Usage: python bench/bench_cli.py [--baseline DIR] [--result RESULT.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = 5
TARGETS = {"--version": 0.5, "gate": 1.5}


def stored_result(folder: Path) -> Path:
    """A result.json with one threshold, as `rai-audit run` writes it (gate reads nothing else)."""
    sys.path.insert(0, str(HERE.parent))
    from audit.results import AuditResult, Measurement

    result = AuditResult(
        name="bench", measurements=(Measurement(check="performance", metric="accuracy", value=0.9, ci=(0.88, 0.92), n=500),),
        provenance={"ci_level": 0.95, "files": {}}, data={"rows_used": 500}, model={},
        thresholds=({"metric": "accuracy", "min": 0.8},), gate_settings={"decision": "point", "inconclusive": "fail"},
    )
    path = folder / "result.json"
    path.write_text(result.to_json(), encoding="utf-8")
    return path


def seconds(argv: list[str], package_root: Path) -> float:
    env = os.environ | {"PYTHONPATH": str(package_root)}
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        # run outside the checkout: `-m` and `-c` put the working folder first on sys.path
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.strip()}")
    return statistics.median(times)


def commands(result: Path, out: Path) -> dict[str, list[str]]:
    return {
        "--version": ["-m", "audit", "--version"],
        "--help": ["-m", "audit", "--help"],
        "gate": ["-m", "audit", "gate", str(result)],
        "compare": ["-m", "audit", "compare", str(result), str(result), "--out", str(out)],
        "import audit": ["-c", "import audit"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, help="another checkout of the package, timed beside this one")
    parser.add_argument("--result", type=Path, help="a result.json for gate and compare (default: a one-threshold one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = args.result or stored_result(Path(folder))
        floor = seconds(["-c", "pass"], HERE.parent)
        torch_alone = seconds(["-c", "import torch"], HERE.parent)
        print(f"CLI start-up, median of {RUNS} fresh interpreters; floor `python -c pass` {floor:.2f} s, "
              f"`python -c 'import torch'` {torch_alone:.2f} s\n")
        header = "| command | ours (s) | target (s) | ours / floor |"
        if args.baseline:
            header += " baseline (s) | speed-up |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for name, argv in commands(result, Path(folder) / "cmp").items():
            ours = seconds(argv, HERE.parent)
            row = f"| `{name}` | {ours:.2f} | {TARGETS.get(name, '')} | {ours / floor:.1f}x |"
            if args.baseline:
                before = seconds(argv, args.baseline)
                row += f" {before:.2f} | {before / ours:.1f}x |"
            print(row)


if __name__ == "__main__":
    main()
