"""Hostile and broken input (issue 18): a battery of bad inputs through the CLI.

Each case builds its files in a fresh project folder and runs one CLI command. The contract is
the same for all: exit code 2, exactly one line on stderr that names the problem, no traceback,
no "internal error" (that is kept for real bugs), nothing on stdout, and either no output folder
or the previous audit left byte for byte unchanged. ``test_no_internal_errors_over_the_battery``
counts internal errors over every case. Payload cases also check that their marker file (what
the payload would create) does not exist afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml

from audit.cli import main

MARKER = "PWNED"


@dataclass(frozen=True)
class Case:
    """``build`` writes what the case needs under the project root and returns the CLI argv."""

    name: str
    build: Callable[["object", Path], list[str]]
    needles: tuple[str, ...]
    previous_audit: bool = False


# ---------------------------------------------------------------- case builders


def _spec(project, out: Path, **extra) -> list[str]:
    return ["run", str(project.spec(**extra)), "--out", str(out)]


def _raw_spec(project, out: Path, text: str) -> list[str]:
    path = project.root / "raw.yaml"
    path.write_text(text)
    return ["run", str(path), "--out", str(out)]


def _good_spec_text(project) -> str:
    return project.spec("base.yaml").read_text()


def _filter(expression: str):
    def build(project, out):
        return _spec(project, out, data={"filter": expression.replace("MARK", str(project.root / MARKER))})

    return build


def _template(source: str, extra: dict[str, str] | None = None):
    def build(project, out):
        folder = project.root / "templates"
        folder.mkdir(exist_ok=True)
        (folder / "report.html.j2").write_text(source.replace("MARK", str(project.root / MARKER)))
        for name, target in (extra or {}).items():
            (project.root / "secret.txt").write_text("secret")
            (folder / name).symlink_to(project.root / target)
        return _spec(project, out, report={"templates": "templates"}, checks=FAST_CHECKS)

    return build


def _model(model_builder):
    def build(project, out):
        return _spec(project, out, model=model_builder(project))

    return build


def _factory(source: str):
    def build(project, out):
        (project.root / "factory_bad.py").write_text(source)
        return _spec(project, out, model=project.model("safetensors") | {"factory": "factory_bad.py:build"})

    return build


def _scripted(module: torch.nn.Module, name: str):
    def builder(project):
        torch.jit.script(module).save(str(project.root / name))
        return {"kind": "torchscript", "path": name}

    return builder


class ReturnsDict(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": x[:, :2]}


class ReturnsOneRow(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:1, :2]


def _export_given(kind: str):
    def builder(project):
        model = project.model(kind)
        return {"kind": "export", "path": model["path"]}

    return builder


def _flipped_torchscript(project):
    project.model("torchscript")
    source = project.root / "model.ts.pt"
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = next(i for i in archive.infolist() if "/data/0" in i.filename)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + 5] ^= 0x40  # one bit of one weight
    (project.root / "flipped.pt").write_bytes(bytes(data))
    return {"kind": "torchscript", "path": "flipped.pt"}


def _images(arrays: dict[str, np.ndarray] | None, *, truncate: bool = False):
    def build(project, out):
        path = project.root / "images.npz"
        np.savez(path, **(arrays or {"images": np.zeros((4, 1, 2, 2), np.float32), "labels": np.zeros(4, np.int64)}))
        if truncate:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        spec = {
            "name": "images",
            "data": {"kind": "image", "path": "images.npz", "value_range": [0, 1], "label": {"classes": [0, 1]}},
            "model": project.model("torchscript"),
        }
        return _raw_spec(project, out, yaml.safe_dump(spec))

    return build


def _header_only(project, out):
    (project.root / "header.csv").write_text(",".join(project.frame.columns) + "\n")
    return _spec(project, out, data={"path": "header.csv"})


def _alias_bomb(project, out):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return _raw_spec(project, out, "\n".join(lines) + "\n" + _good_spec_text(project))


def _text_edit(edit: Callable[[str], str]):
    def build(project, out):
        return _raw_spec(project, out, edit(_good_spec_text(project)))

    return build


def _gate_result(change: Callable[[dict], None]):
    def build(project, out):
        result = {
            "schema_version": _schema_version(),
            "name": "x",
            "provenance": {},
            "measurements": [{"check": "performance", "metric": "accuracy", "group": None, "value": 0.9,
                              "ci": [0.8, 1.0], "n": 10, "params": {}}],
            "thresholds": [{"metric": "accuracy", "min": 0.5}],
            "gate_settings": {},
        }
        change(result)
        path = project.root / "stored" / "result.json"
        path.parent.mkdir()
        path.write_text(json.dumps(result))
        return ["gate", str(path)]

    return build


def _schema_version():
    from audit.results import SCHEMA_VERSION

    return SCHEMA_VERSION


def _non_audit_folder(project, out):
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return _spec(project, out)


def _binary(project) -> Path:
    path = project.root / "binary.yaml"
    path.write_bytes(b"name: \xff\xfe\x00 broken\n")
    return path


def _long_path(project, out):
    return _spec(project, out, data={"path": "d" * 5000 + ".csv"})


def _long_out(project, out):
    return ["run", str(project.spec()), "--out", str(out / ("o" * 300))]


def _payload_pickle(project) -> Path:
    path = project.root / "payload.pt"
    torch.save(Payload(str(project.root / MARKER)), path)
    return path


class Payload:
    """Unpickling this touches a marker file: proof that code from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload_model(kind: str, **extra):
    def build(project, out):
        _payload_pickle(project)
        model = {"kind": kind, "path": "payload.pt"} | extra
        return _spec(project, out, model=model)

    return build


