"""report.html in a real browser: it loads silently and offline, its links and widgets work, it
prints, and no string from the data or the spec can run as script.

Chromium is Debian's (/usr/bin/chromium), driven by playwright. Without it the module is
skipped, except under CI (the CI variable set), where that is a failure. Screenshots and a
printed PDF land in reports/browser/ for a person to look at.
"""

from __future__ import annotations

import html
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from audit.cli import main
from tests import browser
from tests.conftest import make_frame

DEMOS = ("adult_mlp", "digits_cnn")
CORE_SECTIONS = ("summary", "data", "model", "performance", "fairness", "provenance", "glossary")

# one payload per user-controlled string; each sets its own number, so a failure names the hole
VALUE = "<script>window.__xss=1</script>"
GROUP = '"><img src=x onerror="window.__xss=2">'
COLUMN = "region <svg onload=window.__xss=3>"
SPEC_TEXT = "<script>window.__xss=4</script>"
MODEL = '"><img src=x onerror=window.__xss=5>'
CLASS = "<b onmouseover=window.__xss=6>x</b>"
THRESHOLD = "accuracy <script>window.__xss=7</script>"
DATA_FILE = 'data"><img src=x onerror=window.__xss=8>.csv'
SPEC_FILE = 'spec"><svg onload=window.__xss=9>.yaml'
PAYLOADS = (VALUE, GROUP, COLUMN, SPEC_TEXT, MODEL, CLASS, THRESHOLD, DATA_FILE, SPEC_FILE)
RAW_TAG = re.compile(r"<\s*(script|img|svg|b)\b", re.IGNORECASE)
JUNIT_TAGS = {"testsuites", "testsuite", "properties", "property", "testcase", "failure", "error", "skipped", "system-out"}


@pytest.fixture(scope="module", autouse=True)
def _chromium():
    browser.require_chromium()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = browser.launch(playwright)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Both demo reports, rendered once for the module (about 10 s)."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def report(request, chromium, demo):
    seen = browser.visit(chromium, demo / request.param / "report.html")
    yield seen
    browser.close(seen)


def _show(capsys, what: str, path: Path) -> None:
    with capsys.disabled():
        print(f"\n{what}: {path}")


# ---------------------------------------------------------------- the demo reports


@pytest.mark.parametrize("report", DEMOS, indirect=True)
def test_demo_report_loads_offline_without_errors(report, capsys):
    page = report.page
    result = json.loads((report.path.parent / "result.json").read_text(encoding="utf-8"))
    assert result["name"] in page.title()
    report.assert_quiet()
    assert report.requests[:1] == [report.url]
    targets = page.eval_on_selector_all("nav a", "links => links.map(a => a.getAttribute('href'))")
    assert targets and all(t.startswith("#") for t in targets), targets
    missing = [t for t in targets if page.locator(f"[id='{t[1:]}']").count() != 1]
    assert missing == [], f"nav links without exactly one target: {missing}"
    for section in CORE_SECTIONS:
        assert f"#{section}" in targets, f"no nav link to #{section}"
    # every section, core or added later, opens with a heading and one sentence on what it measures
    sections = page.eval_on_selector_all("section", "s => s.map(e => e.id)")
    assert set(CORE_SECTIONS) <= set(sections), sections
    for section in sections:
        assert page.locator(f"section[id='{section}'] > h2").count() == 1, f"section {section!r} has no h2"
        lead = page.locator(f"section[id='{section}'] > p.lead")
        assert lead.count() == 1 and len(lead.inner_text().split()) >= 5, f"section {section!r} has no lead sentence"
    _show(capsys, "screenshot", browser.screenshot(page, report.path.parent.name))


@pytest.mark.parametrize("report", DEMOS, indirect=True)
def test_details_open_on_click(report):
    assert browser.open_all_details(report.page) > 0
    assert report.page.locator("details:not([open])").count() == 0
    report.assert_quiet()


def _numeric_column(page):
    """A visible sortable table and the index of a numeric column whose values are not yet sorted."""
    for table in page.locator("table.sortable").all():
        if not table.is_visible():
            continue
        columns = table.evaluate(
            "t => Array.from(t.rows[0].cells, (_, i) => Array.from(t.rows).slice(1).map(r => r.cells[i] ? r.cells[i].textContent.trim() : ''))"
        )
        for index, texts in enumerate(columns):
            values = [_leading_number(text) for text in texts]
            if len(values) >= 3 and None not in values and values != sorted(values):
                return table, index
    return None, None


def _leading_number(text: str) -> float | None:
    match = re.match(r"-?\d[\d,]*(\.\d+)?", text)
    return float(match.group().replace(",", "")) if match else None


def _column(table, index: int) -> list[float]:
    texts = table.evaluate("(t, i) => Array.from(t.rows).slice(1).map(r => r.cells[i].textContent.trim())", index)
    return [_leading_number(text) for text in texts]


