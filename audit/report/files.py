"""An audit's files, rendered from its result: the one place that knows what a report folder holds.

The CLI and tests both call :func:`write_report`; every file is rendered before any is written,
and :func:`audit.output.write_audit` swaps the whole folder in at once, so a folder never holds a
half-written or mixed report.
"""

from __future__ import annotations

from pathlib import Path

from audit.output import prepare_output_dir, write_audit
from audit.results import AuditResult


def gate_files(result: AuditResult) -> dict[str, str]:
    """The CI artefacts: JUnit for test dashboards, Markdown for pull requests."""
    from audit.report import junit, markdown

    return {"junit.xml": junit.render(result), "summary.md": markdown.render(result)}


def report_files(
    result: AuditResult, *, templates: Path | None = None, chromium: str | None = None, paper: str = "a4"
) -> dict[str, str | bytes]:
    """Every file of an audit folder, by name; report.pdf only when a Chromium is given."""
    from audit import profiles
    from audit.report import html, modelcard
    from audit.report import pdf as report_pdf

    page = html.render(result, templates=templates, paper=paper)
    files: dict[str, str | bytes] = {
        "result.json": result.to_json() + "\n",
        "report.html": page,
        "model_card.md": modelcard.markdown(result),
    } | gate_files(result) | profiles.files(result)
    if chromium:
        files["report.pdf"] = report_pdf.render(page, chromium)
    return files


def write_report(
    result: AuditResult, folder: str | Path, *, templates: str | Path | None = None, chromium: str | None = None,
    force: bool = False, paper: str = "a4",
) -> dict[str, str | bytes]:
    """Write result.json, report.html, model_card.md, junit.xml and summary.md as the folder ``folder``.

    The folder is replaced whole (a previous audit's folder, or with ``force`` any folder), as
    :func:`audit.output.write_audit` does. Returns the files written, by name, so a caller can
    show or publish one of them.

    >>> from audit import load_config, run_audit, write_report
    >>> write_report(run_audit(load_config("examples/adult_mlp.yaml")), "reports/adult")  # doctest: +SKIP
    """
    out = prepare_output_dir(folder, force=force)
    files = report_files(result, templates=Path(templates) if templates else None, chromium=chromium, paper=paper)
    write_audit(out, files, force=force)
    return files
