"""Word importance by group and the counterfactual highlights, against hand computations.

Every text of the tiny project is explained (``rows`` covers them all), so the hand computation
starts from the same per-text word attributions: the methods are deterministic, and
:func:`audit.text.attributions.word_values` is checked against Captum in ``test_text.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from audit import load_config, run_audit
from audit.results import AuditResult, Measurement
from audit.runner import build_context
from audit.text import attributions
from tests.text_fixtures import make_project, write_spec

IDENTITY = {"female": ["she", "her", "wife", "mom"], "male": ["he", "him", "his", "husband", "dad"]}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_groups")
    make_project(root)
    spec = write_spec(root, "all.yaml", checks__token_attributions={"rows": 90, "steps": 8, "examples": 2},
                      checks__text_robustness={"enabled": False})
    config = load_config(spec)
    return build_context(config), run_audit(config)


def _hand_words(ctx) -> pd.DataFrame:
    """One row per (text, word): the word, lower-cased, and its share of the text's absolute attribution."""
    texts = ctx.data.frame["text"].tolist()
    rows = np.arange(len(texts))
    batch = attributions.text_batch(ctx.model, texts, rows, ctx.predictions.decisions)
    found = attributions.explain(ctx.model, "LayerIntegratedGradients", batch, steps=8, seed=ctx.seed)
    records = []
    for i in rows:
        words = attributions.word_values(found, batch, int(i))
        total = sum(abs(w.value) for w in words)
        records += [{"text": int(i), "word": w.text.lower(), "share": abs(w.value) / total} for w in words]
    return pd.DataFrame(records)


def _top(frame: pd.DataFrame, top: int) -> list[tuple[str, float, int]]:
    frame = frame[frame["word"].str.contains(r"[A-Za-z0-9]")]
    table = frame.groupby("word")["share"].agg(["mean", "size"]).reset_index()
    table = table[table["size"] >= 3].sort_values(["mean", "word"], ascending=[False, True], kind="stable")
    ranked = sorted(zip(table["word"], table["mean"], table["size"]), key=lambda t: (-t[1], t[0]))
    return [(w, float(m), int(n)) for w, m, n in ranked[:top]]


def _mentions(texts: list[str], terms: list[str]) -> np.ndarray:
    pattern = re.compile(r"\b(" + "|".join(terms) + r")\b", re.IGNORECASE)
    return np.array([pattern.search(t) is not None for t in texts])


def _found(result, group) -> list[tuple[str, float, int]]:
    return [(m.params["token"], m.value, m.n) for m in result.select("token_attributions", "token_importance")
            if m.group == group]


def test_top_words_per_identity_and_metadata_group_equal_a_hand_computation(audited):
    ctx, result = audited
    words = _hand_words(ctx)
    texts = ctx.data.frame["text"].tolist()
    groups = {("identity", g): _mentions(texts, terms) for g, terms in IDENTITY.items()}
    groups |= {("source", s): (ctx.data.frame["source"] == s).to_numpy() for s in ("chat", "forum")}
    cases = [(None, _top(words, 15))]
    cases += [({column: value}, _top(words[words["text"].isin(np.flatnonzero(mask))], 10))
              for (column, value), mask in groups.items()]
    for group, expected in cases:
        found = _found(result, group)
        assert expected and [t for t, _, _ in found] == [t for t, _, _ in expected], group
        np.testing.assert_allclose([v for _, v, _ in found], [v for _, v, _ in expected], rtol=0, atol=1e-12)
        assert [n for _, _, n in found] == [n for _, _, n in expected]
    for m in result.select("token_attributions", "token_importance"):
        assert m.ci is not None and m.ci[0] <= m.value <= m.ci[1], m


def test_identity_share_per_group_equals_a_hand_computation(audited):
    ctx, result = audited
    words = _hand_words(ctx)
    shares = {m.group["identity"]: m for m in result.select("token_attributions", "identity_attribution_share")}
    for group, terms in IDENTITY.items():
        words["term"] = words["word"].isin(terms)
        mentioning = words.groupby("text")["term"].any()
        carried = words[words["term"]].groupby("text")["share"].sum().reindex(mentioning[mentioning].index)
        assert shares[group].n == len(carried)
        assert shares[group].value == pytest.approx(carried.mean(), abs=1e-12)


