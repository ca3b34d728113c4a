"""Files shipped with rai-audit: templates, demo models and example specs.

In a source checkout they sit at the top level (templates/, models/, examples/); a built wheel
carries the same folders under ``audit/_bundled/``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    for candidate in (PACKAGE_DIR / "_bundled" / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"rai-audit installation is missing its '{name}' folder")
