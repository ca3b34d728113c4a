"""Immutable result records and their JSON form.

Every number the audit measures is one :class:`Measurement`; the gate, ``compare``, the
report and any logger read the one flat list, so a new check needs no change elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Measurement:
    """One measured number.

    ``value`` is None when the metric is undefined (a zero denominator); ``note`` says why.
    ``group`` is None for overall values, else ``{column: value}`` (several keys for an
    intersection). ``params`` holds what the number depends on (class, epsilon, method).
    ``status`` is None for an ordinary value, ``"undefined"`` when there is no value, and
    ``"insufficient"`` when it rests on a group smaller than the spec's minimum group size
    (a threshold over it is then inconclusive).
    """

    check: str
    metric: str
    value: float | None
    group: dict[str, str] | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = _finite_or_none(self.value)
        out["ci"] = None if self.ci is None else [_finite_or_none(v) for v in self.ci]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        ci = data.get("ci")
        return cls(
            check=data["check"],
            metric=data["metric"],
            value=data.get("value"),
            group=data.get("group"),
            ci=None if ci is None else (ci[0], ci[1]),
            n=data.get("n"),
            params=data.get("params") or {},
            note=data.get("note"),
            status=data.get("status"),
        )


@dataclass(frozen=True)
class CheckFailure:
    """A check that raised: the audit goes on, the report shows it, the exit code is 2."""

    check: str
    message: str


@dataclass(frozen=True)
class AuditResult:
    """Everything an audit produced; renderers read it, nothing writes to it."""

    name: str
    measurements: tuple[Measurement, ...]
    provenance: dict[str, Any]
    data: dict[str, Any]
    model: dict[str, Any]
    failures: tuple[CheckFailure, ...] = ()
    warnings: tuple[str, ...] = ()
    checks_run: tuple[str, ...] = ()
    schema_version: str = SCHEMA_VERSION

    def select(self, check: str | None = None, metric: str | None = None) -> list[Measurement]:
        """Measurements of one check and/or metric, in the order they were measured."""
        return [
            m
            for m in self.measurements
            if (check is None or m.check == check) and (metric is None or m.metric == metric)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "provenance": self.provenance,
            "data": self.data,
            "model": self.model,
            "checks_run": list(self.checks_run),
            "failures": [asdict(f) for f in self.failures],
            "warnings": list(self.warnings),
            "measurements": [m.to_dict() for m in self.measurements],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False, default=_json_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditResult":
        return cls(
            name=data["name"],
            measurements=tuple(Measurement.from_dict(m) for m in data["measurements"]),
            provenance=data["provenance"],
            data=data.get("data", {}),
            model=data.get("model", {}),
            failures=tuple(CheckFailure(**f) for f in data.get("failures", [])),
            warnings=tuple(data.get("warnings", [])),
            checks_run=tuple(data.get("checks_run", [])),
            schema_version=data["schema_version"],
        )


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays reach here from checks; keep the JSON plain
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
