"""The robustness section of report.html: what it shows, that it escapes, that its size is bounded."""

from __future__ import annotations

import re

import numpy as np

from audit.config import load_config
from audit.report import html
from audit.report.robustness_view import SKIPPED, _png_uri, robustness_view
from audit.results import AuditResult, CheckFailure, Reason
from audit.runner import run_audit
from tests.conftest import make_frame
from tests.test_robustness import image_spec, tabular_spec


def _section(page: str) -> str:
    start = page.index('<section id="robustness">')
    return page[start : page.index("</section>", start)]


def test_tabular_section_has_the_curve_table_groups_flags_and_feature_changes(tmp_path):
    result = run_audit(load_config(tabular_spec(tmp_path, robustness_check={"examples": 2})))
    page = html.render(result)
    assert '<a href="#robustness">Robustness</a>' in page
    section = _section(page)
    assert "How much an attacker must change an input to change the model" in section
    chart = re.search(r"<svg[^>]*>(.*?)</svg>", section, re.S).group(1)
    assert "<title>Robust accuracy against epsilon (standard deviations, Linf) for FGSM, PGD" in chart
    assert "#0072B2" in chart and "#E69F00" in chart  # Okabe-Ito, one colour per attack
    assert "robust accuracy</text>" in chart and "epsilon, standard deviations" in chart
    assert "By sex" in section and "sex=F" in section
    assert section.count('class="badge v-pass"') + section.count('class="badge v-warn"') == 4
    assert section.count("<figure>") == 2 and "Change (standard deviations)" in section
    assert "Under PGD, robust accuracy falls from" in section


def test_image_examples_are_png_data_uris(tmp_path):
    result = run_audit(load_config(image_spec(tmp_path)))
    section = _section(html.render(result))
    images = re.findall(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', section)
    assert len(images) == 9  # three examples: clean, adversarial, difference
    assert "difference (x" in section and "input units" in section


def test_png_encoder_round_trips_through_a_decoder():
    from PIL import Image
    import base64
    import io

    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    uri = _png_uri(pixels)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
    assert np.array_equal(decoded, pixels)


def test_user_text_is_escaped(tmp_path):
    frame = make_frame(n=300, seed=0)
    frame["sex"] = np.where(frame.sex == "F", "<script>alert(1)</script>", "M&M")
    frame.to_csv(tmp_path / "data.csv", index=False)
    section = _section(html.render(run_audit(load_config(tabular_spec(tmp_path)))))
    assert "<script>alert(1)</script>" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "M&amp;M" in section


def test_section_size_does_not_grow_with_rows(tmp_path):
    sizes, counts = [], []
    for n in (300, 1200):
        folder = tmp_path / str(n)
        folder.mkdir()
        make_frame(n=n, seed=0).to_csv(folder / "data.csv", index=False)
        result = run_audit(load_config(tabular_spec(folder, robustness_check={"rows": 250})))
        counts.append(sum(m.check == "robustness" for m in result.measurements))
        sizes.append(len(_section(html.render(result))))
    assert counts[0] == counts[1]
    assert abs(sizes[0] - sizes[1]) < 0.1 * sizes[0]


def test_a_failed_or_skipped_check_says_so():
    base = AuditResult(name="x", measurements=(), provenance={}, data={}, model={}, checks_run=("robustness",))
    failed = robustness_view(AuditResult(**{**base.__dict__, "failures": (CheckFailure("robustness", "boom"),)}))
    assert failed["failure"] == "boom" and not failed["measured"]
    skipped = robustness_view(AuditResult(**{**base.__dict__, "skipped": {"robustness": Reason.NO_MODEL.value}}))
    assert skipped["skipped"] == SKIPPED[Reason.NO_MODEL.value] and not skipped["measured"]
    # the view reads the check's code, never its warning text
    worded = robustness_view(AuditResult(**{**base.__dict__, "warnings": ("robustness: the check was skipped",)}))
    assert worded["skipped"] is None