def test_texts_with_the_largest_counterfactual_change_are_highlighted_with_both_texts_words(audited):
    ctx, result = audited
    highlights = result.select("token_attributions", "highlighted_text")
    others = {m.params["row"] for m in highlights if m.params["reason"] != "largest counterfactual change"}
    swapped = [m for m in highlights if m.params["reason"] == "largest counterfactual change"]
    # every swapped text with its change, from the counterfactual check's own examples (hand-checked in test_text.py)
    examples = sorted(((abs(m.value), m.params["row"], m) for m in result.select("counterfactual", "counterfactual_example")),
                      key=lambda t: (-t[0], t[1]))
    expected = [m for _, row, m in examples if row not in others][:2]
    assert [m.params["row"] for m in swapped] == [m.params["row"] for m in expected]
    for highlight, example in zip(swapped, expected):
        assert highlight.params["counterfactual"] == example.params["counterfactual"]
        assert highlight.params["counterfactual_change"] == pytest.approx(example.value, abs=1e-12)
        row = highlight.params["row"]
        batch = attributions.text_batch(ctx.model, [example.params["text"], example.params["counterfactual"]],
                                        np.array([row, row]), ctx.predictions.decisions[[row, row]])
        found = attributions.explain(ctx.model, "LayerIntegratedGradients", batch, steps=8, seed=ctx.seed)
        for key, i in (("words", 0), ("counterfactual_words", 1)):
            direct = attributions.word_values(found, batch, i)
            assert [w for w, _ in highlight.params[key]] == [w.text for w in direct]
            np.testing.assert_allclose([v for _, v in highlight.params[key]], [w.value for w in direct], atol=1e-5)


def test_counterfactual_highlight_and_group_words_are_escaped_in_the_report(audited):
    from audit.report.html import render

    _, result = audited
    hostile = "<script>alert(1)</script>"
    extra = [
        Measurement("token_attributions", "highlighted_text", 0.9, n=1, params={
            "method": "LayerIntegratedGradients", "row": 0, "reason": "largest counterfactual change", "label": "1",
            "positive": True, "words": [["he", 0.5], [hostile, -0.2]], "direction": "male->female",
            "counterfactual": f"she {hostile}", "counterfactual_change": -0.4,
            "counterfactual_words": [["she", 0.1], [hostile, 0.3]]}),
        Measurement("token_attributions", "token_importance", 0.2, ci=(0.1, 0.3), n=3, group={"identity": hostile},
                    params={"method": "LayerIntegratedGradients", "token": hostile}),
    ]
    html = render(AuditResult(**{**result.__dict__, "measurements": [*result.measurements, *extra]}))
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "Swapped</strong> (male-&gt;female" in html


def test_highlights_and_counterfactual_examples_name_rows_by_their_row_id(tmp_path):
    """With a filter and a sample, a row named in the report is the row of the file as read."""
    make_project(tmp_path)
    spec = write_spec(tmp_path, "sampled.yaml", data__filter="source == 'forum'", data__sample={"n": 30},
                      checks__token_attributions={"rows": 10, "steps": 4, "examples": 2},
                      checks__text_robustness={"enabled": False})
    result = run_audit(load_config(spec))
    read = pd.read_csv(tmp_path / "texts.csv")["text"]
    named = result.select("counterfactual", "counterfactual_example")
    assert named and all(read[m.params["row"]] == m.params["text"] for m in named)
    swapped = [m for m in result.select("token_attributions", "highlighted_text")
               if m.params["reason"] == "largest counterfactual change"]
    assert swapped
    for m in swapped:  # the words the model read (10 tokens: the first 8 words)
        words = [w for w, _ in m.params["words"]]
        assert words and words == read[m.params["row"]].split()[: len(words)]
