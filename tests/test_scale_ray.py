"""engine: ray in local mode gives the local run's numbers, with 1 and 2 workers.

One Ray session for the module, small enough for a 2-core container: the object store capped at
100 MB and its spilling and temp files in a temporary folder (/dev/shm holds only 64 MB there).
"""

from __future__ import annotations

import functools
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import load_config, run_audit
from audit.cli import main
from audit.scale import engine, ray_engine, summaries, tree
from tests.decision_log import assert_same_numbers, decision_log, spec, split, write_shards
from tests.test_scale import _summary, graded, multiclass_spec

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_session(tmp_path_factory):
    temp = tmp_path_factory.mktemp("ray")
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(temp),
        _system_config={"object_spilling_config": f'{{"type": "filesystem", "params": {{"directory_path": "{temp}"}}}}'},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("log")
    return root, write_shards(decision_log(3000, seed=2), root)


@pytest.mark.parametrize("workers", [1, 2])
def test_multi_shard_predictions_spec_equals_the_local_run(shards, workers):
    root, paths = shards
    local = run_audit(load_config(spec(root, paths["whole"], name="local.yaml")))
    engine = {"kind": "ray", "workers": workers, "batch_rows": 400}
    sharded = run_audit(load_config(spec(root, paths["parquet"], engine=engine, name=f"ray{workers}.yaml")))
    assert_same_numbers(local, sharded)
    assert sharded.data["engine"] == "ray" and sharded.data["shards"] == 9
    assert sharded.data["rows_read"] == local.data["rows_read"] == 3000


def test_multiclass_spec_on_ray_equals_the_local_run(tmp_path):
    paths = write_shards(graded(decision_log(2000, seed=6), 6), tmp_path)
    local = run_audit(load_config(multiclass_spec(tmp_path, paths["whole"], name="local.yaml")))
    engine = {"kind": "ray", "workers": 2, "batch_rows": 300}
    assert_same_numbers(local, run_audit(load_config(multiclass_spec(tmp_path, paths["parquet"], engine=engine))))


def _blocks_of_summaries(blocks: int) -> tuple[list, summaries.Summary]:
    parts = [_summary(part) for part in split(decision_log(2000, seed=4), 7)]
    refs = [ray.put(np.array([pickle.dumps(parts[i]) for i in chunk], dtype=object))
            for chunk in np.array_split(np.arange(len(parts)), blocks)]
    return refs, summaries.merge(parts)


def _assert_same_summary(merged: summaries.Summary, expected: summaries.Summary) -> None:
    pd.testing.assert_frame_equal(merged.keys, expected.keys)
    np.testing.assert_array_equal(merged.counts, expected.counts)
    assert (merged.rows_read, merged.rows_after_filter) == (expected.rows_read, expected.rows_after_filter) == (2000, 2000)


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_the_tree_merge_on_the_cluster_equals_the_driver_merge(blocks):
    refs, expected = _blocks_of_summaries(blocks)
    _assert_same_summary(tree.merged_on_cluster(ray, refs, num_cpus=0.5), expected)


def test_blocks_that_arrive_while_merging_are_merged_too():
    # the engine hands the tree its first shards and, as each is ready, the actor's next one
    refs, expected = _blocks_of_summaries(7)
    later = iter(refs[2:])
    follow = lambda ref: next(later, None)  # noqa: E731
    _assert_same_summary(tree.merged_on_cluster(ray, refs[:2], num_cpus=0.5, follow=follow), expected)


def _merge_dying_once(marker: str, parts):
    """A merge whose first call anywhere kills its worker process."""
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return summaries.merge_stream(parts)
    os._exit(1)


def test_a_merge_task_killed_mid_tree_is_retried_and_the_summary_is_unchanged(tmp_path):
    refs, expected = _blocks_of_summaries(5)
    marker = tmp_path / "merge-died"
    merged = tree.merged_on_cluster(ray, refs, merge=functools.partial(_merge_dying_once, str(marker)), num_cpus=0.5)
    assert marker.exists()  # one merge task did die
    _assert_same_summary(merged, expected)


