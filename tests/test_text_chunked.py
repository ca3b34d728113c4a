"""Token attributions and text attacks in chunks through the executor: what chunking keeps, what it seeds.

References: one call of the registered method on all the texts (``attributions.explain``), as
the check made before chunking; the attacks' outcomes with all texts in one chunk, and the
check's numbers before chunking (the demo spec's result.json was equal before and after).
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from audit import load_config, sampling
from audit.runner import build_context
from audit.scale.executor import LocalExecutor
from audit.text import attacks, attributions, checks, chunked
from tests.test_text import project  # noqa: F401  (the tiny text project, once per module)
from tests.text_fixtures import write_spec

DEFAULT_CHUNK = 1024
# the tiny model scores every text about 0.50252: a threshold among its scores splits the
# decisions, so the attacks flip some texts
THRESHOLD = 0.5025154


@pytest.fixture(scope="module")
def context(project):
    return build_context(load_config(write_spec(project, "chunked.yaml", model__threshold=THRESHOLD)))


def explained(ctx, method: str, rows: np.ndarray, size: int) -> chunked.Explained:
    texts = ctx.data.frame["text"].tolist()
    return chunked.explain_in_chunks(LocalExecutor(ctx.model), method, [texts[r] for r in rows], rows,
                                     decisions=ctx.predictions.decisions, row_ids=ctx.data.row_ids, steps=8,
                                     seed=ctx.seed, size=size)


def one_call(ctx, method: str, rows: np.ndarray, seed: int):
    """The method on all ``rows`` in one batch: (word lists, completeness gaps, |f(x) - f(baseline)|, |f(x)|)."""
    texts = ctx.data.frame["text"].tolist()
    batch = attributions.text_batch(ctx.model, [texts[r] for r in rows], rows, ctx.predictions.decisions[rows])
    found = attributions.explain(ctx.model, method, batch, steps=8, seed=seed)
    words = [attributions.word_values(found, batch, i) for i in range(len(rows))]
    return words, found.completeness_gaps(), np.abs(found.outputs - found.base_values), np.abs(found.outputs)


def flat(words) -> tuple[list[str], np.ndarray]:
    return [w.text for ws in words for w in ws], np.array([w.value for ws in words for w in ws])


@pytest.mark.parametrize("method, rows, sizes", [("LayerIntegratedGradients", 15, (DEFAULT_CHUNK, 1, 4)),
                                                 ("LayerGradientXActivation", 15, (DEFAULT_CHUNK, 1, 4)),
                                                 ("Partition", 3, (DEFAULT_CHUNK, 1))])
def test_unseeded_methods_give_each_text_its_values_of_one_call(context, method, rows, sizes):
    """Bit for bit with the default chunk; other chunk sizes to float32 rounding, Partition bit for bit.

    Gradient methods run the model on the chunk's texts cut to the chunk's longest: another
    batch shape may round a float32 output differently in the last place (about 1e-9 of
    outputs near 0.1 here). Partition explains one text per call: chunks change nothing.
    """
    picked = np.arange(0, 3 * rows, 3)
    words, gaps, scales, outputs = one_call(context, method, picked, context.seed)
    texts, values = flat(words)
    for size in sizes:
        found = explained(context, method, picked, size)
        np.testing.assert_array_equal(found.rows, picked)
        assert flat(found.words)[0] == texts
        exact = size == DEFAULT_CHUNK or method == "Partition"
        tolerance = 0.0 if exact else 1e-6 * float(outputs.max())  # float32: 6e-8 relative
        np.testing.assert_allclose(flat(found.words)[1], values, rtol=0, atol=tolerance)
        np.testing.assert_allclose(found.gaps, gaps, rtol=0, atol=tolerance)
        np.testing.assert_allclose(found.scales, scales, rtol=0, atol=tolerance)
    assert np.abs(values).max() > 0


def test_lime_is_seeded_per_chunk_by_its_first_row_id(context):
    """LIME draws its samples from one generator per call: each chunk is one call under its own seed.

    So its values depend on the chunk size (and differ from the one call under the audit seed
    that the check made before chunking), never on which worker runs a chunk.
    """
    picked = np.array([1, 4, 9, 16, 25], dtype=np.int64)
    found = explained(context, "LIME", picked, 2)
    for part in (slice(0, 2), slice(2, 4), slice(4, 5)):
        seed = sampling.chunk_seed(context.seed, int(context.data.row_ids[picked[part][0]]))
        words, gaps, _, _ = one_call(context, "LIME", picked[part], seed)
        np.testing.assert_array_equal(flat(found.words[part])[1], flat(words)[1])
        np.testing.assert_array_equal(found.gaps[part], gaps)
    again = explained(context, "LIME", picked, 2)
    np.testing.assert_array_equal(flat(again.words)[1], flat(found.words)[1])


def test_the_predicted_class_is_explained_as_the_models_output_column(context):
    decisions = np.array([1, 0, 1])
    np.testing.assert_array_equal(chunked.explained_targets(context.model, "she was tired", decisions), decisions)


# ---------------------------------------------------------------- attacks


def attacked(ctx, name: str, size: int, rows: int = 30) -> chunked.Attacked:
    texts = ctx.data.frame["text"].tolist()
    picked = sampling.sorted_sample(ctx.data.row_ids, ctx.seed, "text_robustness", rows)
    section = ctx.config.checks.text_robustness
    settings = dataclasses.replace(checks._attack_settings(ctx, name, section), examples=3)
    chosen = [texts[r] for r in picked]
    return chunked.attack_in_chunks(
        LocalExecutor(ctx.model), chosen, ctx.predictions.decisions[picked] == ctx.data.labels[picked],
        row_ids=ctx.data.row_ids[picked], is_positive=ctx.data.labels[picked] == ctx.data.positive_index,
        readable=checks._readable_words(ctx, chosen), settings=settings, size=size)


@pytest.mark.parametrize("name", ["char", "word"])
def test_attack_outcomes_do_not_depend_on_the_chunks(context, name):
    """Searches are seeded by row id: every text's outcome, and the examples' scores, as in one chunk."""
    whole = attacked(context, name, DEFAULT_CHUNK)
    assert sum(o.flipped for o in whole.outcomes.values()) >= 2  # the attacks did flip texts
    assert len(whole.example_scores) == min(3, sum(o.flipped for o in whole.outcomes.values()))
    for size in (1, 4, 7):
        found = attacked(context, name, size)
        assert found.outcomes == whole.outcomes
        assert found.example_scores == whole.example_scores


def test_example_scores_are_each_adversarial_text_scored_alone(context):
    found = attacked(context, "word", 4)
    for key, score in found.example_scores.items():
        expected = checks.positive_scores(context, [found.outcomes[key].adversarial])[0][0]
        assert score == expected


def test_tasks_and_their_results_pickle(context):
    texts = context.data.frame["text"].tolist()
    settings = checks._attack_settings(context, "char", context.config.checks.text_robustness)
    task = chunked.AttackTask((0, 1), tuple(texts[:2]), (0, 1), (True, False), (3, 3), settings)
    result = task.run(context.model)
    assert pickle.loads(pickle.dumps(task)) == task
    assert pickle.loads(pickle.dumps(result)) == result
    explain = chunked.ExplainTask("LayerIntegratedGradients", tuple(texts[:2]), np.arange(2), np.ones(2, dtype=np.int64), 8, 0)
    again = pickle.loads(pickle.dumps(explain)).run(context.model)
    np.testing.assert_array_equal(flat(again.words)[1], flat(explain.run(context.model).words)[1])


def test_word_neighbours_are_built_once_per_model_until_its_weights_change(context, monkeypatch):
    built = []
    original = attacks.model_neighbours
    monkeypatch.setattr(attacks, "model_neighbours", lambda model, k: built.append(k) or original(model, k))
    settings = dataclasses.replace(checks._attack_settings(context, "word", context.config.checks.text_robustness),
                                   neighbours=5)
    first = chunked.attack_candidates(context.model, settings)("work", None)
    chunked.attack_candidates(context.model, settings)
    assert built == [5] and len(first) == 5
    weight = context.model.embeddings.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.mul_(-1.0)  # in place: the neighbours of other weights must not be reused
        chunked.attack_candidates(context.model, settings)
        assert built == [5, 5]
    finally:
        with torch.no_grad():
            weight.copy_(saved)


# ---------------------------------------------------------------- the check's measurements


def test_method_agreement_pairs_each_costly_text_with_the_same_texts_primary_words(project):
    """A costly method explains fewer texts than the primary one: they are compared text by text."""
    spec = write_spec(project, "agreement.yaml", checks__token_attributions={
        "methods": ["LayerIntegratedGradients", "Partition"], "rows": 8, "costly_rows": 3, "steps": 8, "examples": 0})
    ctx = build_context(load_config(spec))
    [measured] = [m for m in checks.run_token_attributions(ctx) if m.metric == "method_agreement"]
    sample = sampling.sorted_sample(ctx.data.row_ids, ctx.seed, "text_explanations", 8)
    costly = sampling.sorted_sample(ctx.data.row_ids, ctx.seed, "text_explanations", 3)
    primary = dict(zip(sample.tolist(), one_call(ctx, "LayerIntegratedGradients", sample, 0)[0]))
    rhos = [spearmanr([w.value for w in primary[row]], [w.value for w in words]).statistic
            for row, words in zip(costly.tolist(), one_call(ctx, "Partition", costly, 0)[0]) if len(words) > 2]
    rhos = [r for r in rhos if np.isfinite(r)]
    assert measured.n == len(rhos) > 0
    assert measured.value == pytest.approx(float(np.mean(rhos)), abs=1e-12)
