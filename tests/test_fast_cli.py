"""The fast commands never import torch (nor captum, shap, lime, torchattacks).

Each command runs in a fresh interpreter, as a user starts it; the child reports which heavy
modules ended up in sys.modules. Timings live in bench/bench_cli.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.results import AuditResult, Measurement

HEAVY = ("torch", "captum", "shap", "lime", "torchattacks", "onnxruntime", "sklearn")

CHILD = """
import json, sys
from audit.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def _loaded(args: list[str], cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, cwd=cwd)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"]


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A result.json with one threshold, as `rai-audit run` writes it."""
    folder = tmp_path / "run"
    folder.mkdir()
    result = AuditResult(
        name="stored",
        measurements=(Measurement(check="performance", metric="accuracy", value=0.9, ci=(0.88, 0.92), n=500),),
        provenance={"ci_level": 0.95, "files": {}},
        data={"rows_used": 500},
        model={},
        thresholds=({"metric": "accuracy", "min": 0.8},),
        gate_settings={"decision": "point", "inconclusive": "fail"},
    )
    (folder / "result.json").write_text(result.to_json(), encoding="utf-8")
    return folder


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["schema"], ["init", "--kind", "image"], ["gate", "--help"]])
def test_commands_that_read_no_result_import_no_heavy_library(args, tmp_path):
    code, loaded = _loaded(args, tmp_path)
    assert code == 0
    assert loaded == []


def test_gate_imports_no_heavy_library(stored):
    code, loaded = _loaded(["gate", str(stored / "result.json"), "--out", str(stored.parent / "judged")], stored)
    assert code == 0
    assert (stored.parent / "judged" / "junit.xml").exists()
    assert loaded == []


def test_compare_imports_no_heavy_library(stored, tmp_path):
    code, loaded = _loaded(["compare", str(stored), str(stored), "--max-regression", "accuracy=0.01",
                            "--out", str(tmp_path / "cmp")], tmp_path)
    assert code == 0
    assert (tmp_path / "cmp" / "compare.html").exists()
    assert loaded == []


def test_the_check_still_loads_torch_when_an_audit_needs_it(tmp_path):
    """The probe can fail: importing the runner does load torch."""
    done = subprocess.run([sys.executable, "-c", "import sys, audit; audit.run_audit; print('torch' in sys.modules)"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.strip() == "True"
