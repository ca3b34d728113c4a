"""Fuzzed specs (issue 18): every mutation of a valid spec either loads or is one AuditError.

Hypothesis mutates a working spec (delete a key, replace a value with hostile or odd data, cut
and splice the YAML text) and runs it through everything up to the first prediction: reading,
validation, the pre-flight rules, loading data and model, predicting. Anything but an
:class:`~audit.errors.AuditError` is an "internal error" a user would see. The number of
examples is bounded so the whole file stays well under a minute in CI.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.config import load_config
from audit.errors import AuditError
from audit.runner import build_context, preflight

# RAI_AUDIT_FUZZ_EXAMPLES=2000 for a deeper run by hand; CI keeps the bounded default
EXAMPLES = int(os.environ.get("RAI_AUDIT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES == 40,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

HOSTILE_TEXT = [
    "@os.system('touch PWNED') == 0", "__import__('os').system('x')", "../../../../etc/passwd",
    "\x1b[31mred\x1b[0m", "{{ cycler.__init__.__globals__ }}", "a" * 5000, "", " ", "null", "1e999",
    "age >= 18", "sex == 'F'", "accuracy >= 0.5", "nan", "-1",
]
VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(HOSTILE_TEXT), st.text(max_size=20),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    from tests.conftest import Project

    root = tmp_path_factory.mktemp("fuzz")
    project = Project(root)
    spec = project.spec(thresholds=["accuracy >= 0.5", {"metric": "selection_rate", "group": "each", "max": 0.9}],
                        report={"pdf": False})
    return root, yaml.safe_load(spec.read_text())


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the spec, leaves and branches alike."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, prefix + (index,))
    return found


def _mutate(spec: dict, path: tuple, operation: str, value: Any) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(spec))  # a deep copy
    *parents, last = path
    node = spec
    for part in parents:
        node = node[part]
    if operation == "delete":
        del node[last]
    elif operation == "replace":
        node[last] = value
    elif isinstance(node, dict):
        node[f"{last}_x"] = value  # an unknown key beside a known one
    return spec


def _audit_until_prediction(root: Path, text: str) -> None:
    path = root / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path)
        preflight(config)
        build_context(config)
    except AuditError as error:
        line = str(error)
        assert "\n" not in line and len(line) <= 2000
        assert not line.startswith("internal error")
    assert not (root / "PWNED").exists()


@FUZZ
@given(data=st.data())
def test_mutated_specs_load_or_fail_with_one_audit_error(base, data):
    root, spec = base
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(spec)
        path = data.draw(st.sampled_from(paths), label="path")
        operation = data.draw(st.sampled_from(["delete", "replace", "add"]), label="operation")
        spec = _mutate(spec, path, operation, data.draw(VALUES, label="value"))
    _audit_until_prediction(root, yaml.safe_dump(spec, allow_unicode=True))


@FUZZ
@given(data=st.data())
def test_spliced_yaml_text_loads_or_fails_with_one_audit_error(base, data):
    root, spec = base
    text = yaml.safe_dump(spec)
    start = data.draw(st.integers(0, len(text)), label="start")
    end = data.draw(st.integers(start, min(len(text), start + 40)), label="end")
    insert = data.draw(st.one_of(st.text(max_size=30), st.sampled_from(["&a [*a]", "*x", "!!python/object:os.system", "{", "- - -", "\t", ":" * 5])), label="insert")
    _audit_until_prediction(root, text[:start] + insert + text[end:])


def test_the_mutations_reach_both_outcomes(base):
    # a fuzz test that only ever errors (or only ever passes) tests little
    root, spec = base
    _audit_until_prediction(root, yaml.safe_dump(spec))
    with pytest.raises(AuditError):
        config = load_config_text(root, yaml.safe_dump(_mutate(spec, ("seed",), "replace", math.inf)))
        preflight(config)


def load_config_text(root: Path, text: str):
    path = root / "fuzzed.yaml"
    path.write_text(text)
    return load_config(path)
