"""Where an attack may move each input, and the map to and from the attack's [0, 1] space.

torchattacks assumes inputs in ``[0, 1]`` and one scalar epsilon for every coordinate. A
domain maps the audit's inputs into such a space (:meth:`space`), wraps the model so the
attack sees the real model through that map, and projects an attack's output back into the
allowed set (:meth:`project`): within the epsilon budget, the bounds, and every other rule.
Only a projected example that still changes the decision counts as adversarial; the sweep
re-evaluates the model on it.

Images (:class:`ImageDomain`): epsilon is in the model's input units. The attack space is
``z = (x - low) / (high - low)`` with the spec's ``value_range``; one epsilon in input units
is ``eps / (high - low)`` in attack units, for every pixel.

Tabular data (:class:`TabularDomain`): epsilon is in per-feature standard deviations (of the
encoded column, in the evaluation data, whatever its encoding), so a feature's budget is
``eps * sd``. A per-feature map ``x = low + z * (high - low)`` would give each feature a
different budget in those units, so the map uses one common scale instead:
``x = x0 + (z - z0) * R * sd`` per feature, with ``R`` the widest feature range in standard
deviations. Then one epsilon in attack units is ``R`` standard deviations for *every* feature,
an Linf (or L2) ball in standard units is an Linf (L2) ball in attack units, and ``[0, 1]``
covers every feature's whole range. Features with a narrower range are clamped to their
bounds inside the wrapped model, so the attack optimises over exactly what the projection
keeps. Only the movable features enter the attack space: immutable ones (the sensitive
columns, any column named age, the spec's ``immutable``), every categorical feature (one-hot
blocks held fixed) and constant columns stay at their clean values.

The wrapped tabular model is stateless: several torchattacks attacks (APGD, FAB, Square,
DeepFool, the MultiAttack behind AutoAttack) call the model on subsets of their batch, so the
model cannot know which row it is looking at from the batch position. Each attack-space row
therefore carries its row's key in binary "key" coordinates set to 0 or 1; an attack moves a
coordinate by at most its epsilon, so rounding at 0.5 reads the key back as long as the
attack epsilon stays below 0.5 (``R`` is at least four epsilons, which keeps it <= 0.25).
Gradient attacks never move the key (it reaches the model through a comparison, so its
gradient is zero); random starts and Square may jitter it, harmlessly. The attack space is
laid out as a square single-channel image (at least 5 x 5, as Square's L2 schedule needs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audit.config import AuditConfig, CategoricalFeature, NumericFeature, load_features_file
from audit.context import AuditData
from audit.errors import ConfigError

TOLERANCE = 1e-5  # relative slack for float32 rounding in constraint checks
IMAGE_EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)  # fractions of the value range (Linf)
TABULAR_EPSILONS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # standard deviations (Linf)


class _Anchor(nn.Module):
    """Base of the attack-space models: a zero-size parameter first, on the model's device.

    torchattacks reads its device from ``next(model.parameters())`` and prints a message when
    the model has none (a black box does not).
    """

    def __init__(self, logits: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.empty(0, device=device), requires_grad=False)
        self.logits = logits

    def train(self, mode: bool = True) -> "_Anchor":
        self.training = mode  # see DecisionLogits.train: the session fixed the model's mode
        return self


# ---------------------------------------------------------------- images


class _ImageModel(_Anchor):
    def __init__(self, logits: nn.Module, device: torch.device, low: float, high: float) -> None:
        super().__init__(logits, device)
        self.low, self.span = low, high - low

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits(self.low + z * self.span)


class ImageDomain:
    """Images in ``[low, high]``; epsilon in input units; every pixel may move."""

    kind = "image"
    units = "input units"

    def __init__(self, *, clean: torch.Tensor, low: float, high: float, norm: str, logits: nn.Module, device: torch.device) -> None:
        self.clean, self.low, self.high, self.norm = clean, low, high, norm
        self.model = _ImageModel(logits, device, low, high)
        self.images = True
        self.rounds = False  # the wrapped model sees exactly what the projection keeps

    @property
    def movable(self) -> int:
        return int(self.clean[0].numel())

    def scale(self, eps: float) -> float:
        """Input units per attack unit."""
        return self.high - self.low

    def attack_model(self, eps: float) -> nn.Module:
        return self.model

    def attack_inputs(self, rows: np.ndarray, eps: float) -> torch.Tensor:
        return (self.clean[rows] - self.low) / (self.high - self.low)

    def project(self, z: torch.Tensor, rows: np.ndarray, eps: float) -> torch.Tensor:
        clean = self.clean[rows].double()
        delta = self.low + z.double() * (self.high - self.low) - clean
        delta = _within_budget(delta.flatten(1), np.ones(1), eps, self.norm).reshape(clean.shape)
        return torch.clamp(clean + delta, self.low, self.high).float()

    def distance(self, x: torch.Tensor, rows: np.ndarray) -> np.ndarray:
        delta = (x.double() - self.clean[rows].double()).flatten(1).numpy()
        return _norm(delta, self.norm)

    def violations(self, x: torch.Tensor, rows: np.ndarray, eps: float) -> list[str]:
        found = []
        if float(x.min()) < self.low or float(x.max()) > self.high:
            found.append(f"values outside [{self.low:g}, {self.high:g}]")
        worst = float(self.distance(x, rows).max(initial=0.0))
        if worst > eps * (1 + TOLERANCE) + 1e-7:
            found.append(f"perturbation {worst:g} above epsilon {eps:g}")
        return found

    def default_epsilons(self) -> list[float]:
        factor = (self.high - self.low) * (math.sqrt(self.movable) if self.norm == "L2" else 1.0)
        return [round(e * factor, 10) for e in IMAGE_EPSILONS]

    def large_epsilon(self) -> float:
        """An epsilon that reaches every image in the value range."""
        return (self.high - self.low) * (math.sqrt(self.movable) if self.norm == "L2" else 1.0)


# ---------------------------------------------------------------- tabular


@dataclass(frozen=True)
class ColumnRules:
    """Per encoded column: whether it may move, why not, and its scale, bounds and type."""

    names: tuple[str, ...]
    sources: tuple[str, ...]
    fixed: tuple[str | None, ...]  # None: movable; else why it is held fixed
    sd: np.ndarray  # standard deviation in the evaluation data (encoded units)
    low: np.ndarray  # bounds in encoded units
    high: np.ndarray
    integer: np.ndarray  # bool: whole numbers in data units
    data_scale: np.ndarray  # data = encoded * data_scale + data_offset
    data_offset: np.ndarray

    @property
    def movable(self) -> np.ndarray:
        return np.array([reason is None for reason in self.fixed])


def feature_list(config: AuditConfig) -> list[NumericFeature | CategoricalFeature]:
    spec = config.data
    if spec.features is not None:
        return list(spec.features)
    return load_features_file(Path(spec.features_file))


def column_rules(config: AuditConfig, data: AuditData) -> ColumnRules:
    """The rules of every encoded column, from the features, the spec and the evaluation data."""
    check = config.checks.robustness
    features = {f.name: f for f in feature_list(config)}
    _check_names(check, features)
    frozen = {str(c) for c in data.sensitive.columns}
    sd, smallest, largest = column_moments(data.features)
    rows = [_column(c.name, c.source, features[c.source], frozen, check) for c in data.columns]
    low = np.array([r[2] if r[2] is not None else v for r, v in zip(rows, smallest)])
    high = np.array([r[3] if r[3] is not None else v for r, v in zip(rows, largest)])
    fixed = tuple(r[0] if r[0] is not None or s > 0 else "constant in the data" for r, s in zip(rows, sd))
    return ColumnRules(
        names=tuple(c.name for c in data.columns),
        sources=tuple(c.source for c in data.columns),
        fixed=fixed,
        sd=sd,
        low=low,
        high=high,
        integer=np.array([r[1] for r in rows], dtype=bool),
        data_scale=np.array([_affine(features[c.source])[0] for c in data.columns]),
        data_offset=np.array([_affine(features[c.source])[1] for c in data.columns]),
    )


def column_moments(features: torch.Tensor, chunk: int = 2**14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard deviation (population), minimum and maximum of each column, in float64.

    Two passes over row chunks in numpy (float64 accumulators) instead of one float64 copy of
    the whole tensor: at 1,000,000 rows of 91 columns that copy alone is 0.7 GB.
    """
    flat = features.reshape(len(features), -1).numpy()
    mean = flat.sum(axis=0, dtype=np.float64) / len(flat)
    squares = np.zeros(flat.shape[1])
    for start in range(0, len(flat), chunk):
        squares += np.square(flat[start : start + chunk] - mean).sum(axis=0)
    return np.sqrt(squares / len(flat)), flat.min(axis=0).astype(np.float64), flat.max(axis=0).astype(np.float64)


