"""`rai-audit validate --data` on sharded data: every shard read batch by batch, as a sharded run reads it.

The reference is the local loader on the same rows (the whole file): the rows counted and the
groups found must be its rows and groups; errors are the ones the run itself gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import load_config
from audit.cli import main
from audit.data import load_data
from audit.scale.opened import open_shards
from tests.decision_log import decision_log, spec, write_shards
from tests.scale_models import adult_shards, demo, digits_shards, dreaddit_shards


@pytest.fixture(scope="module")
def log_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    log = decision_log(3000, seed=8)
    log.loc[log.index[-5:], "region"] = "islands"  # a group only the last shard holds
    return root, write_shards(log, root)


def _groups(sensitive: pd.DataFrame) -> set[tuple]:
    return set(sensitive.astype(str).itertuples(index=False, name=None))


def _assert_opens_as_the_local_loader(sharded, local) -> None:
    opened = open_shards(sharded)
    data = load_data(local)
    assert opened.rows_used == data.n and opened.rows_read == data.summary["rows_read"]
    assert list(opened.groups.columns) == list(data.sensitive.columns)
    assert _groups(opened.groups) == _groups(data.sensitive)


@pytest.mark.parametrize("source", ["parquet", "glob"])
def test_decision_log_shards_open_as_the_whole_file(log_shards, source):
    root, paths = log_shards
    local = load_config(spec(root, paths["whole"], name="local.yaml"))
    sharded = load_config(spec(root, paths[source], engine={"batch_rows": 250}, name=f"{source}.yaml"))
    _assert_opens_as_the_local_loader(sharded, local)


@pytest.mark.parametrize("source", ["parquet", "glob"])
def test_tabular_model_shards_open_as_the_whole_file(tmp_path, source):
    local = demo("adult")
    paths = adult_shards(tmp_path, local)
    _assert_opens_as_the_local_loader(demo("adult", data={"path": paths[source], "format": None}, engine={"batch_rows": 3000}), local)


@pytest.mark.parametrize("source", ["npz", "glob"])
def test_image_npz_shards_open_as_the_whole_file(tmp_path, source):
    local = demo("digits")
    paths = digits_shards(tmp_path, local)
    sharded = demo("digits", data={"path": paths[source], "metadata": paths["meta"]}, engine={"batch_rows": 50})
    _assert_opens_as_the_local_loader(sharded, local)


@pytest.mark.parametrize("source", ["jsonl", "parquet"])
def test_text_shards_open_as_the_whole_file(tmp_path, source):
    local = demo("dreaddit")
    paths = dreaddit_shards(tmp_path, local)
    _assert_opens_as_the_local_loader(demo("dreaddit", data={"path": paths[source]}, engine={"batch_rows": 100}), local)


def _validate(path, capsys) -> tuple[int, str, str]:
    code = main(["validate", str(path), "--data"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _with_thresholds(path, thresholds: list[str]):
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(raw | {"thresholds": thresholds}, sort_keys=False))
    return path


def test_validate_data_counts_the_shards_rows_and_finds_a_group_of_one_shard(log_shards, capsys):
    root, paths = log_shards
    rows = load_data(load_config(spec(root, paths["whole"], name="local.yaml"))).n
    path = _with_thresholds(spec(root, paths["parquet"], engine={"kind": "ray"}, name="ray.yaml"),
                            ["accuracy[region=islands] >= 0.1"])
    code, out, err = _validate(path, capsys)
    assert (code, err) == (0, "")
    assert f"data opened: {rows:,} rows in 9 shards" in out


def test_a_group_no_shard_holds_is_refused_as_the_local_validate_refuses_it(log_shards, capsys):
    root, paths = log_shards
    thresholds = ["accuracy[region=nowhere] >= 0.1"]
    local = _validate(_with_thresholds(spec(root, paths["whole"], name="local-bad.yaml"), thresholds), capsys)
    sharded = _validate(_with_thresholds(spec(root, paths["glob"], engine={"batch_rows": 500}, name="bad.yaml"), thresholds), capsys)
    assert local[0] == sharded[0] == 2
    assert sharded[2] == local[2] and sharded[2].count("\n") == 1 and "region 'nowhere'" in sharded[2]


def test_a_column_missing_from_one_shard_is_one_line(log_shards, tmp_path, capsys):
    root, paths = log_shards
    bad = tmp_path / "bad"
    bad.mkdir()
    for k, part in enumerate(sorted((root / paths["parquet"]).iterdir())):
        frame = pd.read_parquet(part)
        (frame.drop(columns=["sex"]) if k == 2 else frame).to_parquet(bad / part.name)
    code, out, err = _validate(spec(tmp_path, "bad", engine={"kind": "ray"}), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "column 'sex' not found" in err
    # the same line the run gives
    assert main(["run", str(spec(tmp_path, "bad", engine={"batch_rows": 500}, name="run.yaml")),
                 "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == err


@pytest.mark.parametrize(("where", "message"), [("empty/*.csv", "file not found"), ("broken", "cannot read")])
def test_an_empty_glob_or_an_unreadable_shard_is_one_line(tmp_path, capsys, where, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    decision_log(100).to_parquet(tmp_path / "broken" / "a.parquet")
    (tmp_path / "broken" / "b.parquet").write_bytes(b"not parquet at all")
    code, out, err = _validate(spec(tmp_path, where, engine={"batch_rows": 500}), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err


def test_validate_data_holds_one_batch_not_the_rows(log_shards, monkeypatch):
    # every batch handed to the checks of validate is at most batch_rows long
    from audit.scale import opened

    root, paths = log_shards
    sizes = []
    real = opened.batch_rows

    def counted(config, batch, model=None):
        sizes.append(len(batch.frame))
        return real(config, batch, model)

    monkeypatch.setattr(opened, "batch_rows", counted)
    found = open_shards(load_config(spec(root, paths["glob"], engine={"batch_rows": 128}, name="small.yaml")))
    assert max(sizes) <= 128 and sum(sizes) == found.rows_read == 3000
    assert np.all(np.array(sizes) > 0)
