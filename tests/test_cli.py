"""The command line: bad input is one line on stderr, exit code 2 and no files; good input audits.

Every bad-input test checks the same contract (see ``_assert_bad_input``): exit code 2, exactly
one line on stderr naming the problem, no traceback, nothing on stdout and nothing left in the
``--out`` folder, so a CI job never mistakes a half-run audit for a result.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audit import checks
from audit.cli import main
from audit.config import TabularData, config_from_dict, load_config
from audit.runner import build_context

RESULT_KEYS = {"check", "metric", "group", "value", "ci", "n", "params", "note", "status", "reason"}

CONV_FACTORY = '''
import torch


def build():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, kernel_size=4), torch.nn.Flatten())
'''


def _run(spec: Path | str, out: Path, capsys) -> tuple[int, str, str]:
    code = main(["run", str(spec), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_bad_input(code: int, stdout: str, stderr: str, out: Path, *needles: str, fix: bool) -> str:
    """The contract for every input error; returns the one line for further checks."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"expected one line on stderr, got {stderr!r}"
    line = stderr.strip()
    assert line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    if fix:
        assert "(fix: " in line, line
    assert stdout == ""
    assert not out.exists() or list(out.iterdir()) == [], f"files left in {out}: {list(out.iterdir())}"
    return line


def _bad_run(spec: Path | str, out: Path, capsys, *needles: str, fix: bool) -> str:
    return _assert_bad_input(*_run(spec, out, capsys), out, *needles, fix=fix)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- bad input, one test each


def test_spec_file_missing(tmp_path, capsys):
    _bad_run(tmp_path / "nowhere.yaml", tmp_path / "out", capsys, "spec file not found", "nowhere.yaml", fix=True)


def test_malformed_yaml_names_the_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: broken\nseed: 0\ndata:\n  kind: tabular: oops\n")
    _bad_run(spec, tmp_path / "out", capsys, "malformed YAML", "line 4", "spec.yaml", fix=True)


def test_unknown_key_lists_the_allowed_keys(project, tmp_path, capsys):
    spec = project.spec(data={"colour_map": {"red": 1}})
    allowed = ", ".join(sorted(TabularData.model_fields))
    _bad_run(spec, tmp_path / "out", capsys, "data.colour_map", f"allowed keys here: {allowed}", fix=True)


def test_misspelt_top_level_key_suggests_the_right_one(project, tmp_path, capsys):
    # the usual typo: 'model' written as 'modle', so 'model' is also missing
    spec = project.spec()
    raw = yaml.safe_load(spec.read_text())
    raw["modle"] = raw.pop("model")
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    _bad_run(spec, tmp_path / "out", capsys, "modle", "did you mean 'model'", fix=True)


def test_wrong_type(project, tmp_path, capsys):
    spec = project.spec(statistics={"bootstrap": "many"})
    _bad_run(spec, tmp_path / "out", capsys, "statistics.bootstrap", "'many'", "integer", fix=True)


def test_data_file_missing(project, tmp_path, capsys):
    spec = project.spec(data={"path": "nothere.csv"})
    _bad_run(spec, tmp_path / "out", capsys, "data.path", "nothere.csv", "not found", fix=False)


def test_missing_sensitive_column_suggests_a_close_match(project, tmp_path, capsys):
    spec = project.spec(data={"sensitive": [{"column": "sexx"}]})
    _bad_run(spec, tmp_path / "out", capsys, "'sexx'", "did you mean 'sex'", fix=True)


def test_label_values_outside_the_declared_classes(project, tmp_path, capsys):
    spec = project.spec(data={"label": {"column": "label", "classes": [0, 2]}})
    line = _bad_run(spec, tmp_path / "out", capsys, "'label'", "'1'", "classes", fix=True)
    assert f"{int((project.frame.label == 1).sum())} rows" in line


@pytest.mark.parametrize("cell", ["", "inf"], ids=["nan", "inf"])
def test_non_finite_feature(project, tmp_path, capsys, cell):
    frame = project.frame.astype({"x1": object})
    frame.loc[7, "x1"] = cell
    frame.to_csv(project.root / "data.csv", index=False)
    spec = project.spec()
    _bad_run(spec, tmp_path / "out", capsys, "feature 'x1'", "missing or infinite", "rows [7]", fix=True)


def test_model_outputs_do_not_match_the_classes(project, tmp_path, capsys):
    spec = project.spec(data={"label": {"column": "label", "classes": [0, 1, 2]}})
    _bad_run(spec, tmp_path / "out", capsys, "2 output(s)", "3 classes", fix=True)


def test_factory_function_not_found(project, tmp_path, capsys):
    model = project.model("safetensors") | {"factory": "arch.py:biuld"}
    spec = project.spec(model=model)
    _bad_run(spec, tmp_path / "out", capsys, "'biuld'", "arch.py", fix=True)


def test_factory_file_missing(project, tmp_path, capsys):
    model = project.model("safetensors") | {"factory": "missing_arch.py:build"}
    spec = project.spec(model=model)
    _bad_run(spec, tmp_path / "out", capsys, "factory file not found", "missing_arch.py", fix=True)


