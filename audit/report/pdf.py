"""report.pdf: the report printed by headless Chromium with the report's own print CSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from audit.errors import OutputError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# no network, no first-run work, no background services: the report is one local file
FLAGS = (
    "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--no-pdf-header-footer",
)


def find_chromium() -> str:
    """The Chromium to print with: $RAI_AUDIT_CHROMIUM, else the first on PATH."""
    chosen = os.environ.get("RAI_AUDIT_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if not chosen or not Path(chosen).exists():
        raise OutputError(
            "--pdf needs Chromium, and none was found",
            hint="install it (Debian: apt-get install chromium) or set RAI_AUDIT_CHROMIUM to its path",
        )
    return chosen


def render(html: str, chromium: str) -> bytes:
    """Print the report HTML to PDF bytes; nothing is left on disk."""
    with tempfile.TemporaryDirectory(prefix="rai-audit-pdf-") as folder:
        page, pdf = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        command = [chromium, *FLAGS, f"--user-data-dir={folder}/profile", f"--print-to-pdf={pdf}", page.as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to run as root inside its sandbox
        try:
            subprocess.run(command, capture_output=True, timeout=180, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OutputError(f"Chromium could not print the report: {exc}") from None
        if not pdf.exists() or not pdf.read_bytes().startswith(b"%PDF"):
            raise OutputError("Chromium did not write a PDF", hint="run it by hand with --print-to-pdf to see why")
        return pdf.read_bytes()