def test_the_driver_receives_one_merged_summary(shards):
    root, paths = shards
    config = load_config(spec(root, paths["parquet"], engine={"kind": "ray", "workers": 2, "batch_rows": 400}, name="one.yaml"))
    shard_list = engine.list_shards(config.data)
    received = ray_engine.parts(config, shard_list)  # each shard's part: its summary (and, for model specs, rows)
    local = summaries.merge(engine.summarize_shard(config, shard).summary for shard in shard_list)
    assert len(received) == 1
    pd.testing.assert_frame_equal(received[0].summary.keys, local.keys)
    np.testing.assert_array_equal(received[0].summary.counts, local.counts)


class DiesOnce(ray_engine._ShardSummarizer):
    """A summarizer whose first call anywhere kills its worker process (a marker file says who went first)."""

    def summarize(self, shard):
        marker = Path(self.config.data.path).parent / "worker-died"
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return super().summarize(shard)
        os._exit(1)


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_unchanged(shards, monkeypatch):
    root, paths = shards
    local = run_audit(load_config(spec(root, paths["whole"], name="local.yaml")))
    monkeypatch.setattr(ray_engine, "_ShardSummarizer", DiesOnce)
    engine = {"kind": "ray", "workers": 2, "batch_rows": 400}
    sharded = run_audit(load_config(spec(root, paths["parquet"], engine=engine, name="dies.yaml")))
    assert (root / "worker-died").exists()  # one worker did die
    assert_same_numbers(local, sharded)


class DiesAlways(ray_engine._ShardSummarizer):
    def summarize(self, shard):
        os._exit(1)


def test_a_worker_that_dies_on_every_attempt_is_one_line(shards, monkeypatch, tmp_path, capsys):
    root, paths = shards
    monkeypatch.setattr(ray_engine, "_ShardSummarizer", DiesAlways)
    engine = {"kind": "ray", "workers": 1, "batch_rows": 400}
    code = main(["run", str(spec(root, paths["parquet"], engine=engine, name="dies-always.yaml")),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: a Ray worker process died on every one of its 3 attempts")
    assert not (tmp_path / "out").exists()


def test_compas_demo_spec_on_ray_equals_the_local_run(tmp_path):
    # the spec's data path is a package path, so the copy in another folder reads the same file
    text = Path("examples/compas_predictions.yaml").read_text()
    local = run_audit(load_config("examples/compas_predictions.yaml"))
    path = tmp_path / "compas_ray.yaml"
    path.write_text(text + "\nengine: {kind: ray, workers: 2, batch_rows: 2000}\n")
    assert_same_numbers(local, run_audit(load_config(path)))


def test_csv_glob_through_the_cli(shards, tmp_path):
    root, paths = shards
    out = tmp_path / "out"
    path = spec(root, paths["glob"], engine={"kind": "ray", "workers": 2}, name="glob.yaml")
    assert main(["run", str(path), "--out", str(out), "--quiet"]) in (0, 1)
    assert (out / "result.json").exists()


def test_unreachable_address_is_one_line(tmp_path, capsys):
    decision_log(50).to_csv(tmp_path / "one.csv", index=False)
    ray.shutdown()  # a fresh connection is attempted only outside a running session
    try:
        path = spec(tmp_path, "one.csv", engine={"kind": "ray", "address": "ray://127.0.0.1:9"})
        assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot reach the Ray cluster at ray://127.0.0.1:9" in err[0]
    finally:
        assert not ray.is_initialized()


class _Paced:
    """A stand-in summarizer: the slow one takes 0.5 s a shard, the fast one 0.01 s; says who did which."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds

    def summarize(self, shard):
        time.sleep(self.seconds)
        return self.name, shard


def test_a_free_actor_takes_the_next_shard_and_every_shard_is_summarized_once():
    paced = ray.remote(_Paced).options(num_cpus=0.5)
    actors = [paced.remote("slow", 0.5), paced.remote("fast", 0.01)]
    first, follow = ray_engine._dealt(actors, list(range(20)))
    waiting, done = list(first), []
    while waiting:  # as the merge tree consumes them: each ready part may bring the next shard
        (ref,), _ = ray.wait(waiting, num_returns=1)
        waiting.remove(ref)
        done.append(ray.get(ref))
        more = follow(ref)
        if more is not None:
            waiting.append(more)
    assert sorted(shard for _, shard in done) == list(range(20))
    by_slow = sum(name == "slow" for name, _ in done)
    assert 1 <= by_slow <= 6, by_slow  # dealt in turn, the slow actor would get 10
