"""Issue 18, what must keep holding and what now holds: the safe filter agrees with pandas,
user templates are sandboxed, the output folder is replaced whole, hostile text stays inert in
every output, terminals never receive raw control bytes, and Ctrl-C is one line.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import groups, output
from audit.cli import main
from audit.errors import DataError, OutputError
from audit.filters import apply_filter
from audit.results import read_result

FAST_CHECKS = {"explanations": {"enabled": False}, "robustness": {"enabled": False}}
XSS = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
JS_LINK = "[click](javascript:alert(1))"


# ---------------------------------------------------------------- the filter grammar


SAFE_FILTERS = [
    "age >= 40",
    "age >= 40 and sex == 'F'",
    "not (age < 30) or colour == \"red\"",
    "colour in ['red', 'blue']",
    "colour not in ['red']",
    "x1 * 2 - x2 > 1.5",
    "20 < age <= 60",
    "-x1 < -1 and x3 % 2 == 0",
    "x3 // 2 == 1 or x2 / 4 > 0.5",
    "sex != 'M' and (x3 == 0 or x3 == 4)",
]


@pytest.mark.parametrize("expression", SAFE_FILTERS)
def test_filter_keeps_the_rows_pandas_query_keeps(project, expression):
    # pandas' own query is the independent reference for the grammar both accept
    frame = project.frame
    expected = frame.query(expression, engine="python").index.tolist()
    assert apply_filter(frame, expression).index.tolist() == expected
    assert expected  # a filter that keeps nothing would make the comparison weak


def test_filter_missing_values_and_backticks():
    frame = pd.DataFrame({"my col": [1.0, None, 3.0], "b": ["x", None, "y"]})
    assert apply_filter(frame, "isna(`my col`)").index.tolist() == [1]
    assert apply_filter(frame, "notna(b) and `my col` > 1").index.tolist() == [2]


@pytest.mark.parametrize(
    ("expression", "token"),
    [
        ("@os.system('x') == 0", "'@'"),
        ("age.__class__ == 1", "'.'"),
        ("open('/etc/passwd') == 1", "'open'"),
        ("age ** 2 > 1", "BinOp"),
        ("age if age else age", "IfExp"),
        ("[c for c in age]", "ListComp"),
        ("age == {1: 2}", "Dict"),
    ],
)
def test_filter_refuses_everything_outside_the_grammar_naming_the_token(project, expression, token):
    with pytest.raises(DataError) as error:
        apply_filter(project.frame, expression)
    assert token in str(error.value) and str(error.value).count("\n") == 0


# ---------------------------------------------------------------- user templates


@pytest.fixture(scope="module")
def stored_result(tmp_path_factory):
    from tests.conftest import Project

    root = tmp_path_factory.mktemp("stored")
    project = Project(root)
    spec = project.spec(checks=FAST_CHECKS, statistics={"bootstrap": 0})
    assert main(["run", str(spec), "--out", str(root / "audit"), "--quiet"]) == 0
    return read_result(root / "audit" / "result.json")


def test_an_ordinary_user_template_still_renders_in_the_sandbox(stored_result, tmp_path):
    from audit.report import html

    (tmp_path / "report.html.j2").write_text("<h1>{{ view.result.name | upper }}</h1>{{ view.headline | length }}")
    page = html.render(stored_result, templates=tmp_path)
    assert page.startswith("<h1>TEST AUDIT</h1>")


# ---------------------------------------------------------------- the output folder


def _audit_files(folder: Path, marker: str) -> None:
    folder.mkdir(parents=True)
    for name in ("result.json", "report.html", "junit.xml", "summary.md", "model_card.md", "compare.json", "report.pdf"):
        (folder / name).write_text(f"{marker} {name}")


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_a_new_run_replaces_the_previous_audit_whole(project, tmp_path, capsys):
    out = tmp_path / "out"
    _audit_files(out, "old")
    code = main(["run", str(project.spec(checks=FAST_CHECKS)), "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "model_card.md", "report.html", "result.json", "summary.md"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _failing_second_call(real, failure: BaseException):
    calls = []

    def wrapper(*args):
        calls.append(args)
        if len(calls) == 2:
            raise failure
        return real(*args)

    return wrapper


def test_interrupt_during_the_swap_restores_the_previous_audit(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _audit_files(out, "old")
    before = _contents(out)
    # the second rename: the previous audit is aside, the new one is not in place yet
    monkeypatch.setattr(output.os, "rename", _failing_second_call(os.rename, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        output.write_audit(out, {"result.json": "new", "report.html": "new"})
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_disk_full_or_interrupt_while_staging_leaves_no_temporary_files(tmp_path, monkeypatch, failure):
    out = tmp_path / "out"
    _audit_files(out, "old")
    before = _contents(out)
    monkeypatch.setattr(output, "_write", _failing_second_call(output._write, failure))
    expected = OutputError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as error:
        output.write_audit(out, {"result.json": "new", "report.html": "new", "junit.xml": "new"})
    if expected is OutputError:
        assert "No space left" in str(error.value)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


KILLED_MID_SWAP = """
import os, signal, sys
from pathlib import Path
from audit import output
renames = []
def rename(source, target):
    renames.append(source)
    if len(renames) == 2:  # the previous audit is aside, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace(source, target)
