"""report.html: one self-contained, escaped file whose size does not depend on the row count."""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import escape

from audit import load_config, run_audit, write_report
from tests.conftest import make_frame

SECTIONS = {"summary", "data", "model", "performance", "provenance", "glossary"}
SCRIPT_PAYLOAD = "<script>alert(1)</script>"
NAME_PAYLOAD = '"><img src=x onerror=alert(1)>'


def _report(spec: Path, out: Path, capsys) -> str:
    result = run_audit(load_config(spec))
    assert not result.failures and result.gate.passed
    write_report(result, out)
    return (out / "report.html").read_text(encoding="utf-8")


def test_report_has_every_section_and_loads_nothing(project, tmp_path, capsys):
    html = _report(project.spec(), tmp_path / "out", capsys)
    assert SECTIONS <= set(re.findall(r'<section\b[^>]*\bid="([^"]+)"', html))
    remote = re.findall(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html, flags=re.IGNORECASE)
    assert remote == []
    assert not re.search(r"<link\b", html, flags=re.IGNORECASE)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, flags=re.IGNORECASE)
    assert (tmp_path / "out" / "report.html").stat().st_size < 200_000


def test_report_escapes_data_values_and_the_spec_name(project, tmp_path, capsys):
    frame = make_frame()
    frame.loc[::7, "sex"] = SCRIPT_PAYLOAD
    frame.to_csv(project.root / "data.csv", index=False)
    html = _report(project.spec(name=NAME_PAYLOAD), tmp_path / "out", capsys)
    assert SCRIPT_PAYLOAD not in html
    assert NAME_PAYLOAD not in html
    assert "<img" not in html
    # both were rendered, escaped: so the test would see them if escaping broke
    assert str(escape(SCRIPT_PAYLOAD)) in html
    assert str(escape(NAME_PAYLOAD)) in html


def test_report_escapes_class_names(project, tmp_path, capsys):
    classes = ["<i>no</i>", "<i>yes</i>"]
    label = {"column": "label", "classes": classes, "positive": classes[1], "map": {"0": classes[0], "1": classes[1]}}
    html = _report(project.spec(data={"label": label}), tmp_path / "out", capsys)
    assert "<i>" not in html
    assert str(escape(classes[1])) in html


def test_report_size_does_not_grow_with_rows(project, tmp_path, capsys):
    sizes = []
    for rows in (300, 30_000):
        make_frame(rows).to_csv(project.root / f"rows{rows}.csv", index=False)
        spec = project.spec(f"rows{rows}.yaml", data={"path": f"rows{rows}.csv"})
        out = tmp_path / f"out{rows}"
        html = _report(spec, out, capsys)
        assert f"{rows:,}" in html  # the report really describes this data set
        sizes.append((out / "report.html").stat().st_size)
    assert max(sizes) <= 1.1 * min(sizes), sizes