def test_state_dict_kind_refuses_a_pickled_module(project, tmp_path, capsys):
    torch.save(project.network, project.root / "whole.pt")
    spec = project.spec(model={"kind": "state_dict", "path": "whole.pt", "factory": "arch.py:build"})
    _bad_run(spec, tmp_path / "out", capsys, "whole.pt", "pickle", "allow_pickle", fix=True)


def test_pickle_kind_needs_allow_pickle(project, tmp_path, capsys):
    model = project.model("pickle")
    del model["allow_pickle"]
    spec = project.spec(model=model)
    _bad_run(spec, tmp_path / "out", capsys, "spec error", "model", "allow_pickle: true", fix=False)


def test_output_folder_cannot_be_created(project, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = blocker / "out"
    _bad_run(project.spec(), out, capsys, "output error", "afile", fix=True)
    assert blocker.read_text() == "not a folder"


def test_unknown_model_kind(project, tmp_path, capsys):
    spec = project.spec(model={"kind": "keras", "path": "data.csv"})
    _bad_run(spec, tmp_path / "out", capsys, "model.kind", "'keras'", "'torchscript'", fix=True)


def _image_spec(root: Path, name: str, value_range: list[float]) -> Path:
    raw = {
        "name": "images",
        "data": {
            "kind": "image",
            "path": "images.npz",
            "layout": "NCHW",
            "value_range": value_range,
            "label": {"classes": [0, 1]},
        },
        "model": {"kind": "state_dict", "path": "conv.safetensors", "factory": "conv.py:build", "device": "cpu"},
        "statistics": {"bootstrap": 0},
    }
    path = root / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_image_values_outside_the_declared_range(project, tmp_path, capsys):
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 2, size=(20, 1, 4, 4)).astype(np.float32)
    np.savez(project.root / "images.npz", images=images, labels=rng.integers(0, 2, 20))
    (project.root / "conv.py").write_text(CONV_FACTORY)
    torch.manual_seed(0)
    save_file(torch.nn.Sequential(torch.nn.Conv2d(1, 2, kernel_size=4)).state_dict(), str(project.root / "conv.safetensors"))

    # the same data and model work when the range fits, so the range is the only fault below
    assert build_context(load_config(_image_spec(project.root, "wide.yaml", [0, 2]))).data.n == 20
    spec = _image_spec(project.root, "narrow.yaml", [0, 1])
    _bad_run(spec, tmp_path / "out", capsys, "data error", "value_range [0, 1]", fix=True)


def test_categorical_value_not_among_categories(project, tmp_path, capsys):
    frame = project.frame.copy()
    frame.loc[3, "colour"] = "purple"
    frame.to_csv(project.root / "data.csv", index=False)
    _bad_run(project.spec(), tmp_path / "out", capsys, "feature 'colour'", "'purple'", fix=True)


# ---------------------------------------------------------------- good input


def test_run_writes_result_and_report(project, tmp_path, capsys):
    spec = project.spec()
    out = tmp_path / "out"
    code, stdout, stderr = _run(spec, out, capsys)
    assert code == 0, stderr
    assert stderr == ""
    assert "wrote" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "model_card.md", "report.html", "result.json", "summary.md"]  # no temporary files

    result = json.loads((out / "result.json").read_text())
    assert result["schema_version"]
    assert result["failures"] == []
    provenance = result["provenance"]
    assert provenance["spec_sha256"] == _sha256(spec)
    assert provenance["files"]["data"]["sha256"] == _sha256(project.root / "data.csv")
    assert provenance["files"]["model"]["sha256"] == _sha256(project.root / "model.ts.pt")
    assert Path(provenance["files"]["data"]["path"]) == (project.root / "data.csv").resolve()
    assert provenance["seed"] == 0
    assert provenance["python"] == platform.python_version()
    assert provenance["packages"]["torch"] == importlib.metadata.version("torch")
    assert provenance["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert datetime.fromisoformat(provenance["started"]) <= datetime.fromisoformat(provenance["finished"])

    measurements = result["measurements"]
    assert isinstance(measurements, list) and measurements
    for m in measurements:
        assert isinstance(m, dict) and set(m) == RESULT_KEYS, m
    assert {"data", "performance"} <= {m["check"] for m in measurements}


def test_spec_hash_is_the_hash_of_the_file_bytes(project, tmp_path, capsys):
    # an auditor checks the spec with sha256sum; Windows line endings must not change the hash
    spec = project.spec()
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n"))
    _run(spec, tmp_path / "out", capsys)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["provenance"]["spec_sha256"] == _sha256(spec)


def test_two_runs_give_identical_measurements(project, tmp_path, capsys):
    spec = project.spec()
    results = []
    for folder in ("first", "second"):
        code, _, stderr = _run(spec, tmp_path / folder, capsys)
        assert code == 0, stderr
        results.append(json.loads((tmp_path / folder / "result.json").read_text())["measurements"])
    assert any(m["ci"] is not None for m in results[0])  # the bootstrap ran, so its seed matters
    assert results[0] == results[1]


def test_a_failing_check_is_reported_and_the_others_kept(project, tmp_path, capsys, monkeypatch):
    def boom(ctx):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(checks.CHECKS, "boom", checks.CheckRecord("boom", boom))
    out = tmp_path / "out"
    code, _, stderr = _run(project.spec(), out, capsys)
    assert code == 2
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "boom" in line] == [
        "check error: boom: internal error: RuntimeError: kaboom"
    ]

    result = json.loads((out / "result.json").read_text())
    assert "boom" in result["checks_run"]
    assert [f["check"] for f in result["failures"]] == ["boom"]
    assert "kaboom" in result["failures"][0]["message"]
    measured = {m["check"] for m in result["measurements"]}
    assert measured == set(result["checks_run"]) - {"boom"}
    assert {"data", "performance"} <= measured
    assert "kaboom" in (out / "report.html").read_text()


