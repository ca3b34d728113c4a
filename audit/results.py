"""Immutable result records and their JSON form.

Every number the audit measures is one :class:`Measurement`; the gate, ``compare``, the
report and any logger read the one flat list, so a new check needs no change elsewhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SCHEMA_VERSION = "1.0"


class Status(str, Enum):
    """A measurement that is not an ordinary value (None is one)."""

    UNDEFINED = "undefined"  # no value: see the reason
    INSUFFICIENT = "insufficient"  # a value too uncertain to judge: it rests on a small group


class Reason(str, Enum):
    """Why a measurement is undefined or insufficient: a code that renderers and tests read, never parse.

    ``note`` keeps the sentence for a reader; this is what code compares.
    """

    NO_DENOMINATOR = "no_denominator"  # a rate whose denominator is zero in the group (the catalogue says which)
    SMALL_GROUP = "small_group"  # rests on a group below min_group_size
    ONE_CLASS = "one_class"  # a ranking metric over a group with one class only
    FEW_GROUPS = "few_groups"  # a disparity with fewer than two groups where the rate is defined
    ZERO_OVER_ZERO = "zero_over_zero"  # a ratio whose rates are all 0
    NOT_BROKEN = "not_broken"  # more than half the points withstand every perturbation tried
    NOTHING_TO_ATTACK = "nothing_to_attack"  # no correctly classified point
    NO_MODEL = "no_model"  # a predictions-only audit: nothing to attack or explain, the check was skipped
    NO_ROWS = "no_rows"  # an average over no rows (an empty group, or no row where the value is defined)
    ZERO_SCALE = "zero_scale"  # a ratio whose scale is zero on every row (the output never moved)
    CONSTANT = "constant"  # attributions constant on every row, so a rank correlation has no value
    NO_EMBEDDINGS = "no_embeddings"  # a black box hides the embeddings an attack or method needs (text word attack)


def small_group(status: str | None) -> Reason | None:
    """The reason code of an insufficient status (None for any other)."""
    return Reason.SMALL_GROUP if status == Status.INSUFFICIENT else None


@dataclass(frozen=True)
class Measurement:
    """One measured number.

    ``value`` is None when the metric is undefined (a zero denominator); ``note`` says why.
    ``group`` is None for overall values, else ``{column: value}`` (several keys for an
    intersection). ``params`` holds what the number depends on (class, epsilon, method).
    ``status`` is None for an ordinary value, ``"undefined"`` when there is no value, and
    ``"insufficient"`` when it rests on a group smaller than the spec's minimum group size
    (a threshold over it is then inconclusive); ``reason`` is a :class:`Reason` code for either.
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
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = _finite_or_none(self.value)
        out["ci"] = None if self.ci is None else [_finite_or_none(v) for v in self.ci]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        _check_stored(data)
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
            reason=data.get("reason"),
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_stored(data: Any) -> None:
    """A stored measurement the gate can judge; a hand-edited or foreign file says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a measurement must be an object; found {type(data).__name__}")
    where = f"measurement {str(data.get('metric'))[:60]!r}"
    value, ci = data.get("value"), data.get("ci")
    if value is not None and not _is_number(value):
        raise ValueError(f"{where}: value must be a number or null; found {type(value).__name__}")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(v is None or _is_number(v) for v in ci)):
        raise ValueError(f"{where}: ci must be [low, high] (numbers or null)")
    if not isinstance(data.get("check"), str) or not isinstance(data.get("metric"), str):
        raise ValueError(f"{where}: check and metric must be text")
    group, params = data.get("group"), data.get("params")
    if group is not None and not (isinstance(group, dict) and all(isinstance(v, str) for v in group.values())):
        raise ValueError(f"{where}: group must be null or {{column: value}} with text values")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"{where}: params must be an object")
    if data.get("n") is not None and not _is_number(data.get("n")):
        raise ValueError(f"{where}: n must be a number or null")


@dataclass(frozen=True)
class Artefact:
    """A figure beside the measurements: a heatmap, a thumbnail, an adversarial example's changes.

    ``key`` is the illustrated measurement's identity (:func:`artefact_key`). Figures travel here,
    not in measurements, so ``compare``, the gate and any logger never see display payload.
    """

    check: str
    metric: str
    key: str
    data: dict[str, Any]


def artefact_key(m: Measurement) -> str:
    """A measurement's identity as text: its group and params, canonically ordered."""
    return json.dumps({"group": m.group, "params": m.params}, sort_keys=True, default=_json_default)


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
    findings: tuple[Any, ...] = ()  # audit.gate.Finding, one per threshold
    gate: Any = None  # audit.gate.GateOutcome, None before judging
    thresholds: tuple[dict[str, Any], ...] = ()  # the spec's thresholds, so `gate` can re-judge
    gate_settings: dict[str, Any] = field(default_factory=dict)
    artefacts: tuple[Artefact, ...] = ()  # figures, apart from the measurements (compare never reads them)
    skipped: dict[str, str] = field(default_factory=dict)  # check -> Reason code, for a check that ran but measured nothing
    schema_version: str = SCHEMA_VERSION

    def artefact(self, m: Measurement) -> dict[str, Any]:
        """The figure data illustrating ``m`` (empty if none)."""
        key = artefact_key(m)
        return next((a.data for a in self.artefacts if a.check == m.check and a.metric == m.metric and a.key == key), {})

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
            "gate": None if self.gate is None else self.gate.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "thresholds": list(self.thresholds),
            "gate_settings": self.gate_settings,
            "failures": [asdict(f) for f in self.failures],
            "warnings": list(self.warnings),
            "measurements": [m.to_dict() for m in self.measurements],
            "artefacts": [asdict(a) for a in self.artefacts],
            "skipped": dict(self.skipped),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False, default=_json_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditResult":
        from audit.gate import Finding, GateOutcome

        gate = data.get("gate")
        return cls(
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            gate=None if gate is None else GateOutcome(**gate),
            thresholds=tuple(data.get("thresholds", [])),
            gate_settings=data.get("gate_settings", {}),
            name=data["name"],
            measurements=tuple(Measurement.from_dict(m) for m in data["measurements"]),
            provenance=data["provenance"],
            data=data.get("data", {}),
            model=data.get("model", {}),
            failures=tuple(CheckFailure(**f) for f in data.get("failures", [])),
            warnings=tuple(data.get("warnings", [])),
            checks_run=tuple(data.get("checks_run", [])),
            artefacts=tuple(Artefact(**a) for a in data.get("artefacts", [])),
            skipped=dict(data.get("skipped") or {}),
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


def read_result(path: str | Path) -> AuditResult:
    """Read a result.json, refusing one of another schema version or that is not a result."""
    from audit.errors import ConfigError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"result file not found: {path}", hint="give the result.json written by `rai-audit run`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(data, dict) or "measurements" not in data or "schema_version" not in data:
        raise ConfigError(f"{path} is not a rai-audit result.json", hint="give the result.json written by `rai-audit run`")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema version {data['schema_version']}; this rai-audit reads {SCHEMA_VERSION}",
            hint="re-run the audit with this version",
        )
    try:
        return AuditResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid result.json: {type(exc).__name__}: {str(exc)[:300]}",
                          hint="give the result.json written by `rai-audit run`, unedited") from None
