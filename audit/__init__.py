"""rai-audit: one spec, one run: performance, fairness, explanations and robustness of a PyTorch model.

>>> from audit import load_config, run_audit, write_report
>>> result = run_audit(load_config("examples/adult_mlp.yaml"))  # doctest: +SKIP
>>> write_report(result, "reports/adult")  # doctest: +SKIP

The public names are imported on first use (PEP 562), so ``import audit`` and the CLI's
``--version``, ``--help``, ``gate`` and ``compare`` never load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PUBLIC = {
    "AuditConfig": "audit.config",
    "load_config": "audit.config",
    "AuditResult": "audit.results",
    "Measurement": "audit.results",
    "run_audit": "audit.runner",
    "write_report": "audit.report.files",
}

__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:
    from audit.config import AuditConfig, load_config
    from audit.results import AuditResult, Measurement
    from audit.report.files import write_report
    from audit.runner import run_audit


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
