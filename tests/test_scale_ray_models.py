"""Model specs on Ray in local mode: the demo specs at 1 and 2 workers give the local run's numbers.

One Ray session for the module (the capped session of tests/test_scale_ray.py); each actor
loads the model once and predicts its shards slot by row id.
"""

from __future__ import annotations

import pytest

from audit import run_audit
from audit.scale import ray_engine
from tests.scale_models import COSTLY_ON, adult_shards, assert_same_audit, demo

ray = pytest.importorskip("ray")
from tests.test_scale_ray import DiesOnce, ray_session  # noqa: E402,F401  (the module's capped Ray session)


@pytest.fixture(scope="module")
def local_results():
    """Each demo audited locally with every check (explanations and attacks on few rows)."""
    return {name: run_audit(demo(name, checks=COSTLY_ON[name])) for name in ("adult", "digits", "dreaddit")}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", ["adult", "digits", "dreaddit"])
def test_demo_spec_on_ray_equals_the_local_run(local_results, name, workers):
    # predictions and candidate rows from the actors; explanations and attacks on the executor's actor pool
    batch_rows = {"adult": 4000, "digits": 100, "dreaddit": 200}[name]
    config = demo(name, checks=COSTLY_ON[name], engine={"kind": "ray", "workers": workers, "batch_rows": batch_rows})
    result = run_audit(config)
    assert result.data["engine"] == "ray"
    assert {m.check for m in result.measurements} >= set(COSTLY_ON[name])
    assert_same_audit(local_results[name], result)


def test_a_worker_killed_mid_run_on_a_model_spec_is_retried(tmp_path, local_results, monkeypatch):
    paths = adult_shards(tmp_path, demo("adult"))
    monkeypatch.setattr(ray_engine, "_ShardSummarizer", DiesOnce)  # the model is loaded, then the worker dies
    config = demo("adult", checks=COSTLY_ON["adult"], data={"path": paths["parquet"], "format": None},
                  engine={"kind": "ray", "workers": 2})
    result = run_audit(config)
    assert (tmp_path / "worker-died").exists()
    assert result.data["shards"] == 9
    assert_same_audit(local_results["adult"], result)

