"""NYC Local Law 144 bias audits: the tables of 6 RCNY 5-301, with intervals, tests and bounds.

The rule's arithmetic (5-300 definitions, 5-301 calculations):

- selection rate of a category = selected / applicants in it;
- scoring rate = the share of the category scoring above the median score of the full sample;
- impact ratio = a category's rate / the rate of the most selected (highest scoring) category;
- separately for sex, race/ethnicity and the intersectional sex x race/ethnicity categories, and
  for each group a classifying tool sorts candidates into;
- individuals in an unknown category are left out and counted;
- optionally, a category under 2% of the data is left out of the impact ratios (5-301(d)).

Beyond the rule, each rate has a Clopper-Pearson interval, each impact ratio a conservative
interval and a two-sample test against the most selected category, and each rate and ratio
bounds for the missing demographics (Gerchick et al., FAccT 2025): see :func:`worst_case_bounds`
and :func:`proportional_bounds`. Counts are taken in one pass over the rows (:func:`cross_counts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from audit.errors import ConfigError, DataError
from audit.catalogue import Metric
from audit.profiles.settings import CategoryColumn, LL144Settings
from audit.results import Measurement, Reason, small_group
from audit.stats import weighted_median

CHECK = "ll144"
SMALL_SHARE = 0.02  # 5-301(d)
MIN_EXPECTED = 5  # every expected cell of the 2x2 table at least this: z-test; else Fisher's exact test
MISSING = "(missing)"  # how the data layer spells a missing sensitive value
RATE = {"selection": ("selected", "selection_rate"), "scoring": ("scored_above_median", "scoring_rate")}
BOUND_METRICS = tuple(
    f"{what}_{side}_{kind}" for what in ("rate", "impact_ratio") for kind in ("worst_case", "proportional") for side in ("min", "max")
)
_COUNTS = ("applicants", "selected", "scored_above_median", "unknown_count")
CATALOGUE = (
    *(Metric(name, name.replace("_", " "), unit="count") for name in _COUNTS),
    Metric("scoring_rate", "scoring rate", denominator="applicants"),
    Metric("impact_ratio", "impact ratio", better="higher", unit="ratio"),
    Metric("impact_ratio_p_value", "p-value of an impact ratio", unit="score"),
    Metric("excluded_share", "share of applicants excluded"),
    Metric("median_score", "median score", unit="score"),
    *(Metric(name, name.replace("_", " ")) for name in BOUND_METRICS),
)
SHARED = ("selection_rate",)  # emitted under the fairness check's catalogue entry: one name, one meaning
METRICS = (*(m.name for m in CATALOGUE), *SHARED)


@dataclass(frozen=True)
class CategoryTable:
    """One table of the rule: per category the applicants and the selected, plus the unknowns.

    ``total`` is everyone the tool assessed (known and unknown): the base of the 2% rule.
    ``classification`` names the group of a classifying tool the table is for, else None.
    """

    table: str
    columns: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    applicants: np.ndarray
    selected: np.ndarray
    unknown_applicants: int
    unknown_selected: int | None
    total: int
    classification: str | None = None


# ---------------------------------------------------------------- counting


def category_codes(values: pd.Series, spec: CategoryColumn) -> np.ndarray:
    """Index of each value in ``spec.categories``; -1 for unknown; a DataError for anything else.

    The rows are hashed once (``pandas.factorize``); the few distinct values are then looked up.
    """
    raw, distinct = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)
    distinct = pd.Index(distinct, dtype=object)
    lookup = np.append(pd.Index(spec.categories, dtype=object).get_indexer(distinct), -1)  # last: missing
    stray = (lookup[:-1] < 0) & ~distinct.isin([*spec.unknown, MISSING])
    if stray.any():
        rows = np.bincount(raw[raw >= 0], minlength=len(distinct))
        found = ", ".join(f"{distinct[i]!r} ({rows[i]} rows)" for i in np.flatnonzero(stray)[:5])
        raise DataError(
            f"ll144: column '{spec.column}' holds {found}, outside the declared categories {spec.categories}",
            hint=f"add them to the categories or to unknown of report.ll144 for '{spec.column}'",
        )
    return lookup[raw]


def cross_counts(codes: list[np.ndarray], sizes: list[int], outcome: np.ndarray, outcomes: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Counts of every (category of each column, outcome) cell in one bincount.

    Unknown (-1) becomes the last level of each column, so the result has shape
    ``(size_1 + 1, ..., size_k + 1, outcomes)`` and every table of the rule is a sum over it.
    """
    cell = np.zeros(len(outcome), dtype=np.int64)
    for code, size in zip(codes, sizes):
        cell *= size + 1
        cell += np.where(code < 0, size, code)
    cell *= outcomes
    cell += outcome
    shape = [size + 1 for size in sizes] + [outcomes]
    counts = np.bincount(cell, weights=weights, minlength=int(np.prod(shape)))
    return np.rint(counts).astype(np.int64).reshape(shape)