def _yaml_python_tag(project, out):
    return _raw_spec(project, out, f"!!python/object/apply:os.system ['touch {project.root / MARKER}']\n")


def _npz_object_payload(project, out):
    marker = str(project.root / MARKER)
    images = np.empty(2, dtype=object)
    images[:] = [Payload(marker), Payload(marker)]
    np.savez(project.root / "images.npz", images=images, labels=np.zeros(2, np.int64))
    spec = {"name": "images", "data": {"kind": "image", "path": "images.npz", "value_range": [0, 1], "label": {"classes": [0, 1]}},
            "model": project.model("torchscript")}
    return _raw_spec(project, out, yaml.safe_dump(spec))


def _features_file_python_tag(project, out):
    (project.root / "features.yaml").write_text(f"features: !!python/object/apply:os.system ['touch {project.root / MARKER}']\n")
    return _spec(project, out, data={"features": None, "features_file": "features.yaml"})


def _thresholds_file(text: str):
    def build(project, out):
        result = project.root / "stored" / "result.json"
        result.parent.mkdir()
        result.write_text(json.dumps({"schema_version": _schema_version(), "name": "x", "provenance": {}, "measurements": []}))
        (project.root / "thresholds.yaml").write_text(text)
        return ["gate", str(result), "--thresholds", str(project.root / "thresholds.yaml")]

    return build


def _out_is_a_file(project, out):
    out.write_text("a file")
    return _spec(project, out)


FAST_CHECKS = {"explanations": {"enabled": False}, "robustness": {"enabled": False}}


