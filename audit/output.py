"""Write an audit's files atomically: all rendered first, then each moved into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from audit.errors import OutputError


def prepare_output_dir(path: str | Path) -> Path:
    """Create the output folder and prove it is writable before any long computation."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to output folder {out}: {exc.strerror or exc}",
            hint="choose a folder you can write to with --out",
        ) from None
    return out


def write_files(out: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write every file to a temporary name first, then rename: never a half-written report."""
    staged: list[tuple[str, Path]] = []
    try:
        for name, content in files.items():
            mode = "wb" if isinstance(content, bytes) else "w"
            handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.")
            with os.fdopen(handle, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as stream:
                stream.write(content)
            staged.append((name, Path(temporary)))
        written = []
        for name, temporary in staged:
            os.chmod(temporary, 0o644)
            os.replace(temporary, out / name)
            written.append(out / name)
        return written
    except OSError as exc:
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None