def _row_texts(table) -> list[str]:
    return sorted(table.evaluate("t => Array.from(t.rows).slice(1).map(r => r.textContent)"))


@pytest.mark.parametrize("report", DEMOS, indirect=True)
def test_sortable_tables_sort_by_the_clicked_column(report):
    page = report.page
    if page.locator("table.sortable").count() == 0:
        pytest.skip("no table.sortable in this report yet: nothing to sort")
    browser.open_all_details(page)
    table, index = _numeric_column(page)
    assert table is not None, "no visible sortable table with an unsorted numeric column"
    before = _row_texts(table)
    header = table.locator("tr").first.locator("th, td").nth(index)
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column(table, index) == sorted(_column(table, index))
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _column(table, index) == sorted(_column(table, index), reverse=True)
    assert _row_texts(table) == before, "sorting lost or changed rows"
    report.assert_quiet()


@pytest.mark.parametrize("report", DEMOS, indirect=True)
def test_report_prints_to_pdf(report, capsys):
    report.page.emulate_media(media="print")
    path = browser.SCREENSHOTS / f"{report.path.parent.name}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.page.pdf(path=str(path), format="A4", print_background=True)
    content = path.read_bytes()
    assert content.startswith(b"%PDF") and len(content) > 10_000
    report.assert_quiet()
    _show(capsys, "printed", path)


@pytest.mark.parametrize("report", DEMOS, indirect=True)
def test_wide_tables_scroll_inside_their_box(report):
    """On a narrow window the page itself never scrolls sideways: a wide table scrolls in its box."""
    report.page.set_viewport_size({"width": 560, "height": 900})
    browser.open_all_details(report.page)
    overflow = report.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the window"
    scrolling = report.page.evaluate(
        "Array.from(document.querySelectorAll('table')).filter(t => t.scrollWidth > t.clientWidth + 1).length")
    assert scrolling > 0  # some table is wider than the window here, so the test means something


# ---------------------------------------------------------------- the printed PDF (pdftoppm, pdftotext)


def _poppler() -> None:
    """pdftoppm and pdftotext (Debian: poppler-utils); skipped without them, failed under CI."""
    import shutil

    missing = [tool for tool in ("pdftoppm", "pdftotext", "pdfinfo") if shutil.which(tool) is None]
    if missing:
        reason = f"the PDF tests need {', '.join(missing)} (apt-get install poppler-utils)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so they may not be skipped", pytrace=False)
        pytest.skip(reason)


def _printed(demo: Path, paper: str, folder: Path) -> Path:
    """The adult demo's report printed the way `rai-audit run --pdf` prints it."""
    from audit.report import html as report_html
    from audit.report import pdf as report_pdf
    from audit.results import read_result

    page = report_html.render(read_result(demo / "adult_mlp" / "result.json"), paper=paper)
    path = folder / f"adult-{paper}.pdf"
    path.write_bytes(report_pdf.render(page, str(browser.CHROMIUM)))
    return path


def _pdf_text(path: Path, *pages: str) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout


def _ink(path: Path, page: int) -> float:
    """Share of the page's pixels that are not white (pdftoppm, greyscale, 30 dpi)."""
    import subprocess

    import numpy as np

    raw = subprocess.run(["pdftoppm", "-gray", "-r", "30", "-f", str(page), "-l", str(page), str(path)],
                         capture_output=True, check=True).stdout
    # PGM: "P5\n<width> <height>\n255\n" then one byte a pixel
    header, _, pixels = raw.partition(b"\n255\n")
    width, height = (int(v) for v in header.split()[1:3])
    values = np.frombuffer(pixels[: width * height], dtype=np.uint8)
    return float((values < 200).mean())


def test_pdf_holds_every_section_open_with_margins_and_no_blank_first_page(demo, tmp_path):
    _poppler()
    path = _printed(demo, "a4", tmp_path)
    import subprocess

    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert "(A4)" in info
    text = _pdf_text(path)
    # collapsed sections are printed open: the intersections' disparity tables are there
    crossed = text.index("sex+race (10 groups")
    table = " ".join(text[crossed:crossed + 2000].split())  # cells may wrap across lines
    assert "Disparity Difference Ratio" in table and "Demographic" in table and "highest sex=" in table
    assert "Confusion matrix" in text or "confusion matrix" in text
    # the first page carries the verdict and the numbers, not just the title
    first = _pdf_text(path, "-f", "1", "-l", "1")
    assert "Gate passed" in first and "accuracy" in first
    assert _ink(path, 1) > 0.05
    # every page: verdict, date, model hash, page number
    for page in (1, pages):
        margin = _pdf_text(path, "-f", str(page), "-l", str(page))
        assert "Adult income MLP: gate passed" in margin and "audited 20" in margin
        assert f"page {page} of {pages}" in margin and "model sha256 " in margin
    # open, the reports are long; this is the count a reviewer should expect to see, not a target
    assert 15 <= pages <= 80, pages


