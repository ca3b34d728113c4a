"""The regulatory packs in a real browser: the LL144 and EU AI Act sections load quietly, their
nav links resolve, and category names and provider text from the spec never run as script."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.cli import main
from tests import browser

SEX_PAYLOAD = "<script>window.__xss=21</script>"
RACE_PAYLOAD = '"><img src=x onerror="window.__xss=22">'
PURPOSE_PAYLOAD = "<svg onload=window.__xss=23>"


@pytest.fixture(scope="module", autouse=True)
def _chromium():
    browser.require_chromium()


def _hostile_profiles(root):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"sex": rng.choice(["Male", SEX_PAYLOAD], n), "race": rng.choice(["A", RACE_PAYLOAD], n),
                          "selected": rng.integers(0, 2, n), "score": rng.random(n)})
    frame["label"] = frame.selected
    frame.to_csv(root / "applicants.csv", index=False)
    spec = {
        "name": "hostile packs", "data": {"kind": "tabular", "path": "applicants.csv", "label": {"column": "label", "classes": [0, 1]},
                                          "sensitive": [{"column": "sex"}, {"column": "race"}]},
        "model": {"kind": "predictions", "decision_column": "selected", "decision_positive": [1]},
        "statistics": {"bootstrap": 10},
        "report": {"profiles": ["ll144", "eu_ai_act"], "eu_ai_act": {"intended_purpose": PURPOSE_PAYLOAD},
                   "ll144": {"sex": {"column": "sex", "categories": ["Male", SEX_PAYLOAD]},
                             "race_ethnicity": {"column": "race", "categories": ["A", RACE_PAYLOAD]}}},
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["run", str(root / "spec.yaml"), "--out", str(root / "out"), "--quiet"]) == 0
    return root / "out"


def test_profile_sections_load_quietly_and_never_run_injected_text(tmp_path):
    from playwright.sync_api import sync_playwright

    out = _hostile_profiles(tmp_path)
    assert json.loads((out / "result.json").read_text())["provenance"]["profiles"]["names"] == ["ll144", "eu_ai_act"]
    with sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        seen = browser.visit(chromium, out / "report.html")
        try:
            page = seen.page
            targets = page.eval_on_selector_all("nav a", "links => links.map(a => a.getAttribute('href'))")
            assert "#ll144" in targets and "#eu-ai-act" in targets
            for section in ("ll144", "eu-ai-act"):
                assert page.locator(f"section[id='{section}'] > h2").count() == 1
                assert page.locator(f"section[id='{section}'] > p.lead").count() == 1
            page.evaluate("document.querySelectorAll('*').forEach(e => e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})))")
            page.wait_for_timeout(200)
            assert page.evaluate("window.__xss") is None
            text = page.locator("section[id='ll144']").inner_text() + page.locator("section[id='eu-ai-act']").inner_text()
            for payload in (SEX_PAYLOAD, RACE_PAYLOAD, PURPOSE_PAYLOAD):
                assert payload in text, payload
            seen.assert_quiet()
        finally:
            browser.close(seen)
            chromium.close()
