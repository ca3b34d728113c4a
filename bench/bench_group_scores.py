"""Per-group score statistics and the checks that use them, against their cost floor.

Synthetic predictions-only data, 1,000,000 rows: continuous scores (every score distinct, the
hardest case for anything that works per distinct score), three sensitive columns (8 x 5 x 5
values, 200 cells) and their pairwise crosses. Timed side by side:

* floor: one stable argsort of the scores and one bincount of the cells (one pass);
* the fairness check's count engine alone (cell tables, stratified bootstrap of the rates);
* the fairness check with per-group ROC-AUC, average precision, log loss and calibration error
  and their intervals (target: within 10x the count engine);
* the performance check (target: within 5x one pass);
* the former route for one grouping, per-group row-resampled bootstrap (1000 replicates over
  the distinct rows of each group), extrapolated from 20 replicates.

Every figure is the best of three runs, in one process, timed with ``time.perf_counter``.
The machine is shared: read the ratios.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pandas as pd

from audit import groups, score_stats, stats
from audit.checks import fairness, performance
from audit.config import AuditConfig, Checks, FairnessCheck, SensitiveSpec, Statistics, TabularData
from audit.context import AuditContext, AuditData, Predictions

ROWS = 1_000_000
REPEATS = 3


def context(rows: int, *, group_scores: bool) -> AuditContext:
    rng = np.random.default_rng(0)
    sensitive = pd.DataFrame({
        "a": rng.choice([f"a{i}" for i in range(8)], rows),
        "b": rng.choice([f"b{i}" for i in range(5)], rows),
        "c": rng.choice([f"c{i}" for i in range(5)], rows),
    })
    score = rng.random(rows)
    labels = (rng.random(rows) < score).astype(np.int64)
    probabilities = np.stack([1 - score, score], axis=1)
    config = AuditConfig.model_construct(
        name="bench", seed=0,
        data=TabularData.model_construct(kind="tabular", sensitive=[SensitiveSpec(column=c) for c in "abc"]),
        checks=Checks(fairness=FairnessCheck(intersections="pairs", group_scores=group_scores)),
        statistics=Statistics(bootstrap=1000),
    )
    data = AuditData(labels=labels, classes=("no", "yes"), positive_index=1, sensitive=sensitive, features=None)
    predictions = Predictions(decisions=(score >= 0.5).astype(np.int64), probabilities=probabilities, scores=score)
    return AuditContext(config=config, data=data, predictions=predictions)


def best(function) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def floor(ctx: AuditContext) -> float:
    cells = groups.code_cells(ctx.data.sensitive)
    return best(lambda: (np.argsort(ctx.predictions.scores, kind="stable"), np.bincount(cells.codes)))


def old_route_one_grouping(ctx: AuditContext, replicates: int) -> float:
    """The former per-group path for the 8 groups of column 'a': distinct rows, then row-weight bootstrap."""
    data, predictions = ctx.data, ctx.predictions
    codes = pd.factorize(data.sensitive["a"])[0]
    positive = data.labels == 1
    losses = stats.log_loss_terms(data.labels, predictions.probabilities)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for g in range(codes.max() + 1):
        rows = codes == g
        first, counts = stats.distinct_rows([-predictions.scores[rows], positive[rows]])
        ranked = stats.ranking(positive[rows][first], predictions.scores[rows][first])
        for chunk in stats.bootstrap_count_chunks(counts, replicates, rng):
            stats.roc_auc_from_table(*ranked.table(chunk))
            stats.weighted_mean(losses[rows][first], chunk)
    return time.perf_counter() - start


def units_and_statistics(ctx: AuditContext) -> float:
    cells = groups.code_cells(ctx.data.sensitive)
    losses = stats.log_loss_terms(ctx.data.labels, ctx.predictions.probabilities)

    def run():
        units = score_stats.collapse(ctx.predictions.scores, ctx.data.labels == 1, cells.codes, losses)
        for grouping in groups.groupings(cells, groups.crosses(cells.columns, "pairs")):
            score_stats.group_statistics(units, grouping.cell_to_group, grouping.size, 10)

    return best(run)


def main() -> None:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    counts_only, scored = context(ROWS, group_scores=False), context(ROWS, group_scores=True)
    one_pass = floor(scored)
    engine = best(lambda: fairness.run(counts_only))
    full = best(lambda: fairness.run(scored))
    statistics_alone = units_and_statistics(scored)
    perf = best(lambda: performance.run(scored))
    old = old_route_one_grouping(scored, 20) * 1000 / 20
    print(f"Per-group score statistics, {ROWS:,} rows, continuous scores, 3 sensitive columns (200 cells) "
          f"+ 3 pairwise crosses (7 groupings, 133 groups), 1000 bootstrap replicates for the rates; "
          f"best of {REPEATS}; load at start: `{load}`\n")
    print("| task | seconds | / one pass | / count engine | target |\n|---|---|---|---|---|")
    rows = [
        ("floor: one argsort of the scores + one bincount of the cells", one_pass, None),
        ("fairness check, counts only (rates, disparities, bootstrap)", engine, None),
        ("score statistics alone: one sort + every group of 7 groupings, with errors", statistics_alone, None),
        ("fairness check with per-group AUC, AP, log loss, ECE and intervals", full, "<= 10x count engine"),
        ("performance check (binary, scores and probabilities)", perf, "<= 5x one pass"),
        ("former route, one grouping (8 groups), row-weight bootstrap x 1000 (from 20)", old, None),
    ]
    for name, seconds, target in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / one_pass:.1f}x | {seconds / engine:.1f}x | {target or ''} |")


if __name__ == "__main__":
    main()
