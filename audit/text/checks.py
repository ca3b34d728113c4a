"""The text checks, registered in :mod:`audit.checks` and run only on text data.

``identity_bias``: Borkan et al. 2019 bias AUCs per identity-mention subgroup, their
generalized power means and the Jigsaw final score, with bootstrap intervals.
``counterfactual``: identity-term swaps (:mod:`audit.text.counterfactual`).
``token_attributions`` and ``text_robustness``: :mod:`audit.text.attributions`,
:mod:`audit.text.attacks`, run in chunks through the executor (:mod:`audit.text.chunked`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit import sampling, stats
from audit.context import AuditContext
from audit.errors import CheckError
from audit.results import Measurement, Reason
from audit.text import bias
from audit.text.identity import MENTIONS_PREFIX, YES

IDENTITY_BIAS_METRICS = (
    *bias.BIAS_METRICS, *(f"{name}_power_mean" for name in bias.BIAS_METRICS), "overall_auc", "bias_score",
)
# which of the subgroup's classes each AUC compares against the background: the rate's denominator
SUBGROUP_CLASSES = {"subgroup_auc": (True, False), "bpsn_auc": (False,), "bnsp_auc": (True,)}


def identity_subgroups(ctx: AuditContext) -> dict[str, np.ndarray]:
    """Identity group -> boolean mask of the texts mentioning it (groups with no mention are absent)."""
    frame = ctx.data.sensitive
    return {
        column[len(MENTIONS_PREFIX):]: (frame[column] == YES).to_numpy()
        for column in frame.columns
        if str(column).startswith(MENTIONS_PREFIX)
    }


def binary_scores(ctx: AuditContext, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not ctx.data.is_binary or ctx.predictions.scores is None:
        raise CheckError(f"{what} needs a binary classifier with scores", hint=f"disable checks.{what} for this model")
    return ctx.data.labels == ctx.data.positive_index, ctx.predictions.scores


def run_identity_bias(ctx: AuditContext) -> list[Measurement]:
    positive, scores = binary_scores(ctx, "identity_bias")
    subgroups = identity_subgroups(ctx)
    if not subgroups:
        ctx.warn("identity_bias: no identity group of data.identity is mentioned in the texts; no bias AUCs")
        return []
    section = ctx.config.checks.identity_bias
    # distinct (label, score, mentions) rows and their counts: a sharded run holds only these,
    # and resampling them by their counts (a row bootstrap) draws the same replicates in both runs
    first, counts = stats.distinct_rows([positive, scores, *subgroups.values()], ctx.data.weights)
    positive, scores = positive[first], scores[first]
    subgroups = {group: mask[first] for group, mask in subgroups.items()}
    ranking = stats.ranking(positive, scores)

    def statistic(weights):
        return bias.bias_statistics(ranking, positive, subgroups, power=section.power,
                                    overall_weight=section.overall_weight, weights=weights)

    point = statistic(counts)
    settings = ctx.config.statistics
    chunks = stats.bootstrap_count_chunks(counts, settings.bootstrap, np.random.default_rng(ctx.seed))
    replicates = stats.replicate(statistic, chunks)
    minimum = ctx.config.checks.fairness.min_group_size

    def interval(key):
        if key not in replicates:
            return None
        low, high = stats.percentile_interval(replicates[key], settings.ci_level)
        return None if np.isnan(low) else (low, high)

    out = []
    for group, mask in subgroups.items():
        for name in bias.BIAS_METRICS:
            out.append(_bias_measurement(name, group, float(point[f"{name}:{group}"]), interval(f"{name}:{group}"),
                                         mask, positive, minimum, counts))
    params = {"p": section.power}
    n = int(counts.sum())
    for name in bias.BIAS_METRICS:
        key = f"{name}:power_mean"
        out.append(_summary(f"{name}_power_mean", point[key], interval(key), n, params))
    out.append(_summary("overall_auc", point["overall_auc"], interval("overall_auc"), n, {}))
    out.append(_summary("bias_score", point["final_score"], interval("final_score"), n,
                        params | {"overall_weight": section.overall_weight}))
    return out


def _bias_measurement(name, group, value, ci, mask, positive, minimum, counts) -> Measurement:
    """One subgroup's AUC; ``counts``: how many texts each (distinct) entry stands for."""
    sizes = [int(counts[mask & (positive == cls)].sum()) for cls in SUBGROUP_CLASSES[name]]
    if np.isnan(value):
        return Measurement("identity_bias", name, None, group={"identity": group}, n=int(counts[mask].sum()),
                           status="undefined", reason=Reason.ONE_CLASS, note="the subset lacks positives or negatives")
    small = min(sizes) < minimum
    note = f"insufficient: the subgroup has {min(sizes)} texts of the class compared, fewer than {minimum}" if small else None
    return Measurement("identity_bias", name, value, group={"identity": group}, ci=ci, n=int(counts[mask].sum()),
                       status="insufficient" if small else None, reason=Reason.SMALL_GROUP if small else None, note=note)


