"""Spec validation: every error names the path, what is allowed, what was found and the fix."""

from __future__ import annotations

import json

import pydantic
import pytest

from audit.config import AuditConfig, config_from_dict, json_schema, load_config
from audit.errors import ConfigError


def _raw(project, **changes):
    import yaml

    raw = yaml.safe_load(project.spec().read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return raw


def _error(project, **changes) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_raw(project, **changes), base=project.root)
    return str(caught.value)


def test_unknown_key_lists_allowed_keys_and_suggests(project):
    message = _error(project, data__sensitve=[])
    assert message.startswith("spec error: data.sensitve: unknown key; allowed keys here:")
    assert "features_file" in message and "did you mean 'sensitive'?" in message


def test_unknown_key_inside_a_list_item(project):
    message = _error(project, data__label={"column": "label", "classes": [0, 1], "postive": 1})
    assert "data.label.postive: unknown key" in message and "'positive'" in message


def test_wrong_type_shows_what_was_found(project):
    message = _error(project, statistics={"bootstrap": "many"})
    assert "statistics.bootstrap" in message and "integer" in message and "'many'" in message


def test_literal_lists_allowed_values(project):
    message = _error(project, model={"kind": "torchscript", "path": "data.csv", "output": "logit"})
    assert "model.output" in message and "'logits' or 'probabilities'" in message and "'logit'" in message


def test_unknown_data_kind_lists_kinds(project):
    message = _error(project, data__kind="table")
    assert "data" in message and "'tabular'" in message and "'image'" in message


def test_missing_required_key(project):
    raw = _raw(project)
    del raw["data"]["label"]
    with pytest.raises(ConfigError, match=r"data.label: required key is missing \(fix: add data.label\)"):
        config_from_dict(raw, base=project.root)


def test_missing_file_names_the_resolved_path(project):
    message = _error(project, data__path="nowhere.csv")
    assert f"data.path: file not found: {project.root / 'nowhere.csv'}" in message


def test_standardize_needs_training_statistics(project):
    message = _error(project, data__features=[{"name": "x1", "type": "numeric", "encoding": "standardize"}])
    assert "data.features[0]" in message and "training mean and std" in message


def test_malformed_yaml_gives_line(project):
    path = project.root / "broken.yaml"
    path.write_text("name: x\ndata: [unclosed\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_config(path)


def test_paths_resolve_relative_to_spec(project, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(project.spec())
    assert config.data.path == str(project.root / "data.csv")


def test_config_is_frozen(project):
    config = load_config(project.spec())
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.seed = 3


def test_json_schema_describes_the_spec():
    schema = json_schema()
    json.dumps(schema)
    assert {"data", "model", "checks", "statistics"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert AuditConfig.model_json_schema()["required"] == ["name", "data", "model"]
