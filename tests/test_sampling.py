"""Row ids and hash sampling: the rows picked from the whole data equal the rows re-picked from per-batch candidates."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import load_config, sampling
from audit.config import Checks, LabelSpec
from audit.context import AuditData, Predictions
from audit.data import load_data
from audit.explain import plan
from audit.text import checks as text_checks
from tests.test_data import _image_spec

MASK64 = 2**64 - 1


def splitmix64_next(state: int) -> tuple[int, int]:
    """The published splitmix64 generator (Vigna's C reference), in Python integers: (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def test_mix_is_the_splitmix64_finaliser():
    # the first outputs of splitmix64 seeded with 0 and with 1234567 (the reference's test seed)
    for seed in (0, 1234567):
        state, expected = seed, []
        for _ in range(5):
            state, out = splitmix64_next(state)
            expected.append(out)
        steps = (seed + np.arange(1, 6, dtype=np.uint64) * sampling.GOLDEN).astype(np.uint64)
        assert sampling.mix(steps).tolist() == expected
    assert int(sampling.mix(np.array([0x9E3779B97F4A7C15], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF


def test_row_hash_depends_on_seed_and_stream_and_spreads_rows_evenly():
    ids = np.arange(200_000)
    first = sampling.row_hash(ids, 0, "explanations")
    assert not np.array_equal(first, sampling.row_hash(ids, 1, "explanations"))
    assert not np.array_equal(first, sampling.row_hash(ids, 0, "robustness"))
    assert len(np.unique(first)) == ids.size
    # uniform: each of 16 equal ranges of the 64-bit space holds 1/16 of the rows (chi-square, 15 df, p ~ 1e-6 bound)
    counts = np.bincount((first >> np.uint64(60)).astype(np.int64), minlength=16)
    expected = ids.size / 16
    assert ((counts - expected) ** 2 / expected).sum() < 50


def test_smallest_equals_a_full_sort_with_ties_broken_by_row_id():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 7, 500).astype(np.float64)  # many ties
    ids = rng.permutation(10_000)[:500]
    order = np.lexsort((ids, keys))
    for k in (0, 1, 13, 499, 500, 800):
        assert sampling.smallest(keys, ids, k).tolist() == order[:k].tolist()


def test_a_smaller_sample_is_the_head_of_a_larger_one():
    ids = np.arange(1000) * 3 + 7
    assert sampling.sample(ids, 5, "explanations", 40).tolist() == sampling.sample(ids, 5, "explanations", 400)[:40].tolist()


def test_chunk_seed_is_a_31_bit_function_of_seed_and_first_row():
    assert sampling.chunk_seed(0, 17) == sampling.chunk_seed(0, 17)
    assert sampling.chunk_seed(0, 17) != sampling.chunk_seed(0, 18) != sampling.chunk_seed(1, 18)
    assert all(0 <= sampling.chunk_seed(s, r) < 2**31 for s in range(5) for r in range(50))


# ---------------------------------------------------------------- row ids from the loaders


def test_tabular_row_ids_name_the_source_rows_through_filter_and_sample(project):
    spec = project.spec(data={"filter": "age >= 40", "sample": {"n": 50}})
    data = load_data(load_config(spec))
    source = project.frame
    kept = source.index[source.age >= 40]
    assert data.row_ids.dtype == np.int64 and len(data.row_ids) == data.n == 50
    assert set(data.row_ids) <= set(kept) and np.all(np.diff(data.row_ids) > 0)
    # the row with id r is line r of the file: its values are the source row's
    np.testing.assert_allclose(data.frame["x1"].to_numpy(), source.loc[data.row_ids, "x1"].to_numpy())


def test_image_row_ids_are_the_sampled_positions(project):
    images = np.random.default_rng(0).uniform(0, 1, (30, 1, 4, 4)).astype(np.float32)
    labels = np.arange(30) % 3
    data = load_data(_image_spec(project, images, labels, sample={"n": 10}))
    assert len(data.row_ids) == 10
    np.testing.assert_array_equal(data.features.numpy(), images[data.row_ids])
    np.testing.assert_array_equal(data.labels, labels[data.row_ids])
    assert data.sensitive.tone.tolist() == [["a", "b"][r % 2] for r in data.row_ids]


# ---------------------------------------------------------------- per-batch candidates


def _config(*, kind: str, classes: int, seed: int, rows: int, costly: int, local: dict, examples: int,
            others: tuple[int, int, int] = (5, 5, 5)):
    checks = Checks.model_validate({
        "explanations": {"rows": rows, "costly_rows": costly, "local": local},
        "robustness": {"rows": others[0]},
        "token_attributions": {"rows": others[1], "costly_rows": costly, "examples": examples},
        "text_robustness": {"rows": others[2]},
    })
    label = LabelSpec(column="y", classes=list(range(classes)))  # binary: the second class is positive
    return SimpleNamespace(seed=seed, checks=checks, data=SimpleNamespace(kind=kind, label=label),
                           model=SimpleNamespace(kind="torchscript", threshold=0.5))


def _view(config, row_ids, labels, probabilities):
    """A context over some rows: what the picking functions read."""
    classes = probabilities.shape[1]
    decisions = probabilities.argmax(axis=1)
    scores = probabilities[:, 1] if classes == 2 else None
    data = AuditData(labels=labels, classes=tuple(str(c) for c in range(classes)),
                     positive_index=1 if classes == 2 else None, sensitive=pd.DataFrame(index=range(len(labels))),
                     features=None, row_ids=row_ids)
    return SimpleNamespace(config=config, data=data, predictions=Predictions(decisions, probabilities, scores), seed=config.seed)


def _picks(ctx) -> dict[str, list]:
    """Every pick of every stream the spec runs, as row ids (order kept where it means something)."""
    ids = ctx.data.row_ids
    checks, seed = ctx.config.checks, ctx.seed
    sizes = sampling.stream_sizes(ctx.config)
    out: dict[str, list] = {stream: ids[sampling.sorted_sample(ids, seed, stream, k)].tolist() for stream, k in sizes.items()}
    if "explanations" in sizes:
        sample = sampling.sample(ids, seed, "explanations", checks.explanations.rows)
        out["explanations"] = ids[sample].tolist()  # in hash order: the costly methods take its head
        out["local"] = [(int(ids[r.row]), r.reason) for r in plan.local_rows(ctx, sample)]
    if "text_explanations" in sizes:
        errors = text_checks.text_worst_errors(ctx, checks.token_attributions.examples)
        margin = np.abs(ctx.predictions.scores - 0.5)
        out["text_errors"] = ids[errors].tolist()
        out["text_uncertain"] = ids[sampling.least_certain(ids, margin, checks.token_attributions.examples, exclude=errors)].tolist()
    return out


@contextlib.contextmanager
def small_streams(background: int, proxies: int):
    """Fixed-size streams smaller than the data, so that the candidates are not every row anyway."""
    with mock.patch.object(sampling, "BACKGROUND_ROWS", background), mock.patch.object(sampling, "PROXY_ROWS", proxies):
        yield


@st.composite
def sharded_data(draw):
    n = draw(st.integers(1, 1500))
    classes = draw(st.sampled_from([2, 3]))
    seed = draw(st.integers(0, 2**32))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    levels = draw(st.sampled_from([2, 3, 10, 1000]))  # few levels: many tied probabilities and margins
    raw = rng.integers(0, levels, (n, classes)) + 1.0
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    # mostly right, or a coin: few errors put the most confident errors among the least certain rows
    wrong = rng.uniform(size=n) < draw(st.sampled_from([0.03, 0.2, 0.6]))
    labels = np.where(wrong, rng.integers(0, classes, n), probabilities.argmax(axis=1))
    if classes == 2 and draw(st.booleans()):
        # errors near the threshold, right answers a little farther: the most confident errors are
        # then among the smallest margins, and the least certain rows must look past them
        offset = np.where(wrong, rng.integers(1, 10, n), rng.integers(5, 40, n)) / 100 * rng.choice([-1, 1], n)
        probabilities = np.stack([0.5 - offset, 0.5 + offset], axis=1)
        labels = np.where(wrong, 1 - probabilities.argmax(axis=1), probabilities.argmax(axis=1))
    row_ids = np.sort(rng.choice(5 * n, n, replace=False)).astype(np.int64)  # a filter left gaps
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=8))) - {n})
    kind = "text" if classes == 2 and draw(st.booleans()) else draw(st.sampled_from(["tabular", "image"]))
    local = {"worst_errors": draw(st.integers(0, 6)), "least_certain": draw(st.integers(0, 6)),
             "ids": draw(st.lists(st.sampled_from(row_ids.tolist()), max_size=3, unique=True))}
    # small streams, so that the chosen rows are not all kept anyway as some stream's sample
    others = tuple(draw(st.integers(1, 40)) for _ in range(3))
    config = _config(kind=kind, classes=classes, seed=seed, rows=draw(st.integers(1, 40)), costly=draw(st.integers(1, 30)),
                     local=local, examples=draw(st.integers(0, 4)), others=others)
    return config, row_ids, labels, probabilities, cuts, (draw(st.integers(1, 100)), draw(st.integers(1, 100)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sharded_data())
def test_candidates_of_any_sharding_re_pick_the_whole_data_picks(case):
    config, row_ids, labels, probabilities, cuts, (background, proxies) = case
    whole = _view(config, row_ids, labels, probabilities)
    kept = []
    with small_streams(background, proxies):
        for part in np.split(np.arange(len(row_ids)), cuts):
            shard = _view(config, row_ids[part], labels[part], probabilities[part])
            mask = sampling.candidate_mask(config, shard.data.row_ids, shard.data.labels, shard.predictions)
            kept.append(part[mask])
        chosen = np.concatenate(kept)
        candidates = _view(config, row_ids[chosen], labels[chosen], probabilities[chosen])
        assert _picks(candidates) == _picks(whole)
    # and the candidates are few: at most the streams' sizes plus the chosen rows, per shard
    assert len(chosen) <= (len(cuts) + 1) * (sum(sampling.stream_sizes(config).values()) + 30)


def test_candidates_keep_the_requested_rows_and_drop_the_rest_of_a_large_batch():
    config = _config(kind="tabular", classes=2, seed=0, rows=5, costly=2, local={"ids": [77], "worst_errors": 0,
                                                                                "least_certain": 0}, examples=0)
    ids = np.arange(10_000)
    probabilities = np.tile([[0.3, 0.7]], (ids.size, 1))
    with small_streams(100, 100):
        mask = sampling.candidate_mask(config, ids, np.ones(ids.size, dtype=int), Predictions(np.ones(ids.size, int), probabilities, None))
        bound = sum(sampling.stream_sizes(config).values()) + 1
    assert mask[77] and mask.sum() <= bound < 1000


@pytest.mark.parametrize("count", [0, 1, 4])
def test_least_certain_skips_excluded_rows_and_keeps_count(count):
    ids = np.arange(10)
    margin = np.array([0.0, 0.0, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    found = sampling.least_certain(ids, margin, count, exclude=np.array([1, 3]))
    assert found.tolist() == [0, 2, 4, 5][:count]


@pytest.mark.parametrize("kind", ["tabular", "text"])
def test_the_least_certain_rows_of_a_batch_look_past_its_most_confident_errors(kind):
    # row 0: the only error, the most confident one, yet nearer the threshold than any right answer;
    # row 1: the least certain right answer. Both in one batch: the batch must keep row 1 too.
    n = 400
    positive = np.full(n, 0.9)
    positive[0], positive[1] = 0.49, 0.56
    probabilities = np.stack([1 - positive, positive], axis=1)
    labels = np.ones(n, dtype=int)
    labels[0] = 1  # predicted 0 (0.49 < 0.5): wrong
    chosen = 1 if kind == "tabular" else 0  # text: the highlights alone
    local = {"worst_errors": chosen, "least_certain": chosen, "ids": []}
    config = _config(kind=kind, classes=2, seed=0, rows=1, costly=1, local=local, examples=1, others=(1, 1, 1))
    with small_streams(1, 1):
        whole = _picks(_view(config, np.arange(n), labels, probabilities))
        mask = sampling.candidate_mask(config, np.arange(n), labels, _view(config, np.arange(n), labels, probabilities).predictions)
    expected = [(0, "worst error"), (1, "least certain")] if kind == "tabular" else None
    assert mask[0] and mask[1]
    if expected:
        assert whole["local"] == expected
    else:
        assert whole["text_errors"] == [0] and whole["text_uncertain"] == [1]


def test_streams_follow_the_checks_that_run_on_the_data_kind():
    def sizes(kind, model="torchscript"):
        config = _config(kind=kind, classes=2, seed=0, rows=5, costly=2, local={}, examples=1)
        config.model.kind = model
        return set(sampling.stream_sizes(config))

    assert sizes("tabular") == sizes("image") == {"explanations", "background", "proxies", "robustness"}
    assert sizes("text") == {"text_explanations", "text_robustness"}
    assert sizes("tabular", model="predictions") == set()
    config = _config(kind="tabular", classes=2, seed=0, rows=5, costly=2, local={"ids": [1]}, examples=1)
    config.model.kind = "predictions"
    ids = np.arange(50)
    probabilities = np.full((50, 2), 0.5)
    assert not sampling.candidate_mask(config, ids, np.zeros(50, int), Predictions(np.zeros(50, int), probabilities, None)).any()