def _check_names(check, features: dict) -> None:
    valid = ", ".join(features)
    for field, names in (("immutable", check.immutable), ("bounds", list(check.bounds))):
        for name in names:
            if name not in features:
                raise ConfigError(
                    f"checks.robustness.{field}: {name!r} is not a model input; inputs: {valid}",
                    hint="name a column from data.features",
                )
    for name in check.bounds:
        if isinstance(features[name], CategoricalFeature):
            raise ConfigError(
                f"checks.robustness.bounds: {name!r} is categorical; bounds apply to numeric features",
                hint="remove it: categorical features are held fixed",
            )


def _column(name: str, source: str, feature, frozen: set[str], check) -> tuple:
    """(why fixed or None, integer, low or None, high or None) for one encoded column."""
    if isinstance(feature, CategoricalFeature):
        return ("categorical (held fixed)", False, None, None)
    scale, offset = _affine(feature)
    bounds = check.bounds.get(source)
    low, high = ((bounds[0] - offset) / scale, (bounds[1] - offset) / scale) if bounds else (None, None)
    if source in frozen:
        reason = "sensitive"
    elif source.lower() == "age":
        reason = "age"
    elif source in check.immutable:
        reason = "immutable in the spec"
    else:
        reason = None
    return (reason, feature.integer, low, high)