def test_validate_a_good_spec(project, capsys):
    spec = project.spec()
    assert main(["validate", str(spec)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert captured.err == ""


def test_validate_a_bad_spec(project, capsys):
    spec = project.spec(statistics={"bootstrap": "many"})
    assert main(["validate", str(spec)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "statistics.bootstrap" in captured.err


def test_schema_is_json_describing_the_spec(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"data", "model"} <= set(schema["properties"])


@pytest.mark.parametrize("kind", ["tabular", "image", "predictions"])
def test_init_prints_a_starter_spec(kind, capsys):
    assert main(["init", "--kind", kind]) == 0
    starter = yaml.safe_load(capsys.readouterr().out)
    assert isinstance(starter, dict)
    assert {"name", "data", "model"} <= set(starter)
    assert starter["data"]["kind"] == ("image" if kind == "image" else "tabular")


def test_predictions_starter_validates_once_its_data_exists(tmp_path, capsys):
    assert main(["init", "--kind", "predictions"]) == 0
    starter = yaml.safe_load(capsys.readouterr().out)
    data, model = starter["data"], starter["model"]
    columns = [data["label"]["column"], *(s["column"] for s in data["sensitive"])]
    columns += [model["decision_column"], model["score_column"]]
    (tmp_path / "decisions.csv").write_text(",".join(columns) + "\n" + ",".join(["1"] * len(columns)) + "\n")
    data["path"] = "decisions.csv"
    config = config_from_dict(starter, base=tmp_path)
    assert config.model.kind == "predictions"
    assert config.data.path == str((tmp_path / "decisions.csv").resolve())


def test_paths_resolve_relative_to_the_spec_not_the_cwd(project, tmp_path, capsys, monkeypatch):
    spec = project.spec(model=project.model("safetensors"))  # the factory file is relative too
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"
    code, _, stderr = _run(os.path.relpath(spec, elsewhere), out, capsys)
    assert code == 0, stderr
    files = json.loads((out / "result.json").read_text())["provenance"]["files"]
    assert Path(files["data"]["path"]) == (project.root / "data.csv").resolve()
    assert Path(files["factory"]["path"]) == (project.root / "arch.py").resolve()
    assert list(elsewhere.iterdir()) == []


def test_console_script_and_python_dash_m(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAI_AUDIT_DEBUG"}
    helped = subprocess.run(
        [sys.executable, "-m", "audit", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: rai-audit")
    assert "Traceback" not in helped.stderr

    script = Path(sys.executable).with_name("rai-audit")
    assert script.exists(), f"console script missing beside {sys.executable}"
    out = tmp_path / "out"
    failed = subprocess.run(
        [str(script), "run", str(tmp_path / "missing.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    _assert_bad_input(failed.returncode, failed.stdout, failed.stderr, out, "missing.yaml", fix=True)


def test_predictions_with_unexpected_decision_values(project, tmp_path, capsys):
    """A decision column holding values outside the declared classes is bad input, named."""
    frame = project.frame.assign(decision=[0, 1, 3] * 100)
    frame.to_csv(project.root / "decided.csv", index=False)
    model = {"kind": "predictions", "decision_column": "decision"}
    spec = project.spec(model=model, data={"path": "decided.csv", "features": None})
    out = tmp_path / "out"
    line = _bad_run(spec, out, capsys, "decision column 'decision'", "'3' (100 rows)", fix=True)
    assert line.startswith("data error:")


@pytest.mark.parametrize("kind", ["tabular", "image", "predictions"])
def test_init_sections_validate_once_uncommented(kind, project, capsys):
    assert main(["init", "--kind", kind]) == 0
    head, marker, tail = capsys.readouterr().out.partition("# ---- Optional sections")
    assert marker
    uncommented = "\n".join(line[2:] if line.startswith("# ") else line for line in tail.splitlines()[1:])
    sections = yaml.safe_load(uncommented)
    assert {"checks", "thresholds", "gate", "model_card"} <= set(sections)
    assert not set(sections) & set(yaml.safe_load(head)), "a section would be declared twice"
    # the sections, uncommented, are valid in a real spec
    config = config_from_dict(yaml.safe_load(project.spec().read_text()) | sections, base=project.root)
    assert config.checks.robustness.rows == 500 and len(config.thresholds) == 3
    assert config.model_card.owners == "the team that answers for it"
