"""Signed audit folders: sign, verify, tamper, chain. The signature is checked with the
``cryptography`` public key directly as well, so the test does not only trust our verify()."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from audit import signing
from audit.cli import main


def _audit_folder(root: Path, name: str = "audit", model_hash: str = "ab" * 32) -> Path:
    folder = root / name
    (folder / "sub").mkdir(parents=True)
    provenance = {"spec_sha256": "11" * 32, "files": {"model": {"path": "m.pt", "sha256": model_hash},
                                                     "data": {"path": "d.csv", "sha256": "22" * 32}}}
    (folder / "result.json").write_text(json.dumps({"provenance": provenance, "measurements": []}))
    (folder / "report.html").write_text("<html>report</html>")
    (folder / "sub" / "ll144.csv").write_text("table,category\n")
    return folder


@pytest.fixture
def keys(tmp_path):
    return signing.generate_keys(tmp_path / "keys" / "auditor")


def test_sign_then_verify(tmp_path, keys, capsys):
    folder = _audit_folder(tmp_path)
    assert main(["sign", str(folder), "--key", str(keys[0])]) == 0
    manifest = json.loads((folder / signing.MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["report.html", "result.json", "sub/ll144.csv"]
    assert manifest["provenance"] == {"spec_sha256": "11" * 32, "files": {"model": "ab" * 32, "data": "22" * 32}}
    public = serialization.load_pem_public_key(keys[1].read_bytes())
    public.verify(base64.b64decode((folder / signing.SIGNATURE).read_bytes()), (folder / signing.MANIFEST).read_bytes())
    assert main(["verify", str(folder), "--pub", str(keys[1])]) == 0
    assert "verified" in capsys.readouterr().out
    assert (keys[0].stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("tamper, needle", [
    (lambda f: (f / "report.html").write_text("<html>edited</html>"), "changed: report.html"),
    (lambda f: (f / "sub" / "ll144.csv").unlink(), "missing: sub/ll144.csv"),
    (lambda f: (f / "extra.txt").write_text("x"), "added: extra.txt"),
])
def test_verify_names_the_file_that_changed(tmp_path, keys, capsys, tamper, needle):
    folder = _audit_folder(tmp_path)
    signing.sign(folder, keys[0])
    tamper(folder)
    assert main(["verify", str(folder), "--pub", str(keys[1])]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_an_edited_manifest_breaks_the_signature(tmp_path, keys):
    folder = _audit_folder(tmp_path)
    signing.sign(folder, keys[0])
    (folder / "report.html").write_text("forged")
    manifest = json.loads((folder / signing.MANIFEST).read_text())
    manifest["files"]["report.html"] = signing.file_hashes(folder)["report.html"]  # hide the edit in the manifest
    (folder / signing.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    outcome = signing.verify(folder, keys[1])
    assert not outcome.signature_valid and not outcome.changed and not outcome.ok
    public = serialization.load_pem_public_key(keys[1].read_bytes())
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode((folder / signing.SIGNATURE).read_bytes()), (folder / signing.MANIFEST).read_bytes())


def test_another_key_does_not_verify(tmp_path, keys):
    folder = _audit_folder(tmp_path)
    signing.sign(folder, keys[0])
    _, other_public = signing.generate_keys(tmp_path / "other")
    assert "signature does not match" in signing.describe(signing.verify(folder, other_public))


def test_a_chain_of_audits_is_tamper_evident(tmp_path, keys, capsys):
    first, second = _audit_folder(tmp_path, "first"), _audit_folder(tmp_path, "second", model_hash="cd" * 32)
    signing.sign(first, keys[0])
    assert main(["sign", str(second), "--key", str(keys[0]), "--chain", str(first)]) == 0
    link = json.loads((second / signing.MANIFEST).read_text())["previous"]
    assert link == {"manifest_sha256": signing.file_sha256(first / signing.MANIFEST), "model_sha256": "ab" * 32}
    assert main(["verify", str(second), "--pub", str(keys[1]), "--chain", str(first)]) == 0
    (first / "report.html").write_text("rewritten history")
    assert main(["verify", str(second), "--pub", str(keys[1]), "--chain", str(first)]) == 1
    assert "previous audit" in capsys.readouterr().err
    signing.sign(first, keys[0])  # re-signing the altered first audit does not mend the link
    outcome = signing.verify(second, keys[1], previous=first)
    assert not outcome.ok and "not the one this audit was chained to" in signing.describe(outcome)


def test_bad_key_and_folder_are_one_line_errors(tmp_path, keys, capsys):
    folder = _audit_folder(tmp_path)
    (tmp_path / "junk.pem").write_text("not a key")
    assert main(["sign", str(folder), "--key", str(tmp_path / "junk.pem")]) == 2
    assert main(["verify", str(folder), "--pub", str(keys[1])]) == 2  # never signed
    assert main(["keygen", "--out", str(keys[0])]) == 2  # never overwrites a key
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err
    assert not (folder / signing.MANIFEST).exists()
