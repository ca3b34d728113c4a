"""rai-audit: one spec, one run: performance, fairness, explanations and robustness of a PyTorch model.

>>> from audit import load_config, run_audit, write_report
>>> result = run_audit(load_config("examples/adult_mlp.yaml"))  # doctest: +SKIP
>>> write_report(result, "reports/adult")  # doctest: +SKIP
"""

try:
    from audit.config import AuditConfig, load_config
    from audit.report.files import write_report
    from audit.results import AuditResult, Measurement
    from audit.runner import run_audit
except KeyboardInterrupt:  # Ctrl-C while torch imports (the first seconds): no 35-line traceback
    import os as _os

    _os.write(2, b"interrupted\n")
    raise SystemExit(130) from None

__version__ = "0.1.0"

__all__ = ["AuditConfig", "AuditResult", "Measurement", "load_config", "run_audit", "write_report", "__version__"]