output.os.rename = rename
output.write_audit(Path(sys.argv[1]), {"result.json": "killed", "report.html": "killed"})
"""


def test_a_writer_killed_mid_swap_is_recovered_by_the_next_write(tmp_path):
    # SIGKILL skips every clean-up: the previous audit is left renamed aside and the staging folder stays
    out = tmp_path / "out"
    _audit_files(out, "old")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SWAP, str(out)], env=env, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    assert left == [".out.previous", ".out.staging"]  # what the kill left: no "out"
    output.prepare_output_dir(out)
    assert not out.exists()
    output.write_audit(out, {"result.json": "new"})
    assert _contents(out) == {"result.json": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_live_writers_folders_are_left_alone(tmp_path):
    out = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".out.staging-{sleeper.pid}-abc"
        busy.mkdir()
        output.write_audit(out, {"result.json": "new"})
        assert busy.exists() and _contents(out) == {"result.json": "new"}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_writers_previous_audit_comes_back_when_the_folder_is_gone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    out = tmp_path / "out"
    _audit_files(tmp_path / f".out.previous-{pid}-0a1b2c3d", "old")
    before = _contents(tmp_path / f".out.previous-{pid}-0a1b2c3d")
    output._recover_killed_writes(out)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_of_other_files_needs_force(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="--force"):
        output.prepare_output_dir(out)
    with pytest.raises(OutputError, match="--force"):
        output.write_audit(out, {"result.json": "{}"})
    assert (out / "thesis.tex").read_text() == "years of work"
    output.write_audit(out, {"result.json": "{}"}, force=True)
    assert _contents(out) == {"result.json": "{}"}


def test_preparing_creates_nothing(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    assert output.prepare_output_dir(out) == out
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- hostile text in every output


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory):
    """A run whose spec name, group values, threshold name and model-card prose are payloads."""
    from tests.conftest import Project

    root = tmp_path_factory.mktemp("hostile")
    project = Project(root)
    frame = project.frame.copy()
    frame["sex"] = np.where(frame["sex"] == "F", IMG, "M\x1b[2J")
    frame.to_csv(root / "data.csv", index=False)
    spec = project.spec(
        checks=FAST_CHECKS,
        thresholds=[{"metric": "accuracy", "min": 0.1, "name": f"{XSS} {JS_LINK}"}],
        model_card={"overview": f"{JS_LINK} {XSS} <a href='javascript:alert(1)'>x</a>", "caveats": "![i](data:text/html,x) # heading"},
    )
    raw = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump(raw | {"name": XSS}))
    code = main(["run", str(spec), "--out", str(root / "out"), "--quiet"])
    assert code == 0
    return root / "out"


def test_no_payload_reaches_the_html_report_as_markup(hostile_audit):
    page = (hostile_audit / "report.html").read_text()
    for payload in (XSS, IMG, "href='javascript", 'href="javascript'):
        assert payload not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("name", ["summary.md", "model_card.md"])
def test_markdown_outputs_render_no_html_and_no_unsafe_links(hostile_audit, name):
    from markdown_it import MarkdownIt

    text = (hostile_audit / name).read_text()
    # html=True is the lax setting: raw HTML passes through, so only escaping keeps it out
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered  # no tag, link or image
    assert "javascript:" not in text and "data:" not in text  # nor for a renderer that links bare schemes


def test_compare_html_escapes_the_payloads(hostile_audit, tmp_path, capsys):
    code = main(["compare", str(hostile_audit), str(hostile_audit), "--out", str(tmp_path)])
    capsys.readouterr()
    assert code == 0
    page = (tmp_path / "compare.html").read_text()
    assert XSS not in page and IMG not in page


def test_junit_stays_valid_xml(hostile_audit):
    from junitparser import JUnitXml

    path = hostile_audit / "junit.xml"
    ElementTree.parse(path)
    suites = list(JUnitXml.fromfile(str(path)))
    assert suites and XSS in path.read_text(encoding="utf-8").replace("&lt;", "<").replace("&gt;", ">")


# ---------------------------------------------------------------- the terminal


def _cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "audit", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_control_characters_from_the_spec_reach_the_terminal_escaped(project, tmp_path):
    spec = project.spec(thresholds=["accuracy >= 0.5"])
    text = spec.read_text().replace("metric: accuracy", 'metric: "accuracy\\e]0;owned\\a\\e[31m"')
    text = text.replace("- accuracy >= 0.5", '- "accuracy\\e]0;owned\\a\\e[31m >= 0.5"')
    spec.write_text(text)
    process = _cli(["validate", str(spec)], tmp_path)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 2
    assert "\x1b" not in stderr + stdout and "\x07" not in stderr + stdout
    assert "\\x1b" in stderr and stderr.count("\n") == 1


def test_ctrl_c_while_starting_is_one_line(project, tmp_path):
    process = _cli(["run", str(project.spec()), "--out", str(tmp_path / "out")], tmp_path)
    time.sleep(0.5)  # inside the first seconds: Python is importing torch
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, stderr)
    assert stderr.strip() in ("", "interrupted")
    assert not (tmp_path / "out").exists()


SWALLOWED_INTERRUPT = """
import os, signal, sys, time, weakref
if sys.argv[1] == "installed":
    from audit import interrupt
    interrupt.install()
