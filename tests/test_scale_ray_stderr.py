"""`rai-audit run` with engine: ray leaves on stderr only the lines the local engine prints.

Ray prints on the driver's stderr unless told not to (a token-authentication notice, an error
line of its core worker for each Ray Data actor pool, Ray Data's progress and timing lines, its
workers' output). Each run here is a fresh `python -m audit` process starting its own local Ray
session, as a user's would; the reference is the same spec on the local streaming engine, so
the test compares our lines with our lines, never with text it wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.decision_log import decision_log, spec, write_shards

pytest.importorskip("ray")

STREAMING = {"batch_rows": 400}
RAY = {"kind": "ray", "workers": 2, "batch_rows": 400}


def _audit(path: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}  # a fresh local session
    return subprocess.run([sys.executable, "-m", "audit", "run", str(path), "--out", str(out), *flags],
                          capture_output=True, text=True, env=env, timeout=300)


def _lines(stderr: str) -> list[str]:
    """stderr's lines and progress redraws (split at carriage returns too), digits as N: timings vary."""
    pieces = re.split(r"[\r\n]", stderr)
    return sorted(re.sub(r"\d+(\.\d+)?", "N", piece).strip() for piece in pieces if piece.strip())


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("stderr")
    return root, write_shards(decision_log(3000, seed=2), root)


def test_a_ray_run_prints_what_the_local_engine_prints(shards, tmp_path):
    root, paths = shards
    runs = {}
    for name, engine in (("streaming", STREAMING), ("ray", RAY)):
        runs[name] = _audit(spec(root, paths["parquet"], engine=engine, name=f"{name}.yaml"), tmp_path / name, "--progress")
        assert runs[name].returncode in (0, 1), runs[name].stderr
    assert _lines(runs["ray"].stderr) == _lines(runs["streaming"].stderr)
    assert any(line.startswith("time:") for line in _lines(runs["ray"].stderr))  # the progress was on
    assert runs["ray"].stdout.replace(str(tmp_path / "ray"), "OUT") == runs["streaming"].stdout.replace(str(tmp_path / "streaming"), "OUT")


def test_a_bad_shard_on_ray_is_the_local_engine_s_one_line(shards, tmp_path):
    root, paths = shards
    bad = tmp_path / "bad"
    bad.mkdir()
    for k, part in enumerate(sorted((root / paths["parquet"]).iterdir())):
        frame = pd.read_parquet(part)
        (frame.drop(columns=["sex"]) if k == 1 else frame).to_parquet(bad / part.name, row_group_size=400)
    runs = {name: _audit(spec(tmp_path, "bad", engine=engine, name=f"{name}.yaml"), tmp_path / f"out-{name}")
            for name, engine in (("streaming", STREAMING), ("ray", RAY))}
    assert runs["streaming"].returncode == runs["ray"].returncode == 2
    assert runs["ray"].stderr == runs["streaming"].stderr
    assert runs["ray"].stderr.count("\n") == 1 and "column 'sex' not found" in runs["ray"].stderr
    assert not (tmp_path / "out-ray").exists() or not any((tmp_path / "out-ray").iterdir())
