"""Write an audit's folder whole: staged in a sibling folder, then swapped in with one rename.

A reader (or a CI job) never sees a folder that mixes two runs: the new audit is written into
``.NAME.staging-*`` beside the output folder, the previous audit is renamed aside as a backup,
the staged folder is renamed into place, and only then is the backup deleted. An interrupt or
a full disk at any point leaves the previous audit (or nothing) and no temporary files. A kill
that skips the clean-up (SIGKILL, power loss) leaves them; both names carry the writer's process
id, and the next write to the same folder removes those of dead writers and puts back a previous
audit that was renamed aside but never replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from audit.errors import OutputError

AUDIT_FILES = frozenset({
    "result.json", "report.html", "model_card.md", "junit.xml", "summary.md", "report.pdf",
    "compare.json", "compare.md", "compare.html",  # rai-audit compare
    "ll144.md", "ll144.csv", "annex_iv.md",  # --profile packs
    "manifest.json", "manifest.sig",  # rai-audit sign
})
FORCE_HINT = "choose an empty or new folder with --out, or pass --force to replace it"


def prepare_output_dir(path: str | Path, *, force: bool = False) -> Path:
    """Before any long computation: prove the folder can be replaced; create nothing.

    The folder may be absent, empty, or hold a previous audit (replaced whole); any other
    non-empty folder is refused unless ``force`` is set, so a typo in ``--out`` cannot wipe
    a user's files.
    """
    out = Path(path)
    _check_name(out)
    check_replaceable(out, force=force)
    parent = _existing_ancestor(out.parent)
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.write-test-")
        os.rmdir(probe)
    except OSError as exc:
        raise _error(out, exc) from None
    return out


def check_replaceable(out: Path, *, force: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"output folder {out} exists and is not a folder", hint="choose another --out")
    if force or not out.exists():
        return
    try:
        entries = [entry.name for entry in os.scandir(out)]
    except OSError as exc:
        raise _error(out, exc) from None
    if entries and not is_audit_folder(entries):
        strangers = sorted(set(entries) - AUDIT_FILES)[:3]
        raise OutputError(
            f"output folder {out} holds files that are not an audit's ({', '.join(strangers)}); "
            "writing there would replace them",
            hint=FORCE_HINT,
        )


def is_audit_folder(entries: list[str]) -> bool:
    """A previous audit: a result.json and nothing but files an audit writes."""
    return "result.json" in entries and set(entries) <= AUDIT_FILES


def write_audit(out: Path, files: dict[str, str | bytes], *, force: bool = False) -> Path:
    """Replace ``out`` with a folder holding exactly ``files``, in one rename."""
    out = Path(out)
    staging: Path | None = None
    backup: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _recover_killed_writes(out)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-{os.getpid()}-"))
        for name, content in files.items():
            _write(staging / name, content)
        os.chmod(staging, 0o755)
        check_replaceable(out, force=force)
        if out.exists():
            backup = out.parent / f".{out.name}.previous-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, backup)
        os.rename(staging, out)
        staging = None
    except OSError as exc:
        raise _error(out, exc) from None
    finally:
        _clean_up(out, staging, backup)
    return out


def _recover_killed_writes(out: Path) -> None:
    """Remove what killed writers left beside ``out``; restore their backup if ``out`` is gone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(staging|previous)-(\d+)-[^/]*")
    for path in sorted(out.parent.iterdir()):
        found = pattern.fullmatch(path.name)
        if found is None or _alive(int(found.group(2))):
            continue
        if found.group(1) == "previous" and not out.exists():
            os.rename(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _clean_up(out: Path, staging: Path | None, backup: Path | None) -> None:
    """Runs on success, error and interrupt alike: restore the previous audit if the swap broke."""
    if backup is not None and backup.exists():
        if out.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.rename(backup, out)
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def write_files(out: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Add files to an existing folder, each through a temporary name (compare's outputs)."""
    staged: list[tuple[str, Path]] = []
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            temporary = out / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            staged.append((name, temporary))
            _write(temporary, content)
        for name, temporary in staged:
            os.replace(temporary, out / name)
            written.append(out / name)
        return written
    except OSError as exc:
        raise _error(out, exc) from None
    finally:
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)


def _write(path: Path, content: str | bytes) -> None:
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    with open(path, "wb") as stream:
        stream.write(data)
    os.chmod(path, 0o644)


def _check_name(out: Path) -> None:
    # staging and backup names add ~35 characters to the folder's name
    if len(out.name.encode()) > 200 or len(str(out.absolute()).encode()) > 3800:
        raise OutputError(f"output folder name is too long ({len(str(out)):,} characters)", hint="choose a shorter --out")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _error(out: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write to output folder {out}: {exc.strerror or exc}",
        hint="choose a folder you can write to with --out (and check the disk has space)",
    )