def tables_from_counts(counts: np.ndarray, names: list[str], specs: list[CategoryColumn],
                       selected_outcome: int, classification: str | None = None) -> list[CategoryTable]:
    """The sex, race/ethnicity and intersectional tables from :func:`cross_counts`' cube."""
    total = int(counts.sum())
    tables = []
    for axis, (name, spec) in enumerate(zip(names, specs)):
        other = tuple(i for i in range(len(specs)) if i != axis)
        margin = counts.sum(axis=other) if other else counts
        tables.append(_table(name, (spec.column,), [(c,) for c in spec.categories], margin[:-1], margin[-1],
                             total, selected_outcome, classification))
    if len(specs) == 2:
        known = counts[:-1, :-1].reshape(-1, counts.shape[-1])
        unknown = counts.sum(axis=(0, 1)) - known.sum(axis=0)
        keys = [(a, b) for a in specs[0].categories for b in specs[1].categories]
        tables.append(_table("intersectional", (specs[0].column, specs[1].column), keys, known, unknown,
                             total, selected_outcome, classification))
    return tables


def _table(name, columns, keys, known, unknown, total, selected_outcome, classification) -> CategoryTable:
    return CategoryTable(
        table=name, columns=columns, categories=tuple(tuple(k) for k in keys),
        applicants=known.sum(axis=1), selected=known[:, selected_outcome],
        unknown_applicants=int(unknown.sum()), unknown_selected=int(unknown[selected_outcome]),
        total=total, classification=classification,
    )


# ---------------------------------------------------------------- statistics


def clopper_pearson(successes: np.ndarray, trials: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval; NaN where there are no trials. Never a point unless n is infinite."""
    x, n = np.asarray(successes, float), np.asarray(trials, float)
    alpha = 1 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def ratio_interval(x: int, n: int, x_ref: int, n_ref: int, level: float) -> tuple[float, float]:
    """Interval for rate / reference rate: Clopper-Pearson ends at level sqrt(level) each.

    Both intervals hold together with probability at least ``level`` (independent samples), and
    then the ratio lies between low/high_ref and high/low_ref: conservative, exact-based, and it
    keeps a zero count honest (lower end 0) where the log method breaks down.
    """
    inner = math.sqrt(level)
    (low, high), (low_ref, high_ref) = (
        (float(v[0]) for v in clopper_pearson(np.array([a]), np.array([b]), inner)) for a, b in ((x, n), (x_ref, n_ref))
    )
    upper = high / low_ref if low_ref > 0 else math.inf
    return low / high_ref, upper


def two_sample_test(x: int, n: int, x_ref: int, n_ref: int) -> tuple[float, str]:
    """Two-sided p-value for equal rates: pooled z-test when every expected cell >= 5, else Fisher's exact."""
    table = np.array([[x, n - x], [x_ref, n_ref - x_ref]], dtype=float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    if expected.min() >= MIN_EXPECTED:
        pooled = (x + x_ref) / (n + n_ref)
        z = (x / n - x_ref / n_ref) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_ref))
        return float(2 * stats.norm.sf(abs(z))), "z"
    return float(stats.fisher_exact(table.astype(int), alternative="two-sided").pvalue), "fisher"