def _summary(metric: str, value, ci, n: int, params: dict) -> Measurement:
    value = float(value)
    if np.isnan(value):
        return Measurement("identity_bias", metric, None, n=n, params=params, status="undefined",
                           reason=Reason.ONE_CLASS, note="a subgroup's AUC is undefined")
    return Measurement("identity_bias", metric, value, ci=ci, n=n, params=params)


# ---------------------------------------------------------------- counterfactual swaps

COUNTERFACTUAL_METRICS = (
    "counterfactual_flip_rate", "counterfactual_mean_score_change", "counterfactual_mean_absolute_score_change",
    "counterfactual_max_score_change", "counterfactual_texts", "counterfactual_example",
)
EXAMPLE_CHARS = 600


def texts_of(ctx: AuditContext) -> list[str]:
    return ctx.data.frame[ctx.config.data.text_column].tolist()


def positive_scores(ctx: AuditContext, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class score and decision (1 = positive) of new texts, as the audit scores its data."""
    from audit.models import predictions_from_outputs

    outputs = ctx.model.score_texts(texts, batch_size=ctx.config.model.batch_size)
    found = predictions_from_outputs(outputs, ctx.data, ctx.config.model)
    return found.scores, found.decisions == ctx.data.positive_index


@dataclass(frozen=True)
class SwapOutcome:
    """One swap direction: the texts that mention its terms, rewritten and scored again."""

    direction: str
    rows: np.ndarray
    rewritten: list[str]
    scores: np.ndarray
    change: np.ndarray
    flips: np.ndarray


def swap_outcomes(ctx: AuditContext) -> dict[str, list[SwapOutcome]]:
    """Every declared swap's directions with their new scores, computed once per audit.

    The counterfactual check measures them; the token attributions highlight the texts whose
    score moved most, so the rewritten texts are scored once, not twice.
    """
    if "swap_outcomes" in ctx.shared:
        return ctx.shared["swap_outcomes"]
    from audit.text.counterfactual import directions

    texts = texts_of(ctx)
    scores = ctx.predictions.scores
    decisions = ctx.predictions.decisions == ctx.data.positive_index
    found: dict[str, list[SwapOutcome]] = {}
    for swap, spec in ctx.config.checks.counterfactual.swaps.items():
        found[swap] = []
        for direction in directions(spec):
            rows = np.flatnonzero([direction.pattern.search(t) is not None for t in texts])
            if rows.size == 0:
                ctx.warn(f"counterfactual swap '{swap}' ({direction.name}): no text mentions a term to swap")
                continue
            rewritten = [direction.rewrite(texts[r]) for r in rows]
            new_scores, new_decisions = positive_scores(ctx, rewritten)
            found[swap].append(SwapOutcome(direction.name, rows, rewritten, new_scores, new_scores - scores[rows],
                                           new_decisions != decisions[rows]))
    ctx.shared["swap_outcomes"] = found
    return found


def run_counterfactual(ctx: AuditContext) -> list[Measurement]:
    ctx = ctx.row_view()  # a sharded run's candidate rows hold every text a swap rewrites
    binary_scores(ctx, "counterfactual")
    section = ctx.config.checks.counterfactual
    if not section.swaps:
        ctx.warn("counterfactual: no swaps declared (checks.counterfactual.swaps); nothing swapped")
        return []
    texts = texts_of(ctx)
    rng = np.random.default_rng(ctx.seed)
    out = []
    for swap, pooled in swap_outcomes(ctx).items():
        for outcome in pooled:
            params = {"swap": swap, "direction": outcome.direction}
            out += _change_measurements(ctx, outcome.change, outcome.flips, params, rng)
        if pooled:
            change = np.concatenate([p.change for p in pooled])
            flips = np.concatenate([p.flips for p in pooled])
            out += _change_measurements(ctx, change, flips, {"swap": swap, "direction": "both"}, rng)
            out += _examples(ctx, swap, pooled, section.examples, texts)
    return out


def largest_changes(pooled: list[SwapOutcome], row_ids: np.ndarray) -> list[tuple[int, str, float, str, float]]:
    """(row, rewritten text, new score, direction, change) of every swapped text, largest |change| first.

    ``row`` is a position in the data; ties go to the smaller row id.
    """
    found = [(int(r), new, float(s), p.direction, float(c)) for p in pooled
             for r, new, s, c in zip(p.rows, p.rewritten, p.scores, p.change)]
    return sorted(found, key=lambda item: (-abs(item[4]), int(row_ids[item[0]])))


def _change_measurements(ctx, change: np.ndarray, flips: np.ndarray, params: dict, rng) -> list[Measurement]:
    settings = ctx.config.statistics
    columns = {
        "counterfactual_flip_rate": flips.astype(np.float64),
        "counterfactual_mean_score_change": change,
        "counterfactual_mean_absolute_score_change": np.abs(change),
    }
    n = len(change)
    replicates = {name: [] for name in columns}
    for weights in stats.bootstrap_weights_chunks(n, settings.bootstrap, rng):
        for name, values in columns.items():
            replicates[name].append(weights @ values / n)
    out = [Measurement("counterfactual", "counterfactual_texts", float(n), n=n, params=params)]
    for name, values in columns.items():
        ci = stats.percentile_interval(np.concatenate(replicates[name]), settings.ci_level) if replicates[name] else None
        out.append(Measurement("counterfactual", name, float(values.mean()), ci=ci, n=n, params=params))
    out.append(Measurement("counterfactual", "counterfactual_max_score_change", float(np.abs(change).max()),
                           n=n, params=params))
    return out


def _examples(ctx, swap: str, pooled: list[SwapOutcome], count: int, texts: list[str]) -> list[Measurement]:
    """The texts whose score moved most, original and rewritten (the report escapes them)."""
    out = []
    row_ids = sampling.ids_of(ctx.data)
    for row, new, score, name, change in largest_changes(pooled, row_ids)[:count]:
        out.append(Measurement("counterfactual", "counterfactual_example", change, n=1, params={
            "swap": swap, "direction": name, "row": int(row_ids[row]), "text": texts[row][:EXAMPLE_CHARS],
            "counterfactual": new[:EXAMPLE_CHARS], "score": float(ctx.predictions.scores[row]),
            "counterfactual_score": score,
        }))
    return out


# ---------------------------------------------------------------- token attributions

TOKEN_ATTRIBUTION_METRICS = (
    "texts_explained", "token_importance", "identity_attribution_share", "completeness_gap", "method_agreement",
    "highlighted_text",
)
TOP_TOKENS = 15
TOP_GROUP_TOKENS = 10
MIN_OCCURRENCES = 3


def validate_token_attributions(config) -> None:
    """Method names against the shared registry; gradient methods refused for a black box (ONNX)."""
    from audit.errors import ConfigError
    from audit.explain import registry
    from audit.text.attributions import TEXT

    field = "checks.token_attributions.methods"
    text_methods = [n for n, m in registry.METHODS.items() if TEXT in m.data]
    black_box = [n for n in text_methods if not registry.get(n).gradients]
    for name in config.checks.token_attributions.methods or []:
        method = registry.get(name)
        if TEXT not in method.data:
            raise ConfigError(f"{field}: {name} works on {' and '.join(method.data)} data, not text",
                              hint=f"use one of {', '.join(text_methods)}")
        if method.gradients and config.model.kind == "onnx":
            raise ConfigError(f"{field}: {name} needs gradients, but an onnx model is a black box",
                              hint=f"use the black-box methods {', '.join(black_box)}")


def prepare_token_attributions(ctx: AuditContext) -> None:
    """Methods the loaded model cannot run (no embedding layer found): refused before any check runs."""
    from audit.errors import ModelError
    from audit.text import attributions as attr

    for name in ctx.config.checks.token_attributions.methods or []:
        why = attr.method_problem(ctx.model, name)
        if why is not None:
            raise ModelError(f"checks.token_attributions.methods: {why}",
                             hint=f"use one of {', '.join(attr.usable(ctx.model))}")


def run_token_attributions(ctx: AuditContext) -> list[Measurement]:
    from audit.explain import registry
    from audit.scale.executor import executor_for
    from audit.text import attributions as attr

    ctx = ctx.row_view()  # a sharded run explains its candidate texts (audit.scale.rows)
    section = ctx.config.checks.token_attributions
    texts = texts_of(ctx)
    rng = np.random.default_rng([ctx.seed, 14])
    row_ids = sampling.ids_of(ctx.data)
    # the rows with the smallest seeded hashes of their row ids (nested: the costly methods' are among them)
    sample = sampling.sorted_sample(row_ids, ctx.seed, "text_explanations", section.rows)
    costly = sampling.sorted_sample(row_ids, ctx.seed, "text_explanations", min(section.costly_rows, section.rows))
    methods = section.methods or attr.defaults(ctx.model)
    with executor_for(ctx.config, ctx.model) as executor:  # the model runs in the executor, never here
        found = {}
        for name in methods:
            rows = costly if registry.get(name).costly else sample
            found[name] = _explained(ctx, executor, name, [texts[r] for r in rows], rows)
        primary = methods[0]
        highlights = _highlights(ctx, executor, primary, texts, section)
    out = [Measurement("token_attributions", "texts_explained", float(e.n), n=e.n, params={"method": n})
           for n, e in found.items()]
    out += _token_importance(ctx, primary, found[primary].words, rng)
    out += _identity_share(ctx, primary, found[primary].rows, found[primary].words, rng)
    out += [_completeness(name, e) for name, e in found.items() if e.additive]
    out += [_agreement(found[primary], e) for name, e in found.items() if name != primary]
    out += highlights
    out += _group_importance(ctx, primary, found[primary].rows, found[primary].words, rng)
    return out


def _explained(ctx: AuditContext, executor, method: str, texts: list[str], rows):
    """``method``'s word attributions of ``texts`` (of the audited ``rows``), toward each row's predicted class."""
    from audit.text.chunked import explain_in_chunks

    section = ctx.config.checks.token_attributions
    return explain_in_chunks(executor, method, texts, rows, decisions=ctx.predictions.decisions,
                             row_ids=sampling.ids_of(ctx.data), steps=section.steps, seed=ctx.seed,
                             size=ctx.config.engine.chunk_rows)


def _shares(words) -> list[tuple[list[str], np.ndarray]]:
    out = []
    for text_words in words:
        magnitude = np.abs([w.value for w in text_words])
        total = magnitude.sum()
        out.append(([w.text.lower() for w in text_words], magnitude / total if total > 0 else magnitude))
    return out


def _mean_with_interval(ctx, values: np.ndarray, rng) -> tuple[float, tuple[float, float] | None]:
    settings = ctx.config.statistics
    if settings.bootstrap == 0 or len(values) < 2:
        return float(values.mean()), None
    replicates = np.concatenate([w @ values / len(values)
                                 for w in stats.bootstrap_weights_chunks(len(values), settings.bootstrap, rng)])
    return float(values.mean()), stats.percentile_interval(replicates, settings.ci_level)


def _token_importance(ctx, method: str, words, rng, *, group: dict | None = None,
                      top: int = TOP_TOKENS) -> list[Measurement]:
    """Mean share of a text's absolute attribution that each frequent word carries (over ``words``' texts)."""
    occurrences: dict[str, list[float]] = {}
    for tokens, shares in _shares(words):
        for token, share in zip(tokens, shares):
            occurrences.setdefault(token, []).append(float(share))
    frequent = {t: np.array(v) for t, v in occurrences.items() if len(v) >= MIN_OCCURRENCES and any(c.isalnum() for c in t)}
    ranked = sorted(frequent, key=lambda t: (-frequent[t].mean(), t))[:top]
    out = []
    for token in ranked:
        value, ci = _mean_with_interval(ctx, frequent[token], rng)
        out.append(Measurement("token_attributions", "token_importance", value, ci=ci, n=len(frequent[token]),
                               group=group, params={"method": method, "token": token}))
    return out


def _group_importance(ctx, method: str, rows: np.ndarray, words, rng) -> list[Measurement]:
    """The top words of each identity group's texts, and of each metadata sensitive group's texts.

    The same statistic as the global importance, over the explained texts of the group only:
    a word that matters more for one group's texts than for the others shows here.
    """
    groups = [({"identity": name}, mask[rows]) for name, mask in identity_subgroups(ctx).items()]
    frame = ctx.data.sensitive
    for column in frame.columns:
        if not str(column).startswith(MENTIONS_PREFIX):
            values = frame[column].to_numpy()[rows]
            groups += [({str(column): str(v)}, values == v) for v in sorted(set(values.tolist()), key=str)]
    out = []
    for group, mask in groups:
        chosen = [w for w, inside in zip(words, mask) if inside]
        out += _token_importance(ctx, method, chosen, rng, group=group, top=TOP_GROUP_TOKENS)
    return out


def _identity_share(ctx, method: str, rows: np.ndarray, words, rng) -> list[Measurement]:
    """Per identity group: the share of attribution its terms carry, in texts mentioning it."""
    from audit.text.identity import term_pattern

    out = []
    for group, terms in ctx.config.data.identity.items():
        pattern = term_pattern(terms)
        values = np.array([sum(s for t, s in zip(tokens, shares) if pattern.fullmatch(t))
                           for tokens, shares in _shares(words)
                           if any(pattern.fullmatch(t) for t in tokens)])
        if values.size == 0:
            continue
        value, ci = _mean_with_interval(ctx, values, rng)
        out.append(Measurement("token_attributions", "identity_attribution_share", value, ci=ci, n=int(values.size),
                               group={"identity": group}, params={"method": method}))
    return out


def _completeness(name: str, explained) -> Measurement:
    gaps = np.abs(explained.gaps)
    return Measurement("token_attributions", "completeness_gap", float(gaps.sum() / max(explained.scales.sum(), 1e-12)),
                       n=explained.n, params={"method": name},
                       note="sum of absolute gaps over sum of |f(x) - f(baseline)|")


def _agreement(first, second) -> Measurement:
    """Mean Spearman correlation of two methods' word attributions over the texts both explain.

    Texts are paired by row: a costly method explains fewer rows than the primary one.
    """
    from scipy.stats import spearmanr

    words = dict(zip(first.rows.tolist(), first.words))
    values = []
    for row, b in zip(second.rows.tolist(), second.words):
        a = words.get(row)
        if a is not None and len(a) > 2:
            rho = spearmanr([w.value for w in a], [w.value for w in b]).statistic
            if np.isfinite(rho):
                values.append(rho)
    return Measurement("token_attributions", "method_agreement", float(np.mean(values)) if values else None,
                       n=len(values), params={"methods": f"{first.method}|{second.method}"},
                       status=None if values else "undefined", reason=None if values else Reason.NO_ROWS)


def text_worst_errors(ctx, count: int) -> np.ndarray:
    """Positions of the wrong decisions farthest from the threshold (ties: smaller row id first)."""
    wrong = np.flatnonzero(ctx.predictions.decisions != ctx.data.labels)
    confidence_in_error = np.abs(ctx.predictions.scores[wrong] - ctx.config.model.threshold)
    return wrong[sampling.smallest(-confidence_in_error, sampling.ids_of(ctx.data)[wrong], count)]


def _highlights(ctx, executor, method: str, texts: list[str], section) -> list[Measurement]:
    """Word attributions of the worst errors, the least certain texts and the largest counterfactual changes.

    A counterfactual highlight also carries the rewritten text's word attributions (toward the
    same class), so a reader sees what the swapped terms did.
    """
    if section.examples == 0:
        return []
    chosen = _chosen_rows(ctx, section.examples)
    swapped = _largest_swaps(ctx, section.examples, {r for r, _ in chosen})
    out = []
    words = _explained(ctx, executor, method, [texts[r] for r, _ in chosen], [r for r, _ in chosen]).words
    for (row, reason), found in zip(chosen, words):
        out.append(_highlight(ctx, method, row, reason, found))
    # the originals and their rewritten texts in one call (one chunk by default), toward the original's class
    swapped_rows = [r for r, _ in swapped]
    words = _explained(ctx, executor, method, [texts[r] for r in swapped_rows] + [new for _, (new, _, _) in swapped],
                       swapped_rows * 2).words
    for k, (row, (new, direction, change)) in enumerate(swapped):
        out.append(_highlight(ctx, method, row, "largest counterfactual change", words[k], {
            "direction": direction, "counterfactual": new[:EXAMPLE_CHARS], "counterfactual_change": change,
            "counterfactual_words": _rounded(words[len(swapped) + k])}))
    return out


def _highlight(ctx, method: str, row: int, reason: str, words, extra: dict | None = None) -> Measurement:
    params = {"method": method, "row": int(sampling.ids_of(ctx.data)[row]), "reason": reason,
              "label": ctx.data.classes[ctx.data.labels[row]],
              "positive": bool(ctx.data.labels[row] == ctx.data.positive_index), "words": _rounded(words)}
    return Measurement("token_attributions", "highlighted_text", float(ctx.predictions.scores[row]), n=1,
                       params=params | (extra or {}))


def _rounded(words) -> list[list]:
    return [[w.text, round(w.value, 6)] for w in words]


def _chosen_rows(ctx, count: int) -> list[tuple[int, str]]:
    """The worst errors (most confident wrong decisions) and the least certain texts, each row once."""
    scores = ctx.predictions.scores
    chosen = [(int(r), "worst error") for r in text_worst_errors(ctx, count)]
    margin = np.abs(scores - ctx.config.model.threshold)
    exclude = np.array([r for r, _ in chosen], dtype=np.int64)
    chosen += [(int(r), "least certain")
               for r in sampling.least_certain(sampling.ids_of(ctx.data), margin, count, exclude=exclude)]
    return chosen


def _largest_swaps(ctx, count: int, taken: set[int]) -> list[tuple[int, tuple[str, str, float]]]:
    """The texts (not already highlighted) whose score a swap moved most: row, (rewritten, direction, change)."""
    pooled = [outcome for outcomes in swap_outcomes(ctx).values() for outcome in outcomes]
    found: list[tuple[int, tuple[str, str, float]]] = []
    for row, new, _, direction, change in largest_changes(pooled, sampling.ids_of(ctx.data)):
        if row not in taken and len(found) < count:
            taken = taken | {row}
            found.append((row, (new, direction, change)))
    return found


# ---------------------------------------------------------------- text attacks

TEXT_ROBUSTNESS_METRICS = (
    "texts_attacked", "robust_accuracy", "attack_success_rate", "perturbed_word_share", "queries_per_example",
    "adversarial_text",
)


def run_text_robustness(ctx: AuditContext) -> list[Measurement]:
    from audit.scale.executor import executor_for
    from audit.text.chunked import attack_in_chunks

    ctx = ctx.row_view()  # a sharded run attacks its candidate texts (audit.scale.rows)
    binary_scores(ctx, "text_robustness")
    section = ctx.config.checks.text_robustness
    texts = texts_of(ctx)
    rows = sampling.sorted_sample(sampling.ids_of(ctx.data), ctx.seed, "text_robustness", section.rows)
    correct = ctx.predictions.decisions[rows] == ctx.data.labels[rows]
    attacked = [texts[r] for r in rows]
    readable = _readable_words(ctx, attacked)
    out = [Measurement("text_robustness", "texts_attacked", float(len(rows)), n=len(rows))]
    with executor_for(ctx.config, ctx.model) as executor:  # the model runs in the executor, never here
        for name in section.attacks:
            if name == "word" and not section.word_vectors and ctx.model.embeddings is None:
                out += _word_attack_skipped(ctx, section)
                continue
            found = attack_in_chunks(executor, attacked, correct, row_ids=sampling.ids_of(ctx.data)[rows],
                                     is_positive=ctx.data.labels[rows] == ctx.data.positive_index, readable=readable,
                                     settings=_attack_settings(ctx, name, section), size=ctx.config.engine.chunk_rows)
            out += _attack_measurements(ctx, name, section, rows, correct, found.outcomes)
            out += _adversarial_examples(ctx, name, section, rows, found, texts)
    return out


def _attack_settings(ctx, name: str, section):
    from audit.text.chunked import AttackSettings

    return AttackSettings(attack=name, budget=max(section.budgets), protected=_protected_terms(ctx, section),
                          neighbours=section.neighbours, word_vectors=section.word_vectors, seed=ctx.seed,
                          examples=section.examples, classes=ctx.data.classes, positive_index=ctx.data.positive_index,
                          model_spec=ctx.config.model)


NO_EMBEDDINGS = ("the word attack needs the model's token embedding matrix for its nearest neighbours, which "
                 "this {kind} model does not expose, and no word-vector file is set "
                 "(checks.text_robustness.word_vectors); only the other attacks ran")


def _word_attack_skipped(ctx, section) -> list[Measurement]:
    """A black box hides its embeddings: the word attack is not run, and its numbers say why (never a pass)."""
    note = NO_EMBEDDINGS.format(kind=ctx.model.kind)
    ctx.warn(f"text_robustness: {note}")
    return [Measurement("text_robustness", "robust_accuracy", None, n=0, params={"attack": "word", "budget": budget},
                        status="undefined", reason=Reason.NO_EMBEDDINGS, note=note) for budget in sorted(section.budgets)]


def _protected_terms(ctx, section) -> tuple[str, ...]:
    """The identity terms the attacks leave alone (none when the spec lets them change)."""
    if section.change_identity_terms:
        return ()
    return tuple(t for group in ctx.config.data.identity.values() for t in group)


def _readable_words(ctx, texts: list[str]) -> list[int]:
    """Words the model reads in each text: those starting before the last token kept by truncation."""
    from audit.text.attacks import pieces

    out = []
    for text, encoding in zip(texts, ctx.model.tokenizer.encodings(texts)):
        ends = [b for (a, b), w in zip(encoding.offsets, encoding.word_ids) if w is not None]
        limit = max(ends, default=0)
        count, position = 0, 0
        for piece in pieces(text):
            if position >= limit:
                break
            count += piece[0].isalpha()
            position += len(piece)
        out.append(count)
    return out


def _attack_measurements(ctx, name, section, rows, correct, outcomes) -> list[Measurement]:
    from audit.text import attacks

    rng = np.random.default_rng([ctx.seed, 16])
    subgroups = {g: mask[rows] for g, mask in identity_subgroups(ctx).items()}
    out = []
    for budget in sorted(section.budgets):
        success = np.zeros(len(rows), dtype=bool)
        queries, share = np.zeros(len(rows)), np.full(len(rows), np.nan)
        for k, outcome in outcomes.items():
            won, spent, changed = outcome.at_limit(attacks.word_limit(budget, outcome.words))
            success[k], queries[k] = won, spent
            if won:
                share[k] = changed / outcome.words
        params = {"attack": name, "budget": budget}
        robust = (correct & ~success).astype(np.float64)
        out.append(_rate(ctx, "robust_accuracy", robust, params, rng))
        out.append(_rate(ctx, "attack_success_rate", success[correct].astype(np.float64), params, rng))
        out.append(_rate(ctx, "perturbed_word_share", share[success], params, rng))
        out.append(_rate(ctx, "queries_per_example", queries[correct], params, rng))
        for group, mask in subgroups.items():
            out.append(_rate(ctx, "robust_accuracy", robust[mask], params, rng, group={"identity": group}))
    return out


def _rate(ctx, metric: str, values: np.ndarray, params: dict, rng, group=None) -> Measurement:
    if values.size == 0:
        return Measurement("text_robustness", metric, None, group=group, n=0, params=params, status="undefined",
                           reason=Reason.NO_ROWS, note="no text to average over")
    value, ci = _mean_with_interval(ctx, values, rng)
    return Measurement("text_robustness", metric, value, group=group, ci=ci, n=int(values.size), params=params)


def _adversarial_examples(ctx, name, section, rows, found, texts) -> list[Measurement]:
    """The successful attacks that changed fewest words; their scores come from the executor."""
    from audit.text.chunked import fewest_changes

    out = []
    for changed, k in fewest_changes(found.outcomes, section.examples):
        row = int(rows[k])
        adversarial = found.outcomes[k].adversarial
        out.append(Measurement("text_robustness", "adversarial_text", found.example_scores[k], n=1, params={
            "attack": name, "row": int(sampling.ids_of(ctx.data)[row]), "words_changed": changed, "text": texts[row][:EXAMPLE_CHARS],
            "adversarial": adversarial[:EXAMPLE_CHARS], "score": float(ctx.predictions.scores[row]),
        }))
    return out