CASES = [
    # 1. code execution from the spec
    Case("filter-at-name", _filter("@pd.io.common.os.system('touch MARK') == 0"), ("data.filter", "'@'")),
    Case("filter-attribute", _filter("sex.str.len() > 0"), ("data.filter", "'.'")),
    Case("filter-call", _filter("__import__('os') == 0"), ("data.filter", "__import__")),
    Case("filter-lambda", _filter("(lambda: 1) == 1"), ("data.filter", "Lambda")),
    Case("filter-unknown-column", _filter("sexx == 'F'"), ("data.filter", "'sexx'", "did you mean 'sex'")),
    Case("filter-keeps-nothing", _filter("age > 1000"), ("data.filter", "keeps no rows")),
    Case("filter-type-mismatch", _filter("sex > 3"), ("data.filter", "cannot be evaluated")),
    Case("template-ssti", _template("{{ cycler.__init__.__globals__.os.popen('touch MARK').read() }}"), ("report.templates",)),
    Case("template-ssti-mro", _template("{{ ''.__class__.__mro__[1].__subclasses__() }}"), ("report.templates",)),
    Case("template-traversal", _template("{% include '../secret.txt' %}"), ("report.templates", "TemplateNotFound")),
    Case("template-symlink-out", _template("{% include 'link.j2' %}", {"link.j2": "secret.txt"}), ("report.templates", "link.j2")),
    Case("template-syntax", _template("{% if %}"), ("report.templates", "TemplateSyntaxError")),
    Case("yaml-python-tag", _yaml_python_tag, ("malformed YAML",)),
    Case("pickle-as-state-dict", _payload_model("state_dict", factory="arch.py:build"), ("payload.pt", "allow_pickle")),
    Case("pickle-as-torchscript", _payload_model("torchscript"), ("payload.pt", "torch.save file")),
    Case("pickle-as-export", _payload_model("export"), ("payload.pt", "torch.save file")),
    Case("pickle-as-onnx", _payload_model("onnx"), ("payload.pt", "ONNX")),
    Case("pickle-without-opt-in", _payload_model("pickle"), ("allow_pickle: true",)),
    # 2. tracebacks
    Case("export-given-torchscript", _model(_export_given("torchscript")), ("TorchScript archive", "kind: torchscript")),
    Case("export-given-pickle", _model(_export_given("pickle")), ("torch.save file", "not a torch.export program")),
    # 3. internal errors from the user's input
    Case("factory-raises", _factory("def build():\n    raise ValueError('no such layer')\n"),
         ("factory factory_bad.py:build raised ValueError", "no such layer", "line 2")),
    Case("factory-syntax", _factory("def build(:\n"), ("factory_bad.py", "SyntaxError", "line 1")),
    Case("factory-import", _factory("import no_such_module_xyz\n\ndef build():\n    pass\n"), ("factory_bad.py", "no_such_module_xyz")),
    Case("model-returns-dict", _model(_scripted(ReturnsDict(), "dict.pt")), ("returned dict",)),
    Case("model-drops-rows", _model(_scripted(ReturnsOneRow(), "one.pt")), ("returned 1 rows", "one row per input")),
    Case("images-empty", _images({"images": np.zeros((0, 1, 2, 2), np.float32), "labels": np.zeros(0, np.int64)}), ("holds no images",)),
    Case("images-truncated-npz", _images(None, truncate=True), ("images.npz", "truncated or corrupted")),
    Case("seed-huge", lambda p, o: _spec(p, o, seed=2**70), ("seed",)),
    Case("seed-negative", lambda p, o: _spec(p, o, seed=-1), ("seed", "greater than or equal to 0")),
    Case("threshold-nan", lambda p, o: _spec(p, o, thresholds=[{"metric": "accuracy", "min": float("nan")}]), ("thresholds[0].min", "finite")),
    Case("threshold-inf", lambda p, o: _spec(p, o, thresholds=[{"metric": "accuracy", "max": float("inf")}]), ("thresholds[0].max", "finite")),
    Case("threshold-inf-text", lambda p, o: _spec(p, o, thresholds=["accuracy >= 1e999"]), ("thresholds[0]", "finite")),
    Case("threshold-5000-digits", _text_edit(lambda t: t + "thresholds:\n  - metric: accuracy\n    min: " + "9" * 5000 + "\n"), ("5000 digits",)),
    Case("threshold-long-text", lambda p, o: _spec(p, o, thresholds=["accuracy >= 0.5" + " " * 100_000 + "x"]), ("thresholds[0]", "characters long")),
    Case("yaml-deeply-nested", _text_edit(lambda t: t + "description: " + "[" * 3000 + "]" * 3000 + "\n"), ("nested",)),
    Case("yaml-duplicate-key", _text_edit(lambda t: t + "name: second name\n"), ("duplicate key 'name'", "line")),
    Case("yaml-duplicate-nested-key", _text_edit(lambda t: t.replace("  kind: tabular\n", "  kind: tabular\n  kind: image\n", 1)),
         ("duplicate key 'kind'",)),
    Case("path-too-long", _long_path, ("data.path",)),
    Case("out-name-too-long", _long_out, ("output", "too long")),
    Case("gate-text-values", _gate_result(lambda r: r["measurements"][0].update(value="high")), ("result.json",)),
    Case("gate-malformed-interval", _gate_result(lambda r: r["measurements"][0].update(ci=[0.5])), ("result.json",)),
    Case("gate-interval-text", _gate_result(lambda r: r["measurements"][0].update(ci="wide")), ("result.json",)),
    Case("csv-header-only", _header_only, ("header.csv", "no data rows")),
    Case("torchscript-flipped-byte", _model(_flipped_torchscript), ("flipped.pt", "corrupted")),
    # 4. denial of service, refused before any work
    Case("yaml-alias-bomb", _alias_bomb, ("expands to more than",)),
    Case("bootstrap-1e9", lambda p, o: _spec(p, o, statistics={"bootstrap": 10**9}), ("statistics.bootstrap",)),
    Case("explanation-rows-1e9", lambda p, o: _spec(p, o, checks={"explanations": {"rows": 10**9}}), ("checks.explanations.rows",)),
    Case("costly-rows-1e5", lambda p, o: _spec(p, o, checks={"explanations": {"costly_rows": 100_000}}), ("checks.explanations.costly_rows",)),
    Case("ig-steps-1e6", lambda p, o: _spec(p, o, checks={"explanations": {"steps": 10**6}}), ("checks.explanations.steps",)),
    Case("max-groups-10000", lambda p, o: _spec(p, o, checks={"fairness": {"max_groups": 10_000}}), ("checks.fairness.max_groups",)),
    Case("intersections-all-eight",
         lambda p, o: _spec(p, o, data={"sensitive": [{"column": c} for c in ("sex", "colour", "x3")] + [{"column": "age", "bins": [0, b, 200]} for b in (20, 30, 40, 50, 60)]}),
         ("intersections", "247 crosses", "pairs")),
    # more of the same kinds
    Case("npz-object-array-payload", _npz_object_payload, ("images.npz", "cannot read")),
    Case("features-file-python-tag", _features_file_python_tag, ("features.yaml", "malformed YAML")),
    Case("thresholds-file-duplicate-key", _thresholds_file("thresholds:\n  - accuracy >= 0.5\nthresholds: []\n"), ("duplicate key 'thresholds'",)),
    Case("spec-is-a-folder", lambda p, o: ["run", str(p.root), "--out", str(o)], ("spec",)),
    Case("spec-not-utf8", lambda p, o: _raw_spec(p, o, "") and ["run", str(_binary(p)), "--out", str(o)], ("cannot read spec",)),
    Case("spec-empty", lambda p, o: _raw_spec(p, o, ""), ("mapping",)),
    Case("data-path-is-a-folder", lambda p, o: _spec(p, o, data={"path": "."}), ("data",)),
    Case("sample-seed-huge", lambda p, o: _spec(p, o, data={"sample": {"n": 10, "seed": 2**80}}), ("data.sample.seed",)),
    Case("epsilon-nan", lambda p, o: _spec(p, o, checks={"robustness": {"epsilons": [float("nan")]}}), ("checks.robustness.epsilons",)),
    Case("filter-nested-deep", _filter("not " * 490 + "age > 1"), ("data.filter", "nested too deeply")),
    Case("filter-too-long", _filter("age > 1 and " * 300 + "age > 2"), ("data.filter", "characters long")),
    Case("out-is-a-file", _out_is_a_file, ("not a folder",)),
    # 5. the output folder
    Case("out-not-an-audit", _non_audit_folder, ("notes.txt", "--force")),
    Case("previous-audit-kept-on-error", _filter("sexx == 1"), ("data.filter",), previous_audit=True),
]

