"""Text: prediction throughput, LayerIntegratedGradients cost, and the attack sweep, on the demo
Dreaddit transformer (examples/dreaddit_transformer.yaml), in one process.

- Prediction: ours (``TextModelAdapter.outputs``: batches sorted by length, each cut to its
  longest text) against a plain batched loop over the same ids padded to the longest text of
  the whole set, both at batch size 64, in texts per second; outputs must agree.
- LayerIntegratedGradients on N texts: ours (``audit.text.attributions``, chunks of 8 texts
  cut to their longest, ``internal_batch_size = 8 x steps``) against Captum's own class called
  one text at a time (the Captum BERT tutorial's loop), and the floor: ``N x steps``
  forward-and-backward passes through the model's embedding output on pre-built inputs, in
  batches of 8 x steps. Attributions must agree.
- Attacks: one greedy sweep with the largest budget read at every budget, against an
  independent search per budget; results must be identical (queries and successes).

Every timing is the best of ``RUNS`` runs. The machine is shared: read ratios, not seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit.config import load_config  # noqa: E402
from audit.runner import build_context  # noqa: E402
from audit.text import attacks, attributions, checks, chunked  # noqa: E402

RUNS = 3
TEXTS_IG = 16
STEPS = 16
ATTACKED = 12


def best(function, runs: int = RUNS) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def plain_loop(module, ids: torch.Tensor, pad: int, batch: int = 64) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(ids), batch):
            part = ids[start : start + batch]
            out.append(module(input_ids=part, attention_mask=(part != pad).long()).logits.double().numpy())
    return np.concatenate(out)


def prediction(ctx) -> list[str]:
    """Both batching modes against the plain loop: exact (slot by row id, padded to max_length), fast (length-sorted)."""
    adapter, ids, row_ids = ctx.model, ctx.data.features, ctx.data.row_ids
    plain_time, plain = best(lambda: plain_loop(adapter.module, ids, adapter.pad_id))
    rows, n = [], len(ids)
    modes = {"exact": lambda: adapter.slot_outputs(ids, row_ids, slots=64),
             "fast": lambda: adapter.outputs(ids, batch_size=64)}
    for mode, run in modes.items():
        ours_time, ours = best(run)
        assert np.allclose(ours, plain, atol=1e-5)
        rows.append(f"| prediction, {n} texts, model.batching: {mode} | {n / ours_time:,.0f} texts/s "
                    f"| plain batched loop {n / plain_time:,.0f} texts/s | {plain_time / ours_time:.2f}x |")
    return rows


def integrated_gradients(ctx) -> list[str]:
    from captum.attr import LayerIntegratedGradients

    adapter = ctx.model
    rows = np.arange(TEXTS_IG)
    texts = [ctx.data.frame["text"][r] for r in rows]
    targets = ctx.predictions.decisions[rows]
    batch = attributions.text_batch(adapter, texts, rows, targets)
    ours_time, ours = best(lambda: attributions.explain(adapter, "LayerIntegratedGradients", batch, steps=STEPS, seed=0))

    module = adapter.module

    def captum_one_by_one():
        method = LayerIntegratedGradients(lambda x: module(input_ids=x).logits, module.get_input_embeddings())
        out = []
        for i, text in enumerate(texts):
            ids = adapter.tokenizer.encode([text]).ids
            base = ids.clone()
            base[0, 1:-1] = adapter.pad_id
            out.append(method.attribute(ids, baselines=base, target=int(targets[i]), n_steps=STEPS).sum(-1)[0])
        return out

    captum_time, direct = best(captum_one_by_one)
    for i, values in enumerate(direct):
        assert np.allclose(ours.values[i, : len(values)], values.detach().numpy(), atol=1e-4)

    embeddings = module.get_input_embeddings()(batch.ids).detach()
    scaled = embeddings.repeat_interleave(STEPS, dim=0).requires_grad_(True)
    mask = batch.mask.repeat_interleave(STEPS, dim=0)
    chunk = 8 * STEPS

    def floor():
        for start in range(0, len(scaled), chunk):
            out = module(inputs_embeds=scaled[start : start + chunk], attention_mask=mask[start : start + chunk]).logits
            out[:, 0].sum().backward()

    floor_time, _ = best(floor)
    return [
        f"| LayerIntegratedGradients, {TEXTS_IG} texts x {STEPS} steps | {ours_time:.2f} s | Captum one text at a time "
        f"{captum_time:.2f} s | {captum_time / ours_time:.2f}x |",
        f"| LayerIntegratedGradients vs its floor (n x steps forward+backward) | {ours_time:.2f} s | floor "
        f"{floor_time:.2f} s | floor/ours {floor_time / ours_time:.2f} |",
    ]


def attack_sweep(ctx) -> list[str]:
    section = ctx.config.checks.text_robustness
    texts = ctx.data.frame["text"].tolist()
    correct = np.flatnonzero(ctx.predictions.decisions == ctx.data.labels)[:ATTACKED]
    protected = chunked.protection(checks._protected_terms(ctx, section))
    positive = ctx.data.labels == ctx.data.positive_index
    readable = dict(zip(correct, checks._readable_words(ctx, [texts[r] for r in correct])))
    budgets = sorted(section.budgets)
    counted = {"queries": 0}

    def score(batch):
        counted["queries"] += len(batch)
        return checks.positive_scores(ctx, batch)[0]

    def run(budget):
        searches = {r: chunked.search(texts[r], row_id=int(ctx.data.row_ids[r]), is_positive=bool(positive[r]),
                                      readable=readable[r], candidates=attacks.char_candidates, protected=protected,
                                      budget=budget, threshold=ctx.config.model.threshold, seed=ctx.seed)
                    for r in correct}
        return attacks.run_searches(searches, lambda r, s: chunked.true_probability(bool(positive[r]), s), score)

    counted["queries"] = 0
    start = time.perf_counter()
    sweep = run(max(budgets))
    sweep_time, sweep_queries = time.perf_counter() - start, counted["queries"]
    counted["queries"] = 0
    start = time.perf_counter()
    for budget in budgets:
        alone = run(budget)
        for r in correct:
            words = alone[r].words
            limit = attacks.word_limit(budget, words)
            expected = (alone[r].flipped, alone[r].change_queries[-1] if alone[r].flipped else alone[r].queries,
                        len(alone[r].change_queries))
            assert sweep[r].at_limit(limit) == expected
    apart_time, apart_queries = time.perf_counter() - start, counted["queries"]
    return [f"| char attack sweep, {len(correct)} texts x {len(budgets)} budgets | {sweep_time:.2f} s, "
            f"{sweep_queries:,} texts scored | independent runs {apart_time:.2f} s, {apart_queries:,} texts scored "
            f"| {apart_time / sweep_time:.2f}x (identical results) |"]


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    ctx = build_context(load_config(ROOT / "examples" / "dreaddit_transformer.yaml"))
    parts = {"prediction": prediction, "integrated_gradients": integrated_gradients, "attack_sweep": attack_sweep}
    rows = [row for name in sys.argv[1:] or parts for row in parts[name](ctx)]
    print("Text (demo Dreaddit transformer, 715 texts, 272k parameters); best of 3 except the attack rows\n")
    print("| what | ours | peer | ratio |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