def _ratios(rates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each rate over the highest rate among reference categories (NaN where that is 0 or absent)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.nanmax(np.where(reference, rates, np.nan), axis=-1, keepdims=True) if reference.any() else np.nan
        return np.where(top > 0, rates / top, np.nan)


def worst_case_bounds(applicants: np.ndarray, selected: np.ndarray, unknown: int, reference: np.ndarray):
    """Bounds when all ``unknown`` individuals belong to one category, all selected or none.

    Rate of c: [s/(n+U), (s+U)/(n+U)]. Impact ratio of c: the least and greatest it takes over
    every such scenario (all unknowns to any one category, all or none selected, and the
    observed table): so "could it fall below 0.8" is answered exactly within these scenarios.
    ``reference`` marks the categories that may be the most selected one (not excluded).
    Returns rate_min, rate_max, ratio_min, ratio_max (NaN where undefined).
    """
    n, s = applicants.astype(float), selected.astype(float)
    k = len(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        scenarios = np.tile(np.where(n > 0, s / n, np.nan), (2 * k + 1, 1))
        every = np.arange(k)
        scenarios[1 + every, every] = (s + unknown) / (n + unknown)
        scenarios[1 + k + every, every] = s / (n + unknown)
        ratios = _ratios(scenarios, reference[None, :])
        rate_min, rate_max = s / (n + unknown), (s + unknown) / (n + unknown)
    return rate_min, rate_max, *_nan_extremes(ratios, n)


def proportional_bounds(applicants: np.ndarray, selected: np.ndarray, unknown: int, reference: np.ndarray):
    """Bounds when unknowns are shared out in proportion to the known category sizes.

    Category c receives u_c = U n_c / sum(n) unknowns, all selected or none: rate of c in
    [s/(n+u), (s+u)/(n+u)]. Impact ratio of c: least with c's share unselected and every other
    share selected; greatest the other way round (the shares are disjoint, so both happen).
    """
    n, s = applicants.astype(float), selected.astype(float)
    share = unknown * n / n.sum() if n.sum() > 0 else np.zeros_like(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(n > 0, s / (n + share), np.nan)
        high = np.where(n > 0, (s + share) / (n + share), np.nan)
    k = len(n)
    ratio_min, ratio_max = np.full(k, np.nan), np.full(k, np.nan)
    for c in range(k):
        if n[c] == 0:
            continue
        # scenario rows: (c low, others high) and (c high, others low)
        pessimistic = np.where(np.arange(k) == c, low, high)
        optimistic = np.where(np.arange(k) == c, high, low)
        ratio_min[c] = _ratios(pessimistic, reference)[c]
        ratio_max[c] = _ratios(optimistic, reference)[c]
    return low, high, ratio_min, ratio_max


def _nan_extremes(ratios: np.ndarray, applicants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    defined = ~np.isnan(ratios)
    low = np.where(defined, ratios, np.inf).min(axis=0)
    high = np.where(defined, ratios, -np.inf).max(axis=0)
    empty = (applicants <= 0) | ~defined.any(axis=0)
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


# ---------------------------------------------------------------- measurements


@dataclass(frozen=True)
class TableOptions:
    basis: str  # "selection" | "scoring"
    level: float
    exclude_small: bool
    min_group_size: int


def included_categories(table: CategoryTable, options: TableOptions) -> np.ndarray:
    """Categories whose impact ratio is calculated: not under 2% of the data when the spec excludes those."""
    if not options.exclude_small or table.total == 0:
        return np.ones(len(table.applicants), dtype=bool)
    return table.applicants / table.total >= SMALL_SHARE


def table_measurements(table: CategoryTable, options: TableOptions) -> list[Measurement]:
    """Every number of one table, as Measurements of check 'll144' with ``params.table``."""
    params = {"table": table.table} | ({"classification": table.classification} if table.classification else {})
    out = [Measurement(CHECK, "unknown_count", float(table.unknown_applicants), None, None, table.unknown_applicants,
                       dict(params), note=_unknown_note(table, RATE[options.basis][0]))]
    figures = _table_figures(table, options)
    for i, key in enumerate(table.categories):
        out += _category_measurements(table, options, figures, i, dict(zip(table.columns, key)), params)
    return out


def _table_figures(table: CategoryTable, options: TableOptions) -> dict[str, object]:
    """The arrays one table's measurements are read from (one entry per category)."""
    n, s = table.applicants, table.selected
    included = included_categories(table, options)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return {
        "included": included, "rates": rates, "ratios": _ratios(rates, included & (n > 0)),
        "reference": _reference(rates, included & (n > 0)), "interval": clopper_pearson(s, n, options.level),
        "worst": worst_case_bounds(n, s, table.unknown_applicants, included),
        "proportional": proportional_bounds(n, s, table.unknown_applicants, included),
    }


def _category_measurements(table, options, figures, i, group, params) -> list[Measurement]:
    n, s = table.applicants, table.selected
    count_metric, rate_metric = RATE[options.basis]
    out: list[Measurement] = []

    def add(metric, value, ci=None, note=None, status=None, extra=None, reason=None):
        # every measurement of the category shares its group, params and denominator
        out.append(Measurement(CHECK, metric, _finite(value), dict(group), ci, int(n[i]), params | (extra or {}), note, status,
                               reason or small_group(status)))

    low, high = figures["interval"]
    add("applicants", n[i])
    add(count_metric, s[i])
    add(rate_metric, figures["rates"][i], _ci(low[i], high[i]), None if n[i] else "no applicants in this category",
        None if n[i] else "undefined", reason=None if n[i] else Reason.NO_DENOMINATOR)
    _bounds(add, "rate", i, figures["worst"][:2], figures["proportional"][:2])
    if n[i] == 0:
        return out
    if not figures["included"][i]:
        add("excluded_share", n[i] / table.total, note="under 2% of the data: left out of the impact ratios (5-301(d))")
        return out
    _ratio_measurements(add, i, figures["ratios"][i], figures["reference"], n, s, options)
    _bounds(add, "impact_ratio", i, figures["worst"][2:], figures["proportional"][2:])
    return out


def _reference(rates: np.ndarray, candidates: np.ndarray) -> int | None:
    """The most selected category (the first in declared order on a tie), None if no rate is positive."""
    if not candidates.any():
        return None
    masked = np.where(candidates, rates, -np.inf)
    best = int(np.argmax(masked))
    return best if masked[best] > 0 else None


def _ratio_measurements(add, i, ratio, reference, n, s, options) -> None:
    if reference is None:
        add("impact_ratio", None, note="no category was selected: impact ratios are undefined", status="undefined",
            reason=Reason.ZERO_OVER_ZERO)
        return
    status = "insufficient" if min(n[i], n[reference]) < options.min_group_size else None
    small = f"rests on a category with fewer than {options.min_group_size} applicants" if status else None
    if i == reference:
        add("impact_ratio", 1.0, note="the most selected category: 1 by definition", status=status)
        return
    ci = ratio_interval(int(s[i]), int(n[i]), int(s[reference]), int(n[reference]), options.level)
    add("impact_ratio", ratio, ci, small, status)
    p_value, test = two_sample_test(int(s[i]), int(n[i]), int(s[reference]), int(n[reference]))
    add("impact_ratio_p_value", p_value, note=f"{'two-proportion z-test' if test == 'z' else 'Fisher exact test'} "
        "against the most selected category", extra={"test": test})


def _bounds(add, what: str, i: int, worst, proportional) -> None:
    for kind, (low, high) in (("worst_case", worst), ("proportional", proportional)):
        add(f"{what}_min_{kind}", low[i])
        add(f"{what}_max_{kind}", high[i])


def _unknown_note(table: CategoryTable, count_metric: str) -> str:
    return (f"{table.unknown_applicants} of {table.total} individuals fall in an unknown category and are left out "
            f"of this table ({table.unknown_selected} of them {count_metric.replace('_', ' ')})")


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ci(low: float, high: float) -> tuple[float, float] | None:
    return None if np.isnan(low) or np.isnan(high) else (float(low), float(high))


# ---------------------------------------------------------------- the check


def settings_of(config) -> LL144Settings:
    settings = config.report.ll144
    if settings is None:
        raise ConfigError(
            "report.profiles names ll144 but report.ll144 is missing",
            hint="add report.ll144 with the sex and/or race_ethnicity column and its categories",
        )
    return settings


def declared_columns(settings: LL144Settings) -> tuple[list[str], list[CategoryColumn]]:
    pairs = [(name, spec) for name, spec in (("sex", settings.sex), ("race_ethnicity", settings.race_ethnicity)) if spec]
    return [name for name, _ in pairs], [spec for _, spec in pairs]


def validate(config) -> None:
    """Spec rules that need nothing loaded: the settings exist; a scoring audit has scores."""
    if "ll144" not in config.report.profiles:
        return
    settings = settings_of(config)
    if settings.method != "scoring":
        return
    model = config.model
    if model.kind == "predictions" and model.score_column is None:
        raise ConfigError("report.ll144.method is 'scoring' but the spec gives no scores",
                          hint="set model.score_column, or use method: selection")
    if len(config.data.label.classes) != 2:
        raise ConfigError("report.ll144.method is 'scoring' but a multiclass model gives no single score",
                          hint="use method: selection, which reports each class the tool sorts candidates into")


def prepare(ctx) -> None:
    """Refuse category values outside the declared ones, and a scoring audit without scores, before any check runs."""
    settings = settings_of(ctx.config)
    for spec in declared_columns(settings)[1]:
        category_codes(_column(ctx, spec.column), spec)
    if settings.method == "scoring" and ctx.predictions.scores is None:
        raise ConfigError("report.ll144.method is 'scoring' but the model gives no scores",
                          hint="audit a model with probabilities or a score column, or use method: selection")


def _column(ctx, name: str) -> pd.Series:
    if name in ctx.data.sensitive.columns:
        return ctx.data.sensitive[name]
    if ctx.data.frame is not None and name in ctx.data.frame.columns:
        return ctx.data.frame[name]
    raise DataError(f"ll144: column '{name}' is not in the data", hint="name a column of the data in report.ll144")


def run(ctx) -> list[Measurement]:
    """The check: every table the rule asks for, from the audit's one set of predictions."""
    settings = settings_of(ctx.config)
    names, specs = declared_columns(settings)
    codes = [category_codes(_column(ctx, spec.column), spec) for spec in specs]
    options = TableOptions(settings.method, ctx.config.statistics.ci_level, settings.exclude_small_categories,
                           ctx.config.checks.fairness.min_group_size)
    return measure_rows(codes, names, specs, options, decisions=ctx.predictions.decisions,
                        classes=list(ctx.data.classes), positive=ctx.data.positive_index, scores=ctx.predictions.scores,
                        weights=ctx.data.weights)


def measure_rows(codes: list[np.ndarray], names: list[str], specs: list[CategoryColumn], options: TableOptions, *,
                 decisions: np.ndarray, classes: list[str], positive: int | None,
                 scores: np.ndarray | None = None, weights: np.ndarray | None = None) -> list[Measurement]:
    """Tables from row-level data: one bincount, then sums over its small cube.

    ``weights``: how many rows each entry stands for (a sharded run's distinct rows), or None.
    """
    sizes = [len(spec.categories) for spec in specs]
    out: list[Measurement] = []
    if options.basis == "scoring":
        median = weighted_median(scores, weights)
        out.append(Measurement(CHECK, "median_score", median, None, None, int(len(scores) if weights is None else weights.sum()), {},
                               note="median score of the full sample, unknown categories included (5-301(c)(1))"))
        counts = cross_counts(codes, sizes, (scores > median).astype(np.int64), 2, weights=weights)
        groups = [(None, 1)]
    elif positive is not None:
        counts = cross_counts(codes, sizes, decisions.astype(np.int64), len(classes), weights=weights)
        groups = [(None, positive)]
    else:  # a classifying tool: the tables again for each group it sorts candidates into (5-301(b)(4))
        counts = cross_counts(codes, sizes, decisions.astype(np.int64), len(classes), weights=weights)
        groups = [(name, index) for index, name in enumerate(classes)]
    for classification, outcome in groups:
        for table in tables_from_counts(counts, names, specs, outcome, classification):
            out.extend(table_measurements(table, options))
    return out


# ---------------------------------------------------------------- counts given directly


COUNT_COLUMNS = {"selection": ("applicants", "selected"), "scoring": ("applicants", "scored_above_median")}


def read_counts(path: str | Path, settings: LL144Settings) -> pd.DataFrame:
    """A CSV of category column(s), applicants and selected (or scored_above_median), checked."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read counts file {path}: {exc}") from None
    applicants, chosen = COUNT_COLUMNS[settings.method]
    names, specs = declared_columns(settings)
    present = [spec.column for spec in specs if spec.column in frame.columns]
    missing = [c for c in (applicants, chosen) if c not in frame.columns]
    if missing or not present:
        want = [*(spec.column for spec in specs), applicants, chosen]
        raise DataError(f"counts file {path} needs columns {want} (at least one category column); found {list(frame.columns)}",
                        hint=f"one row per category: {', '.join(want)}")
    for column in (applicants, chosen):
        frame[column] = _whole_numbers(frame[column], column, path)
    bad = frame[frame[chosen] > frame[applicants]]
    if len(bad):
        raise DataError(f"counts file {path}: row {int(bad.index[0]) + 2} has {chosen} {int(bad[chosen].iloc[0])} "
                        f"above applicants {int(bad[applicants].iloc[0])}", hint="correct the counts")
    return frame


def _whole_numbers(values: pd.Series, column: str, path) -> pd.Series:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    wrong = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if wrong.any():
        row = int(np.flatnonzero(wrong.to_numpy())[0])
        raise DataError(f"counts file {path}: {column} on row {row + 2} is {values.iloc[row]!r}, not a whole number >= 0",
                        hint="counts are whole numbers of people")
    return numbers.astype(np.int64)


def measure_counts(frame: pd.DataFrame, settings: LL144Settings, *, level: float, min_group_size: int) -> list[Measurement]:
    """Tables from aggregate counts: each row's applicants, split into selected and not, are the rows."""
    applicants, chosen = COUNT_COLUMNS[settings.method]
    names, specs = declared_columns(settings)
    kept = [(name, spec) for name, spec in zip(names, specs) if spec.column in frame.columns]
    names, specs = [k[0] for k in kept], [k[1] for k in kept]
    codes = [category_codes(frame[spec.column].mask(frame[spec.column].str.strip() == ""), spec) for spec in specs]
    # each row twice: once for its selected people, once for the rest
    doubled = [np.concatenate([c, c]) for c in codes]
    outcome = np.concatenate([np.ones(len(frame), np.int64), np.zeros(len(frame), np.int64)])
    weights = np.concatenate([frame[chosen].to_numpy(), (frame[applicants] - frame[chosen]).to_numpy()]).astype(float)
    counts = cross_counts(doubled, [len(s.categories) for s in specs], outcome, 2, weights=weights)
    options = TableOptions(settings.method, level, settings.exclude_small_categories, min_group_size)
    out = []
    for table in tables_from_counts(counts, names, specs, 1):
        out.extend(table_measurements(table, options))
    return out


def load_settings(path: str | Path) -> LL144Settings:
    """The ll144 settings from a YAML file: the mapping itself, or a spec holding report.ll144."""
    from pydantic import ValidationError

    from audit.config import describe_validation_error, parse_yaml

    path = Path(path)
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"), path)
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    if isinstance(raw.get("report"), dict):
        raw = raw["report"].get("ll144") or {}
    try:
        return LL144Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + describe_validation_error(exc, raw, root=LL144Settings)) from None


def audit_counts(paths: list[Path], settings: LL144Settings, *, name: str, command: str | None = None,
                 level: float = 0.95, min_group_size: int = 30):
    """An AuditResult of the ll144 tables from aggregate counts files (one table set per file)."""
    from audit import provenance
    from audit.results import AuditResult

    started = provenance.now()
    measurements = []
    for path in paths:
        measurements += measure_counts(read_counts(path, settings), settings, level=level, min_group_size=min_group_size)
    files = {f"counts_{i}" if i else "counts": {"path": str(p), "sha256": provenance.file_sha256(p)} for i, p in enumerate(paths)}
    return AuditResult(
        name=name, measurements=tuple(measurements),
        provenance={"spec_path": None, "spec_sha256": None, "command": command, "files": files, "ci_level": level,
                    "packages": provenance.package_versions(), "started": started, "finished": provenance.now(),
                    "profiles": {"names": ["ll144"], "ll144": settings.model_dump(mode="json")}},
        data={"source": ", ".join(str(p) for p in paths), "kind": "aggregate counts"},
        model={"name": settings.tool or name, "kind": "aggregate counts"}, checks_run=(CHECK,),
    )
