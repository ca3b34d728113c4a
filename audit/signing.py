"""Signed, verifiable audit folders: a SHA-256 manifest and a detached Ed25519 signature.

``manifest.json`` lists the SHA-256 of every file in the folder (but itself and the signature),
the spec, model and data hashes from the result's provenance, and optionally the SHA-256 of the
previous signed audit's manifest (a chain: changing any earlier audit breaks every later link).
``manifest.sig`` is the Ed25519 signature of the manifest's bytes, base64. The keys are the
user's PEM files; nothing leaves the machine. The ``cryptography`` package does the signing.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import ConfigError, OutputError
from audit.provenance import file_sha256

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
FORMAT = "rai-audit-manifest/1"


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found; ``ok`` only when the signature holds and no file differs."""

    signature_valid: bool
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    chain_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature_valid and not (self.changed or self.missing or self.added or self.chain_problems)


def generate_keys(prefix: Path) -> tuple[Path, Path]:
    """Write a new key pair: PREFIX (private, PEM, owner-only) and PREFIX.pub; never overwrite."""
    private_path, public_path = Path(prefix), Path(f"{prefix}.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} exists; refusing to overwrite a key", hint="choose another --out prefix")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    _write_beside(private_path, private, mode=0o600)
    _write_beside(public_path, public, mode=0o644)
    return private_path, public_path


def _write_beside(path: Path, content: bytes, *, mode: int) -> None:
    """Write one file atomically next to the audit's own files, leaving every other file alone."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder`` (POSIX relative paths), manifest and signature aside."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and not path.is_symlink() and name not in (MANIFEST, SIGNATURE):
            hashes[name] = file_sha256(path)
    return hashes


def build_manifest(folder: Path, *, previous: Path | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "signed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": file_hashes(folder),
        "provenance": _provenance_hashes(folder),
        "previous": None,
    }
    if previous is not None:
        prior = _require(Path(previous) / MANIFEST, "previous audit's manifest (sign it first)")
        manifest["previous"] = {"manifest_sha256": file_sha256(prior), "model_sha256": _model_hash(json.loads(prior.read_text()))}
    return manifest


def sign(folder: Path, key_path: Path, *, previous: Path | None = None) -> dict[str, Any]:
    """Write manifest.json and manifest.sig into ``folder``; return the manifest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"not a folder: {folder}", hint="give the folder an audit wrote (rai-audit run --out)")
    key = _private_key(key_path)
    manifest = build_manifest(folder, previous=previous)
    content = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    _write_beside(folder / MANIFEST, content, mode=0o644)
    _write_beside(folder / SIGNATURE, base64.b64encode(key.sign(content)) + b"\n", mode=0o644)
    return manifest


def verify(folder: Path, public_path: Path, *, previous: Path | None = None) -> Verification:
    """Check the signature, then every file against the manifest; name what changed."""
    folder = Path(folder)
    manifest_path = _require(folder / MANIFEST, "manifest (sign the folder first: rai-audit sign)")
    content = manifest_path.read_bytes()
    signature = _require(folder / SIGNATURE, "signature").read_bytes().strip()
    try:
        _public_key(public_path).verify(base64.b64decode(signature, validate=True), content)
        valid = True
    except (InvalidSignature, ValueError):
        valid = False
    try:
        manifest = json.loads(content)
        listed: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        return Verification(False, chain_problems=["manifest.json is not a rai-audit manifest"])
    found = file_hashes(folder)
    changed = sorted(name for name in listed if name in found and found[name] != listed[name])
    missing = sorted(set(listed) - set(found))
    added = sorted(set(found) - set(listed))
    provenance = [] if _provenance_hashes(folder) == manifest.get("provenance") or "result.json" in changed + missing else [
        "result.json provenance differs from the manifest"]
    chain = _check_chain(manifest, previous, public_path) if previous is not None else []
    return Verification(valid, changed, missing, added, provenance + chain)


def _check_chain(manifest: dict[str, Any], previous: Path, public_path: Path) -> list[str]:
    link = manifest.get("previous")
    if not link:
        return ["this audit's manifest names no previous audit (sign it with --chain)"]
    prior_manifest = _require(Path(previous) / MANIFEST, "previous audit's manifest")
    problems = []
    if file_sha256(prior_manifest) != link.get("manifest_sha256"):
        problems.append(f"the previous audit's manifest {prior_manifest} is not the one this audit was chained to")
    prior = verify(previous, public_path)
    if not prior.ok:
        problems.append(f"the previous audit {previous} does not verify: {describe(prior)}")
    return problems


def describe(result: Verification) -> str:
    """One line naming every problem, or 'verified'."""
    parts = [] if result.signature_valid else ["the signature does not match the manifest (wrong key, or manifest changed)"]
    parts += [f"changed: {', '.join(result.changed)}"] if result.changed else []
    parts += [f"missing: {', '.join(result.missing)}"] if result.missing else []
    parts += [f"added: {', '.join(result.added)}"] if result.added else []
    parts += result.chain_problems
    return "; ".join(parts) if parts else "verified"


def _provenance_hashes(folder: Path) -> dict[str, Any] | None:
    path = folder / "result.json"
    if not path.is_file():
        return None
    try:
        provenance = json.loads(path.read_text(encoding="utf-8")).get("provenance", {})
    except (ValueError, AttributeError):
        raise ConfigError(f"{path} is not valid JSON", hint="sign the folder an audit wrote, unchanged") from None
    return {"spec_sha256": provenance.get("spec_sha256"),
            "files": {role: entry.get("sha256") for role, entry in (provenance.get("files") or {}).items()}}


def _model_hash(manifest: dict[str, Any]) -> str | None:
    return ((manifest.get("provenance") or {}).get("files") or {}).get("model")


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    return path


def _read_key_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key {path}: {exc.strerror or exc}", hint="rai-audit keygen --out KEY makes a pair") from None


def _private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read_key_file(path), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}", hint="rai-audit keygen --out KEY makes a pair") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key", hint="rai-audit keygen --out KEY makes one")
    return key


def _public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read_key_file(path))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a PEM public key: {exc}", hint="give the .pub file of the signing key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key", hint="give the .pub file of the signing key")
    return key