def _affine(feature) -> tuple[float, float]:
    """(scale, offset) with data value = encoded value * scale + offset."""
    if isinstance(feature, CategoricalFeature):
        return (1.0, 0.0)
    if feature.encoding == "standardize":
        return (feature.std, feature.mean)
    if feature.encoding == "minmax":
        return (feature.max - feature.min, feature.min)
    return (1.0, 0.0)


class _TabularModel(_Anchor):
    """Attack space -> encoded rows -> decision logits; the row's key selects its fixed values."""

    def __init__(self, logits: nn.Module, device: torch.device, domain: "TabularDomain", scale: float) -> None:
        super().__init__(logits, device)
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.clean = domain.clean.to(device)
        self.origin = as_tensor(domain.origin(scale))
        self.low, self.high = as_tensor(domain.low), as_tensor(domain.high)
        self.step = as_tensor(scale * domain.rules.sd[domain.mutable])
        self.columns = torch.as_tensor(domain.mutable, device=device)
        self.width, self.bits = len(domain.mutable), domain.bits
        self.powers = 2 ** torch.arange(domain.bits, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1)
        key = ((flat[:, self.width : self.width + self.bits] > 0.5).long() * self.powers).sum(dim=1)
        key = key.clamp(0, len(self.clean) - 1)
        base = self.clean[key]
        moved = base[:, self.columns] + (flat[:, : self.width] - self.origin[key]) * self.step
        moved = torch.clamp(moved, self.low[key], self.high[key])
        x = base.clone()
        x[:, self.columns] = moved
        return self.logits(x)