RESULTS: dict[str, str] = {}


def _snapshot(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    if folder.is_file():
        return {folder.name: hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in folder.iterdir()}


def run_case(case: Case, root: Path, capsys, previous: Path | None) -> tuple[int, str, str, Path]:
    from tests.conftest import Project

    project = Project(root)
    project.spec("base.yaml")
    out = root / "out"
    argv = case.build(project, out)
    if previous is not None:
        shutil.copytree(previous, out)
    before = _snapshot(out)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    RESULTS[case.name] = captured.err
    after = _snapshot(out)
    assert after == before, f"the output folder changed: {before} -> {after}"
    siblings = [p.name for p in root.iterdir() if p.name.startswith(".out.")]
    assert siblings == [], f"temporary folders left: {siblings}"
    return code, captured.out, captured.err, project.root


@pytest.fixture(scope="module")
def previous_audit(tmp_path_factory) -> Path:
    """A real audit folder, for cases that must leave it unchanged."""
    from tests.conftest import Project

    root = tmp_path_factory.mktemp("previous")
    project = Project(root)
    spec = project.spec(checks=FAST_CHECKS, statistics={"bootstrap": 0})
    assert main(["run", str(spec), "--out", str(root / "audit"), "--quiet"]) == 0
    return root / "audit"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, tmp_path, capsys, request):
    previous = request.getfixturevalue("previous_audit") if case.previous_audit else None
    code, stdout, stderr, root = run_case(case, tmp_path, capsys, previous)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"expected one line on stderr, got {stderr[:2000]!r}"
    assert "internal error" not in stderr, stderr
    for needle in case.needles:
        assert needle in stderr, f"{needle!r} not in {stderr!r}"
    assert len(stderr) <= 2100, "an error line must not quote the whole input"
    assert stdout == ""
    assert not (root / MARKER).exists(), "a payload ran"


def test_no_internal_errors_over_the_battery(tmp_path, capsys, request):
    """Every case, counted together (cases not yet run in this session run here)."""
    for case in CASES:
        if case.name not in RESULTS:
            folder = tmp_path / case.name
            folder.mkdir()
            previous = request.getfixturevalue("previous_audit") if case.previous_audit else None
            run_case(case, folder, capsys, previous)
    internal = {name: err for name, err in RESULTS.items() if "internal error" in err or "Traceback" in err}
    assert internal == {}
    assert len(RESULTS) >= len(CASES)