class Held: pass
held = Held()
def dropped(ref):  # a weakref callback, as importlib runs each time it drops a module lock
    os.kill(os.getpid(), signal.SIGINT)  # Python raises it here, where it can only be ignored
    sum(range(1000))
ref = weakref.ref(held, dropped)
try:
    del held
    for _ in range(50):
        time.sleep(0.1)
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("hook", ["default", "installed"])
def test_ctrl_c_inside_a_weakref_callback_still_stops(hook, tmp_path):
    # the flake seen in CI: SIGINT during torch's import landed in importlib's lock callback, the
    # KeyboardInterrupt was ignored and the run went on to write its report and exit 0
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", SWALLOWED_INTERRUPT, hook], env=env, capture_output=True,
                          text=True, timeout=60)
    expected = "interrupted" if hook == "installed" else "finished"  # "default" shows the problem exists
    assert done.stdout.strip() == expected, (done.stdout, done.stderr)


def test_an_interrupt_swallowed_by_a_library_publishes_nothing(project, tmp_path, monkeypatch, capsys):
    from audit import interrupt

    monkeypatch.setattr(interrupt, "_received", True)  # Ctrl-C was pressed; no exception reached us
    code = main(["run", str(project.spec(checks=FAST_CHECKS)), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- named problems that are not errors


def test_one_class_labels_warn(project, tmp_path, capsys):
    frame = project.frame.copy()
    frame["label"] = 1
    frame.to_csv(project.root / "data.csv", index=False)
    code = main(["run", str(project.spec(checks=FAST_CHECKS)), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    warnings = json.loads((tmp_path / "out" / "result.json").read_text())["warnings"]
    assert any("every label is class '1'" in w for w in warnings)


def test_image_robustness_on_a_small_slice_runs(capsys, tmp_path):
    # rows: 50 left a slice where no attack succeeded: "cannot reshape tensor of 0 elements"
    from audit.resources import bundled

    spec = yaml.safe_load((bundled("examples") / "digits_cnn.yaml").read_text())
    base = bundled("examples")
    for key in ("path", "metadata"):
        spec["data"][key] = str((base / spec["data"][key]).resolve())
    spec["model"]["path"] = str((base / spec["model"]["path"]).resolve())
    module, _, function = spec["model"]["factory"].rpartition(":")
    spec["model"]["factory"] = f"{(base / module).resolve()}:{function}"
    spec["checks"] = {"performance": {"enabled": False}, "fairness": {"enabled": False},
                      "explanations": {"enabled": False}, "robustness": {"rows": 50}}
    spec["thresholds"] = []
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["failures"] == [] and any(m["check"] == "robustness" for m in result["measurements"])


# ---------------------------------------------------------------- cost linear in groups


def test_group_tables_match_a_dense_sum():
    rng = np.random.default_rng(0)
    cell_to_group = rng.integers(0, 7, 40)
    cell_to_group[:7] = np.arange(7)  # every group holds a cell, as groupings guarantee
    tables = rng.integers(0, 5, (3, 40, 2, 2))
    grouping = groups.Grouping(("g",), cell_to_group, tuple({"g": str(i)} for i in range(7)))
    expected = np.zeros((3, 7, 2, 2))
    np.add.at(expected, (slice(None), cell_to_group), tables)
    assert np.array_equal(groups.group_tables(tables, grouping), expected)


def test_wide_sensitive_columns_do_not_overflow_the_cell_codes():
    # eight columns of 1,000 values: 1000**8 overflows a mixed-radix int64 code
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"c{i}": rng.integers(0, 1000, 5000).astype(str) for i in range(8)})
    frame.iloc[:1000, 0] = [str(v) for v in range(1000)]
    cells = groups.code_cells(frame)
    assert cells.count == len(frame.drop_duplicates())
    decoded = cells.values.iloc[cells.codes].reset_index(drop=True)
    assert decoded.equals(frame.astype(str).reset_index(drop=True))


def test_a_signed_audit_with_a_profile_pack_is_replaced_without_force(project, tmp_path, capsys):
    # every file rai-audit itself writes into an audit's folder marks it as an audit's
    from audit import signing

    out = tmp_path / "out"
    spec = project.spec(checks=FAST_CHECKS, statistics={"bootstrap": 0})
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--profile", "eu_ai_act"]) == 0
    private, _ = signing.generate_keys(tmp_path / "key")
    signing.sign(out, private)
    assert {"annex_iv.md", "manifest.json", "manifest.sig"} <= {p.name for p in out.iterdir()}
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "model_card.md", "report.html", "result.json", "summary.md"]