class TabularDomain:
    """Encoded tabular rows; epsilon in standard deviations; only movable features move."""

    kind = "tabular"
    units = "standard deviations"

    def __init__(self, *, clean: torch.Tensor, rules: ColumnRules, norm: str, logits: nn.Module, device: torch.device,
                 widest: float | None = None) -> None:
        """``widest``: the attack-unit range of all attacked rows, when these are a chunk of them (same units)."""
        self.clean, self.rules, self.norm, self.device = clean, rules, norm, device
        self.logits = logits
        self.images = False
        self.mutable = np.flatnonzero(rules.movable)
        self.clean64 = clean.double().numpy()
        values = self.clean64[:, self.mutable]
        # the clean value stays allowed even where the spec's bounds exclude it
        self.low = np.minimum(rules.low[self.mutable], values)
        self.high = np.maximum(rules.high[self.mutable], values)
        self.range = self._widest_range() if widest is None else widest
        self.bits = max(1, math.ceil(math.log2(max(len(clean), 2))))
        # integer features are rounded only by the projection: an attack must not stop at the
        # first adversarial iterate, which rounding may take back
        self.rounds = bool(rules.integer[self.mutable].any())
        self.side = max(5, math.ceil(math.sqrt(len(self.mutable) + self.bits)))

    def _widest_range(self) -> float:
        """The widest span any movable feature may take, in its standard deviations."""
        if not self.movable:
            return 1.0
        span = self.high.max(axis=0) - self.low.min(axis=0)
        return float((span / self.rules.sd[self.mutable]).max())

    @property
    def movable(self) -> int:
        return len(self.mutable)

    def scale(self, eps: float) -> float:
        """Standard deviations per attack unit: R, at least four epsilons (see the module docstring)."""
        return max(self.range, 4.0 * eps, 1e-12)

    def origin(self, scale: float, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The clean rows' movable features in attack units."""
        values = self.clean64[rows][:, self.mutable]
        return (values - self.low[rows]) / (scale * self.rules.sd[self.mutable])

    def attack_model(self, eps: float) -> nn.Module:
        return _TabularModel(self.logits, self.device, self, self.scale(eps))

    def attack_inputs(self, rows: np.ndarray, eps: float) -> torch.Tensor:
        z = np.zeros((len(rows), self.side * self.side), dtype=np.float32)
        z[:, : self.movable] = self.origin(self.scale(eps), rows)
        z[:, self.movable : self.movable + self.bits] = (rows[:, None] >> np.arange(self.bits)) & 1
        return torch.from_numpy(z).reshape(len(rows), 1, self.side, self.side)

    def project(self, z: torch.Tensor, rows: np.ndarray, eps: float) -> torch.Tensor:
        scale, sd = self.scale(eps), self.rules.sd[self.mutable]
        flat = z.double().flatten(1).numpy()[:, : self.movable]
        delta = (flat - self.origin(scale, rows)) * scale * sd
        delta = _within_budget(torch.from_numpy(delta), sd, eps, self.norm).numpy()
        x = self.clean64[rows]
        start = x[:, self.mutable]
        moved = np.clip(start + delta, self.low[rows], self.high[rows])
        moved = self._whole_numbers(moved, start, rows, eps)
        x[:, self.mutable] = moved
        return torch.from_numpy(x).float()

    def _whole_numbers(self, moved: np.ndarray, start: np.ndarray, rows: np.ndarray, eps: float) -> np.ndarray:
        """Integer features: nearest whole number where it keeps every rule, else toward the clean value.

        Rounding toward the clean value never lengthens a coordinate's move and stays inside
        any interval holding both ends, so it keeps the budget and the bounds.
        """
        integer = self.rules.integer[self.mutable]
        if not integer.any():
            return moved
        scale, offset = self.rules.data_scale[self.mutable], self.rules.data_offset[self.mutable]
        clean_value = start * scale + offset
        integral = np.abs(clean_value - np.round(clean_value)) <= 1e-6 * np.maximum(1, np.abs(clean_value))
        whole = np.where(integral, np.round(clean_value), clean_value)
        value = moved * scale + offset
        nearest = start + (np.round(value) - whole) / scale
        toward = start + np.trunc(value - whole) / scale
        sd = self.rules.sd[self.mutable]
        fits = (nearest >= self.low[rows] - 1e-9) & (nearest <= self.high[rows] + 1e-9)
        if self.norm == "Linf":
            fits &= np.abs(nearest - start) <= eps * sd * (1 + 1e-9)
        rounded = np.where(integer, np.where(fits, nearest, toward), moved)
        if self.norm == "L2":
            over = _norm((rounded - start) / sd, "L2") > eps * (1 + 1e-9)
            rounded[over] = np.where(integer, toward[over], moved[over])
        return rounded

    def distance(self, x: torch.Tensor, rows: np.ndarray) -> np.ndarray:
        delta = x.double().numpy()[:, self.mutable] - self.clean64[rows][:, self.mutable]
        return _norm(delta / self.rules.sd[self.mutable], self.norm)

    def violations(self, x: torch.Tensor, rows: np.ndarray, eps: float) -> list[str]:
        """Every rule an example breaks (empty: it is inside the domain and the budget)."""
        x, clean = x.double().numpy(), self.clean64[rows]
        found = []
        fixed = np.flatnonzero(~self.rules.movable)
        if (x[:, fixed] != clean[:, fixed]).any():
            found.append("a fixed feature moved")
        moved = x[:, self.mutable]
        slack = TOLERANCE * np.maximum(1, np.abs(moved))
        if (moved < self.low[rows] - slack).any() or (moved > self.high[rows] + slack).any():
            found.append("a feature left its bounds")
        worst = float(self.distance(torch.from_numpy(x), rows).max(initial=0.0))
        if worst > eps * (1 + TOLERANCE) + 1e-6:
            found.append(f"perturbation {worst:g} above epsilon {eps:g}")
        value = moved * self.rules.data_scale[self.mutable] + self.rules.data_offset[self.mutable]
        integer = self.rules.integer[self.mutable]
        changed = np.abs(moved - clean[:, self.mutable]) > 0
        off_grid = np.abs(value - np.round(value)) > 1e-3
        if (changed & off_grid & integer).any():
            found.append("an integer feature is not a whole number")
        return found

    def changes(self, x: torch.Tensor, row: int) -> list[dict]:
        """The features an example moved, in data units and in standard deviations."""
        out = []
        for j in self.mutable:
            before, after = float(self.clean[row, j]), float(x[j])
            if after == before:
                continue
            scale, offset = self.rules.data_scale[j], self.rules.data_offset[j]
            clean, moved = _data_value(before, scale, offset), _data_value(after, scale, offset)
            out.append({
                "feature": self.rules.sources[j],
                "clean": clean,
                "adversarial": moved,
                "change": moved - clean,
                "change_sd": (after - before) / self.rules.sd[j],
            })
        return out

    def default_epsilons(self) -> list[float]:
        factor = math.sqrt(max(self.movable, 1)) if self.norm == "L2" else 1.0
        return [round(e * factor, 10) for e in TABULAR_EPSILONS]

    def large_epsilon(self) -> float:
        """An epsilon that reaches every value of every movable feature within its bounds."""
        return self.range * (math.sqrt(max(self.movable, 1)) if self.norm == "L2" else 1.0)


# ---------------------------------------------------------------- shared


def _data_value(encoded: float, scale: float, offset: float) -> float:
    """Decode a float32 encoded value, dropping the float32 noise (0 encodes to -1.6e-06 otherwise)."""
    digits = max(0, 6 - math.ceil(math.log10(max(scale, 1e-12))))
    return round(encoded * scale + offset, digits) + 0.0


def _within_budget(delta: torch.Tensor, sd: np.ndarray, eps: float, norm: str) -> torch.Tensor:
    """Shrink (n, k) moves to the epsilon ball, measured in units of ``sd`` per column."""
    sd = torch.as_tensor(sd, dtype=delta.dtype)
    if norm == "Linf":
        return torch.maximum(torch.minimum(delta, eps * sd), -eps * sd)
    length = torch.linalg.vector_norm(delta / sd, dim=1, keepdim=True)
    return delta * torch.clamp(eps / length.clamp_min(1e-300), max=1.0)


def _norm(delta: np.ndarray, norm: str) -> np.ndarray:
    if delta.shape[1] == 0:
        return np.zeros(len(delta))
    return np.abs(delta).max(axis=1) if norm == "Linf" else np.sqrt((delta**2).sum(axis=1))


def build_domain(config: AuditConfig, data: AuditData, rows: np.ndarray, *, logits: nn.Module, device: torch.device):
    """The domain of the sampled ``rows`` of the evaluation data, for the spec's norm."""
    norm = config.checks.robustness.norm
    clean = data.features[rows].contiguous()
    if config.data.kind == "image":
        low, high = config.data.value_range
        return ImageDomain(clean=clean, low=float(low), high=float(high), norm=norm, logits=logits, device=device)
    return TabularDomain(clean=clean, rules=column_rules(config, data), norm=norm, logits=logits, device=device)
