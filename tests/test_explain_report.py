"""The explanations section of report.html, its heatmap images, and thresholds on its metrics."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import numpy as np

from audit.config import load_config
from audit.report import html
from audit.report.explanations_view import explanations_view, heat_png, png_data_uri
from audit.results import AuditResult
from audit.runner import run_audit


def decode_png(uri: str) -> np.ndarray:
    """An independent reader for the 8-bit RGB, filter-0 PNGs the report writes."""
    data = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = {}, 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_png_round_trip_and_heatmap_colours():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    np.testing.assert_array_equal(decode_png(png_data_uri(pixels)), pixels)
    heat = decode_png(heat_png([0, 0, 0, 0], [99, -99, 0, 50], [2, 2], signed=True))
    assert tuple(heat[0, 0]) == (0xD5, 0x5E, 0x00) and tuple(heat[0, 1]) == (0x00, 0x72, 0xB2)
    assert tuple(heat[1, 0]) == (245, 245, 245)  # no attribution: the faint image, here blank


def test_report_section_from_a_stored_result(project):
    spec = project.spec(data={"sensitive": [{"column": "sex"}, {"column": "colour", "reference": "red"}]},
                        checks={"explanations": {"rows": 80, "costly_rows": 30, "steps": 16}},
                        thresholds=["sensitive_reliance(sensitive=colour) <= 0.99", "completeness_gap(method=ExactShapley) <= 0.01"])
    result = run_audit(load_config(spec))
    assert result.gate.passed, [f.reason for f in result.findings]
    stored = AuditResult.from_dict(json.loads(result.to_json()))
    view = explanations_view(stored)
    assert view["measured"] and view["primary"] == "IntegratedGradients"
    assert [m["name"] for m in view["methods"]] == ["IntegratedGradients", "ExactShapley"]
    assert any("colour is a model input" in s for s in view["sentences"])
    assert any("sex is not a model input" in s for s in view["sentences"])
    page = html.render(stored)
    section = page[page.index('<section id="explanations">') : page.index("</section>", page.index('<section id="explanations">'))]
    assert 'href="#explanations"' in page
    assert section.count("<svg") == 1 + len(view["local"])  # the importance chart and one waterfall per row
    assert "capped at costly_rows=30" in section
    assert "<script" not in section


def test_user_text_is_escaped_in_the_section(project):
    frame = project.frame.copy()
    frame["colour"] = frame["colour"].replace({"red": "<b>red</b>"})
    frame.to_csv(project.root / "data.csv", index=False)
    features = [dict(f) for f in load_config(project.spec()).data.model_dump()["features"]]
    features[3]["categories"] = ["blue", "green", "<b>red</b>"]
    spec = project.spec(data={"features": features, "sensitive": [{"column": "colour"}]},
                        checks={"explanations": {"rows": 40, "costly_rows": 10, "steps": 8, "trust": False}})
    page = html.render(run_audit(load_config(spec)))
    assert "<b>red</b>" not in page and "&lt;b&gt;red&lt;/b&gt;" in page