def test_pdf_paper_size_follows_the_spec(demo, tmp_path):
    _poppler()
    import subprocess

    info = subprocess.run(["pdfinfo", str(_printed(demo, "letter", tmp_path))], capture_output=True, text=True, check=True).stdout
    assert "(letter)" in info


# ---------------------------------------------------------------- hostile data and spec


def _hostile_audit(project, out: Path) -> Path:
    """Audit data and a spec whose every user-controlled string is a script payload."""
    frame = make_frame()
    frame.loc[::3, "sex"] = VALUE
    frame[COLUMN] = ["north", GROUP] * (len(frame) // 2)
    frame.to_csv(project.root / DATA_FILE, index=False)
    label = {"column": "label", "classes": ["no", CLASS], "positive": CLASS, "map": {"0": "no", "1": CLASS}}
    sensitive = [{"column": "sex"}, {"column": COLUMN, "reference": GROUP}]
    thresholds = [
        {"metric": "accuracy", "min": 0.0, "name": THRESHOLD},
        {"metric": "selection_rate", "group": {COLUMN: GROUP}, "min": 0.0},
        {"metric": "selection_rate", "group": {"sex": VALUE}, "max": 0.0, "level": "warn"},
    ]
    spec = project.spec(
        SPEC_FILE,
        description=SPEC_TEXT,
        model=project.model("torchscript") | {"name": MODEL},
        data={"path": DATA_FILE, "label": label, "sensitive": sensitive},
        thresholds=thresholds,
        model_card={"overview": SPEC_TEXT, "intended_use": GROUP, "caveats": CLASS},
    )
    # Project.spec takes the file name as `name`, so the audit's name is set afterwards
    spec.write_text(yaml.safe_dump(yaml.safe_load(spec.read_text()) | {"name": SPEC_TEXT}, sort_keys=False))
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    return out


def test_injected_payloads_never_run_in_the_browser(project, chromium, capsys):
    out = _hostile_audit(project, project.root / "out")
    seen = browser.visit(chromium, out / "report.html")
    try:
        page = seen.page
        browser.open_all_details(page)
        for link in page.locator("nav a").all():
            link.click()
        for cell in page.get_by_text("__xss").all()[:40]:
            if cell.is_visible():
                cell.hover(force=True)  # force: chart text sits under <main> for the pointer
        # fire a mouseover on every element, in case a handler slipped in somewhere not visible
        page.evaluate("document.querySelectorAll('*').forEach(e => e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})))")
        page.wait_for_timeout(200)
        assert page.evaluate("window.__xss") is None
        handlers = page.evaluate(
            "Array.from(document.querySelectorAll('*')).flatMap(e => Array.from(e.attributes, a => a.name)).filter(n => n.startsWith('on'))"
        )
        assert handlers == [], f"inline event handlers in the report: {handlers}"
        scripts = page.eval_on_selector_all("script", "s => s.map(e => e.textContent)")
        assert not any("__xss" in text for text in scripts)
        assert not any(url.endswith("/x") for url in seen.requests)
        seen.assert_quiet()
        # the payloads were rendered as text, so this test would notice if escaping broke
        text = page.locator("body").inner_text()
        for payload in PAYLOADS:
            assert payload in text, payload
        assert SPEC_TEXT in page.title()
        _show(capsys, "screenshot", browser.screenshot(page, "injected_payloads"))
    finally:
        browser.close(seen)


def _markdown_text(path: Path) -> str:
    """A Markdown file with its raw tags refused, then its Markdown and HTML escapes undone."""
    text = path.read_text(encoding="utf-8")
    assert not RAW_TAG.search(text), f"{path.name}: {RAW_TAG.search(text)}"
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def test_injected_payloads_are_escaped_in_markdown_and_junit(project):
    out = _hostile_audit(project, project.root / "out")
    # GitHub renders HTML in Markdown; the payloads must come back only once unescaped
    summary = _markdown_text(out / "summary.md")
    for payload in (SPEC_TEXT, THRESHOLD, f"{COLUMN}={GROUP}", f"sex={VALUE}"):
        assert payload in summary, payload
    card = _markdown_text(out / "model_card.md")
    for payload in (SPEC_TEXT, GROUP, CLASS, MODEL, VALUE, COLUMN):
        assert payload in card, payload

    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert not RAW_TAG.search(junit), RAW_TAG.search(junit)
    root = ET.fromstring(junit)
    assert {element.tag for element in root.iter()} <= JUNIT_TAGS
    names = [case.get("name") for case in root.iter("testcase")]
    assert THRESHOLD in names
    assert any(COLUMN in name and GROUP in name for name in names), names
    assert root.find("testsuite").get("name") == f"rai-audit: {SPEC_TEXT}"
