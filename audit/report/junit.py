"""junit.xml: one testcase per threshold, as Jenkins and GitLab read JUnit reports.

fail -> <failure>, its message listing every violating measurement; inconclusive ->
<failure> when the gate fails on inconclusive, else <skipped>; warn -> passes with the warning
in <system-out>; a threshold that matched nothing, or a check that could not run -> <error>.
The suite's ``gate`` property holds the gate's level (pass, warn, fail, error). ElementTree escapes every attribute and text; characters XML 1.0
cannot hold are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from audit.results import AuditResult

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _NOT_XML.sub("", str(text))


def render(result: AuditResult) -> str:
    suite = ET.Element("testsuite", name=_clean(f"rai-audit: {result.name}"))
    properties = ET.SubElement(suite, "properties")
    for key in ("spec_sha256", "seed", "started"):
        ET.SubElement(properties, "property", name=key, value=_clean(result.provenance.get(key, "")))
    if result.gate is not None:
        ET.SubElement(properties, "property", name="gate", value=result.gate.level)
    fails_on_inconclusive = (result.gate.inconclusive_policy if result.gate else "fail") == "fail"
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for finding in result.findings:
        case = ET.SubElement(
            suite, "testcase", classname=_clean(f"rai-audit.{finding.check or 'thresholds'}"),
            name=_clean(finding.threshold), time="0",
        )
        counts["tests"] += 1
        detail = _clean("\n".join(_match_line(m) for m in finding.matches) or finding.reason)
        if finding.verdict == "error":
            ET.SubElement(case, "error", type="threshold_error", message=_clean(f"error: {finding.reason}")).text = detail
            counts["errors"] += 1
        elif finding.verdict == "fail" or (finding.verdict == "inconclusive" and fails_on_inconclusive):
            element = ET.SubElement(case, "failure", type=finding.verdict, message=_clean(_failure_message(finding)))
            element.text = detail
            counts["failures"] += 1
        elif finding.verdict == "inconclusive":
            ET.SubElement(case, "skipped", message=_clean(f"inconclusive: {finding.reason}"))
            counts["skipped"] += 1
        ET.SubElement(case, "system-out").text = _clean(f"{finding.verdict.upper()}: {finding.reason}\n{detail}")
    for failure in result.failures:
        case = ET.SubElement(suite, "testcase", classname="rai-audit.checks", name=_clean(f"check {failure.check} ran"), time="0")
        ET.SubElement(case, "error", type="check_error", message=_clean(failure.message)).text = _clean(failure.message)
        counts["tests"] += 1
        counts["errors"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites", name="rai-audit", tests=str(counts["tests"]),
                      failures=str(counts["failures"]), errors=str(counts["errors"]))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _failure_message(finding) -> str:
    """The verdict and reason, then every match that did not pass, so none hides behind the worst."""
    bad = finding.violations
    listed = "; ".join(_match_line(m) for m in bad)
    return f"{finding.verdict}: {finding.reason}" + (f" [{len(bad)} of {len(finding.matches)}: {listed}]" if len(bad) > 1 else "")


def _match_line(match) -> str:
    where = ", ".join(f"{k}={v}" for k, v in (match.group or {}).items()) or "overall"
    params = ", ".join(f"{k}={v}" for k, v in match.params.items())
    value = "undefined" if match.value is None else f"{match.value:.4g}"
    ci = f" CI [{match.ci[0]:.4g}, {match.ci[1]:.4g}]" if match.ci else ""
    return f"{match.verdict}: {where}{f' ({params})' if params else ''} = {value}{ci}: {match.reason}"
