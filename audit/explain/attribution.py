"""The one Attribution type every method returns, and the layout that names its features.

Captum's rule, kept for every library: an attribution is shaped like its input. A method that
works on groups of inputs (exact Shapley values and KernelExplainer over source columns, LIME,
FeatureAblation over patches) spreads each group's value evenly over the group's elements, so
that summing a group, or the whole input, gives the same number whatever the method. Readers
never see encoded columns or pixels one by one: :class:`FeatureLayout` sums them into the
features a person recognises (the source columns of tabular data, regions of an image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

IMAGE_REGIONS = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)


@dataclass(frozen=True)
class Attribution:
    """One method's attributions for some rows of the data.

    ``values`` has shape ``(n, *input_shape)``: how much each input element moved the explained
    output of its row (float64). ``outputs`` is that explained output, ``f_c(x)`` for the
    row's ``targets`` class ``c``; ``base_values`` is the reference it is measured from (the
    output at the baseline, or the mean output over the background rows). For an ``additive``
    method the values of a row sum to ``outputs - base_values``. ``rows`` are the rows'
    positions in the audited data; ``settings`` records how the values were computed.

    Examples
    --------
    >>> a = Attribution("demo", np.ones((2, 3)), np.zeros(2), np.full(2, 3.0), np.zeros(2, int), np.arange(2))
    >>> a.completeness_gaps().tolist()
    [0.0, 0.0]
    """

    method: str
    values: np.ndarray
    base_values: np.ndarray
    outputs: np.ndarray
    targets: np.ndarray
    rows: np.ndarray
    settings: Mapping[str, Any] = field(default_factory=dict)
    additive: bool = True

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def completeness_gaps(self) -> np.ndarray:
        """Per row: sum of the values minus ``outputs - base_values`` (0 for an exact method)."""
        return self.values.reshape(self.n, -1).sum(axis=1) - (self.outputs - self.base_values)

    def take(self, positions: np.ndarray | Sequence[int]) -> "Attribution":
        """The same attributions for a subset of rows, by position in this object."""
        positions = np.asarray(positions, dtype=np.int64)
        return replace(
            self,
            values=self.values[positions],
            base_values=self.base_values[positions],
            outputs=self.outputs[positions],
            targets=self.targets[positions],
            rows=self.rows[positions],
        )

    def at_rows(self, rows: np.ndarray | Sequence[int]) -> "Attribution":
        """The attributions of the given data rows, in that order; each must be present."""
        where = {int(row): i for i, row in enumerate(self.rows)}
        return self.take([where[int(row)] for row in rows])


@dataclass(frozen=True)
class FeatureLayout:
    """Which input elements make up each feature a reader sees.

    ``group_of[e]`` is the feature of flattened input element ``e``. ``units[e]`` is the
    removal unit of the element for perturbation tests (the source column for tabular data, a
    patch for images); ``continuous[e]`` says whether a small nudge to the element is a valid
    input (a numeric column or a pixel, never one cell of a one-hot block).
    """

    kind: str
    names: tuple[str, ...]
    input_shape: tuple[int, ...]
    group_of: np.ndarray
    units: np.ndarray
    continuous: np.ndarray
    categorical: tuple[bool, ...] = ()

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def elements(self) -> int:
        return int(self.group_of.shape[0])

    def matrix(self, of: np.ndarray | None = None) -> np.ndarray:
        """(elements, groups) 0/1 membership: ``values @ matrix`` sums elements into groups."""
        of = self.group_of if of is None else of
        out = np.zeros((of.shape[0], int(of.max()) + 1))
        out[np.arange(of.shape[0]), of] = 1.0
        return out

    def sum(self, values: np.ndarray) -> np.ndarray:
        """``(n, *input_shape)`` attributions summed into ``(n, features)``."""
        return values.reshape(values.shape[0], -1) @ self.matrix()

    def spread(self, group_values: np.ndarray, of: np.ndarray | None = None) -> np.ndarray:
        """``(n, groups)`` values spread evenly over their elements: ``(n, *input_shape)``.

        The inverse of :meth:`sum` for grouped methods: the group's total is kept exactly.
        """
        of = self.group_of if of is None else of
        sizes = np.bincount(of)
        flat = group_values[:, of] / sizes[of]
        return flat.reshape((group_values.shape[0], *self.input_shape))

    @classmethod
    def tabular(cls, columns: Sequence[Any]) -> "FeatureLayout":
        """Source columns from the encoded columns (``EncodedColumn(name, source)``)."""
        names = tuple(dict.fromkeys(c.source for c in columns))
        index = {name: i for i, name in enumerate(names)}
        group_of = np.array([index[c.source] for c in columns], dtype=np.int64)
        sizes = np.bincount(group_of, minlength=len(names))
        # a one-hot cell is named "source=category"; a numeric or ordinal column keeps its name
        categorical = tuple(bool(sizes[i] > 1 or any(c.name != c.source for c in columns if c.source == n))
                            for i, n in enumerate(names))
        continuous = np.array([not categorical[g] for g in group_of])
        return cls("tabular", names, (len(columns),), group_of, group_of.copy(), continuous, categorical)

    @classmethod
    def image(cls, input_shape: Sequence[int], *, patch: int) -> "FeatureLayout":
        """Nine regions (a 3 x 3 grid) as features; square patches as removal units."""
        channels, height, width = (int(s) for s in input_shape)
        rows = np.minimum(np.arange(height) * 3 // height, 2)
        cols = np.minimum(np.arange(width) * 3 // width, 2)
        region = (rows[:, None] * 3 + cols[None, :]).astype(np.int64)
        patches_across = -(-width // patch)
        unit = (np.arange(height)[:, None] // patch) * patches_across + np.arange(width)[None, :] // patch
        group_of = np.broadcast_to(region, (channels, height, width)).ravel().copy()
        units = np.broadcast_to(unit, (channels, height, width)).ravel().copy()
        continuous = np.ones(group_of.shape[0], dtype=bool)
        return cls("image", IMAGE_REGIONS, (channels, height, width), group_of, units, continuous)


def occlusion_window(height: int, width: int) -> int:
    """Side of the square window that Occlusion slides and LIME/FeatureAblation use as patches.

    About a sixth of the shorter side, at least 2 pixels: 2 for 8 x 8 digits, 5 for 28 x 28.
    """
    return max(2, round(min(height, width) / 6))
