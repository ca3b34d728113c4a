"""The Python API: configs built from a dict and changed in code, then audited."""

from __future__ import annotations

import pytest
import yaml

import audit
from audit.config import AuditConfig, load_config
from audit.errors import ConfigError


def test_from_dict_is_the_spec_file_without_the_file(project):
    path = project.spec()
    raw = yaml.safe_load(path.read_text())
    built = AuditConfig.from_dict(raw, base=project.root)
    loaded = load_config(path)
    assert built.model_dump() == loaded.model_dump()
    assert built.data.path == str(project.root / "data.csv")


def test_replace_merges_sections_and_leaves_the_original(project):
    config = load_config(project.spec(checks={"robustness": {"steps": 7}}))
    changed = config.replace(seed=5, checks={"robustness": {"rows": 40}})
    assert (changed.seed, changed.checks.robustness.rows, changed.checks.robustness.steps) == (5, 40, 7)
    assert (config.seed, config.checks.robustness.rows) == (0, 500)
    assert changed.data == config.data and changed.base_dir == config.base_dir
    # the file's hash no longer describes the copy
    assert changed.source_sha256 is None and config.source_sha256 is not None


def test_replace_validates_like_a_spec(project):
    config = load_config(project.spec())
    with pytest.raises(ConfigError, match="checks.robustness.rows"):
        config.replace(checks={"robustness": {"rows": 0}})
    with pytest.raises(ConfigError, match="colour"):
        config.replace(colour="red")


def test_spec_to_result_in_code(project):
    config = audit.load_config(project.spec())
    config = config.replace(checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})
    result = audit.run_audit(config)
    assert result.checks_run == ("data", "performance", "fairness")
    assert result.provenance["spec_sha256"] != load_config(project.spec()).source_sha256
