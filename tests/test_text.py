"""Text data kind: loading, batched prediction, identity groups, bias AUCs, swaps, attributions, attacks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from audit import load_config, run_audit
from audit.cli import main
from audit.config import SwapSpec
from audit.runner import build_context
from audit.text import attacks
from audit.text.counterfactual import directions
from tests.text_fixtures import make_project, save_model, write_spec


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    make_project(root)
    return root


@pytest.fixture(scope="module")
def context(project):
    return build_context(load_config(project / "spec.yaml"))


@pytest.fixture(scope="module")
def result(project):
    return run_audit(load_config(project / "spec.yaml"))


def _hugging_face(project):
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(project / "model", local_files_only=True).eval()
    tokenizer = Tokenizer.from_file(str(project / "model" / "tokenizer.json"))
    tokenizer.enable_truncation(10)
    return model, tokenizer


def test_length_sorted_batches_equal_one_text_at_a_time(project, context):
    model, tokenizer = _hugging_face(project)
    texts = context.data.frame["text"].tolist()
    expected = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer.encode(text).ids])
            expected.append(torch.softmax(model(input_ids=ids).logits, dim=1)[0, 1].item())
    assert np.allclose(context.predictions.scores, expected, atol=1e-6)


def test_truncation_and_identity_mentions_counted_by_hand(context):
    texts = context.data.frame["text"].tolist()
    assert context.data.summary["text"]["truncated"] == sum(len(t.split()) > 8 for t in texts)  # 10 minus [CLS], [SEP]
    female = [bool(re.search(r"\b(she|her|wife|mom)\b", t, re.IGNORECASE)) for t in texts]
    assert (context.data.sensitive["mentions:female"] == "yes").tolist() == female
    assert context.data.summary["text"]["identity_mentions"]["female"] == sum(female)


def test_bias_aucs_of_the_audit_match_sklearn(context, result):
    positive = context.data.labels == 1
    scores = context.predictions.scores
    subgroup = (context.data.sensitive["mentions:male"] == "yes").to_numpy()
    found = {m.metric: m.value for m in result.select("identity_bias") if m.group == {"identity": "male"}}
    assert abs(found["subgroup_auc"] - roc_auc_score(positive[subgroup], scores[subgroup])) <= 1e-12
    bpsn = (~subgroup & positive) | (subgroup & ~positive)
    assert abs(found["bpsn_auc"] - roc_auc_score(positive[bpsn], scores[bpsn])) <= 1e-12
    bnsp = (~subgroup & ~positive) | (subgroup & positive)
    assert abs(found["bnsp_auc"] - roc_auc_score(positive[bnsp], scores[bnsp])) <= 1e-12


def test_fairness_check_measures_identity_mention_groups(result):
    groups = {tuple(m.group.items()) for m in result.select("fairness", "selection_rate") if m.group}
    assert (("mentions:female", "yes"),) in groups and (("source", "chat"),) in groups


def test_swaps_keep_case_and_choose_his_or_him():
    female_to_male = directions(SwapSpec(groups=("male", "female"), pairs=[("his", "her"), ("him", "her"), ("he", "she")]))[1]
    assert female_to_male.rewrite("She told her. Her car; gave her the keys") == "He told him. His car; gave him the keys"
    assert female_to_male.rewrite("shell sheep") == "shell sheep"


def test_counterfactual_flip_rate_counted_by_hand(project, context, result):
    model, tokenizer = _hugging_face(project)
    texts = context.data.frame["text"].tolist()
    direction = directions(SwapSpec(groups=("male", "female"), pairs=[
        ("he", "she"), ("his", "her"), ("him", "her"), ("husband", "wife"), ("dad", "mom")]))[0]
    flips, changes = [], []
    with torch.no_grad():
        for text, before in zip(texts, context.predictions.scores):
            if direction.pattern.search(text):
                ids = torch.tensor([tokenizer.encode(direction.rewrite(text)).ids])
                after = torch.softmax(model(input_ids=ids).logits, dim=1)[0, 1].item()
                flips.append((after >= 0.5) != (before >= 0.5))
                changes.append(after - before)
    found = {m.metric: m for m in result.select("counterfactual") if m.params.get("direction") == "male->female"}
    assert found["counterfactual_texts"].value == len(flips)
    assert found["counterfactual_flip_rate"].value == pytest.approx(np.mean(flips), abs=1e-12)
    assert found["counterfactual_mean_score_change"].value == pytest.approx(np.mean(changes), abs=1e-6)
    low, high = found["counterfactual_flip_rate"].ci
    assert low <= found["counterfactual_flip_rate"].value <= high


def test_layer_integrated_gradients_equal_captum_called_directly(context):
    from captum.attr import LayerIntegratedGradients

    from audit.text import attributions

    rows = np.array([0, 3, 5])
    texts = [context.data.frame["text"][r] for r in rows]
    batch = attributions.text_batch(context.model, texts, rows, context.predictions.decisions[rows])
    ours = attributions.explain(context.model, "LayerIntegratedGradients", batch, steps=8, seed=0)
    module = context.model.module
    for i, row in enumerate(rows):
        ids = context.model.tokenizer.encode([texts[i]]).ids
        baseline = ids.clone()
        baseline[0, 1:-1] = 0
        method = LayerIntegratedGradients(lambda x: module(input_ids=x).logits, module.get_input_embeddings())
        direct = method.attribute(ids, baselines=baseline, target=int(context.predictions.decisions[row]), n_steps=8)
        assert np.allclose(ours.values[i, : ids.shape[1]], direct.sum(-1)[0].detach().numpy(), atol=1e-5)
    assert np.abs(ours.completeness_gaps()).max() < 0.05 * max(np.abs(ours.outputs - ours.base_values).max(), 1e-3) + 1e-3


def _toy_scorer(text: str) -> float:
    # the true class's probability falls with every edited (unknown) word
    known = set("the a to and work exam money sleep party friend stress".split())
    words = re.findall(r"[A-Za-z']+", text)
    return 1.0 - 0.12 * sum(w.lower() not in known for w in words)


def test_one_sweep_equals_independent_runs_at_each_budget():
    text = "stress work exam money sleep party friend the a to and stress exam work"
    scorer = lambda batch: np.array([_toy_scorer(t) for t in batch])  # noqa: E731
    options = dict(candidates=attacks.char_candidates, protected=lambda w: False, readable_words=100, seed=3)
    flipped = lambda p: p < 0.5  # noqa: E731
    words = len(attacks.pieces(text)) // 2 + 1
    sweep = attacks.run_searches({0: attacks.search(text, flipped, limit=words, **options)},
                                 lambda k, s: s, scorer)[0]
    for limit in range(0, words + 1):
        alone = attacks.run_searches({0: attacks.search(text, flipped, limit=limit, **options)}, lambda k, s: s, scorer)[0]
        expected = (alone.flipped, alone.change_queries[-1] if alone.flipped else alone.queries, len(alone.change_queries))
        assert sweep.at_limit(limit) == expected


def test_attack_metrics_follow_textattack_definitions(result):
    found = {(m.metric, m.params["attack"], m.params["budget"]): m for m in result.select("text_robustness")
             if m.group is None and "budget" in m.params}
    attempted = result.select("text_robustness", "texts_attacked")[0].value
    for attack in ("char", "word"):
        success = found[("attack_success_rate", attack, 0.3)]
        robust = found[("robust_accuracy", attack, 0.3)]
        # accuracy under attack = correct and not broken over all attacked; success over the correct ones
        correct = success.n
        assert robust.value == pytest.approx((correct - round(success.value * correct)) / attempted, abs=1e-12)
        assert found[("robust_accuracy", attack, 0.1)].value >= robust.value


def test_report_escapes_texts(project, tmp_path):
    import pandas as pd

    root = tmp_path
    frame = pd.read_csv(project / "texts.csv")
    frame.loc[0, "text"] = "<script>alert(1)</script> she told her husband stress"
    frame.to_csv(root / "texts.csv", index=False)
    save_model(root / "model")
    spec = write_spec(root)
    assert main(["run", str(spec), "--out", str(root / "out"), "--quiet"]) in (0, 1)
    html = (root / "out" / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and 'id="text"' in html


BAD_INPUT = {
    "missing text column": ({"data__text_column": "body"}, "body"),
    "max length past positions": ({"data__tokenizer": {"max_length": 64}}, "positions"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_spec_is_one_line_exit_2_no_files(project, tmp_path, capsys, case):
    changes, word = BAD_INPUT[case]
    import shutil

    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    shutil.copytree(project / "model", tmp_path / "model")
    spec = write_spec(tmp_path, **changes)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err
    _no_files(tmp_path / "out")


def test_empty_text_vocab_mismatch_and_pickle_folder_refused(project, tmp_path, capsys):
    import pandas as pd

    frame = pd.read_csv(project / "texts.csv")
    frame.loc[4, "text"] = "   "
    frame.to_csv(tmp_path / "texts.csv", index=False)
    save_model(tmp_path / "model")
    spec = write_spec(tmp_path)
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "row 4" in capsys.readouterr().err

    pd.read_csv(project / "texts.csv").to_csv(tmp_path / "texts.csv", index=False)
    save_model(tmp_path / "model", vocab_extra=-5)
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "embeds only" in capsys.readouterr().err

    save_model(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.rename(tmp_path / "model" / "pytorch_model.bin")
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "safetensors" in capsys.readouterr().err
    _no_files(tmp_path / "out")


def test_identity_group_without_matches_warns_with_counts(project, tmp_path):
    import shutil

    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    shutil.copytree(project / "model", tmp_path / "model")
    spec = write_spec(tmp_path, data__identity={"female": ["she"], "nobody": ["zyzzyva"]},
                      checks__text_robustness={"enabled": False}, checks__token_attributions={"enabled": False})
    found = run_audit(load_config(spec))
    assert any("'nobody'" in w and "90" in w for w in found.warnings)
    assert {m.group["identity"] for m in found.select("identity_bias") if m.group} == {"female"}


def _no_files(out):
    assert not out.exists() or not any(out.iterdir()), f"files left in {out}"


def test_partition_and_lime_run_and_partition_values_sum_to_the_output_change(context):
    from audit.text import attributions

    texts = context.data.frame["text"].tolist()
    rows = np.array([i for i, t in enumerate(texts) if len(t.split()) <= 6][:2])
    batch = attributions.text_batch(context.model, [texts[r] for r in rows], rows, context.predictions.decisions[rows])
    shap_values = attributions.explain(context.model, "Partition", batch, steps=8, seed=0)
    probabilities = context.predictions.probabilities[rows, context.predictions.decisions[rows]]
    assert np.allclose(shap_values.outputs, probabilities, atol=1e-6)
    assert np.allclose(shap_values.values.sum(axis=1), shap_values.outputs - shap_values.base_values, atol=1e-9)
    lime_values = attributions.explain(context.model, "LIME", batch, steps=8, seed=0)
    assert np.abs(lime_values.values).sum() > 0
    assert [w.text for w in attributions.word_values(lime_values, batch, 0)] == texts[rows[0]].split()


BAG_SOURCE = '''
import torch


class Bag(torch.nn.Module):
    def __init__(self, vocab=40, width=8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.out = torch.nn.Linear(width, 2)

    def forward(self, ids, mask):
        vectors = self.embed(ids) * mask.unsqueeze(-1)
        return self.out(vectors.sum(1) / mask.sum(1, keepdim=True))


def build():
    torch.manual_seed(0)
    return Bag()
'''


def test_state_dict_module_taking_ids_and_mask_from_jsonl(project, tmp_path):
    import importlib.util

    import pandas as pd
    from safetensors.torch import save_file

    (tmp_path / "bag.py").write_text(BAG_SOURCE)
    spec_module = importlib.util.spec_from_file_location("bag_for_test", tmp_path / "bag.py")
    bag = importlib.util.module_from_spec(spec_module)
    spec_module.loader.exec_module(bag)
    module = bag.build().eval()
    save_file(module.state_dict(), str(tmp_path / "bag.safetensors"))
    frame = pd.read_csv(project / "texts.csv")
    frame.to_json(tmp_path / "texts.jsonl", orient="records", lines=True)
    spec = write_spec(tmp_path, data__path="texts.jsonl",
                      data__tokenizer={"path": str(project / "model" / "tokenizer.json"), "max_length": 10},
                      model={"kind": "state_dict", "path": "bag.safetensors", "factory": "bag.py:build"})
    ctx = build_context(load_config(spec))
    _, tokenizer = _hugging_face(project)
    with torch.no_grad():
        expected = [torch.softmax(module(torch.tensor([tokenizer.encode(t).ids]), torch.ones(1, len(tokenizer.encode(t).ids), dtype=torch.long)), 1)[0, 1].item()
                    for t in frame["text"]]
    assert np.allclose(ctx.predictions.scores, expected, atol=1e-6)


def test_demo_spec_validates_with_identity_group_thresholds(capsys):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "examples" / "dreaddit_transformer.yaml"
    assert main(["validate", str(spec)]) == 0
    assert "valid" in capsys.readouterr().out


def test_threshold_on_an_identity_group_is_judged(project, tmp_path):
    import shutil

    shutil.copy(project / "texts.csv", tmp_path / "texts.csv")
    shutil.copytree(project / "model", tmp_path / "model")
    spec = write_spec(tmp_path, thresholds=["subgroup_auc[identity=female] >= 0.01",
                                            "selection_rate[mentions:male=yes] <= 1"],
                      checks__text_robustness={"enabled": False}, checks__token_attributions={"enabled": False})
    found = run_audit(load_config(spec))
    assert [f.verdict for f in found.findings] == ["pass", "pass"]
