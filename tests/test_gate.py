"""The gate: thresholds judged into verdicts, the shorthand, and what CI reads (exit code, junit.xml, summary.md).

Verdict rules are tested on hand-built measurements, so each expected verdict follows from the
module docstring of ``audit.gate`` and nothing else; the command line is then run end to end on
the small ``project`` model and, for ``rai-audit gate``, on one run of the demo Adult model.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml, Skipped

import audit.runner
from audit import checks
from audit.cli import main
from audit.config import GateSettings, Threshold, load_config, parse_threshold
from audit.errors import ConfigError
from audit.gate import judge, select
from audit.results import Measurement, read_result
from tests.conftest import make_frame

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PAYLOAD = 'F<script>alert("x")</script>|a'
NAME_PAYLOAD = 'Audit <script>alert(1)</script> | "quoted"'
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    # a CI runner sets this; the tests must not append to the real job summary
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _judge(measurements, *thresholds, **settings):
    parsed = [Threshold.model_validate(t) for t in thresholds]
    return judge(tuple(measurements), parsed, GateSettings(**settings))


def _finding(measurements, threshold, **settings):
    findings, _ = _judge(measurements, threshold, **settings)
    assert len(findings) == 1
    return findings[0]


def _overall(value, ci=None, metric="accuracy", **extra):
    return Measurement("performance", metric, value, ci=ci, **extra)


def _group(value, group, ci=None, metric="accuracy", **extra):
    return Measurement("fairness", metric, value, group=group, ci=ci, **extra)


# ---------------------------------------------------------------- point decisions


@pytest.mark.parametrize(
    ("value", "verdict"), [(0.79, "fail"), (0.7999999, "fail"), (0.8, "pass"), (0.8000001, "pass"), (0.95, "pass")]
)
def test_point_minimum_is_inclusive(value, verdict):
    finding = _finding([_overall(value)], "accuracy >= 0.8")
    assert finding.verdict == verdict
    assert finding.decision == "point"
    assert ("violates" if verdict == "fail" else "satisfies") in finding.reason


@pytest.mark.parametrize(("value", "verdict"), [(0.09, "pass"), (0.1, "pass"), (0.1000001, "fail"), (0.5, "fail")])
def test_point_maximum_is_inclusive(value, verdict):
    assert _finding([_overall(value, metric="log_loss")], "log_loss <= 0.1").verdict == verdict


@pytest.mark.parametrize(("value", "verdict"), [(0.39, "fail"), (0.4, "pass"), (0.5, "pass"), (0.6, "pass"), (0.61, "fail")])
def test_point_with_both_bounds(value, verdict):
    finding = _finding([_overall(value)], {"metric": "accuracy", "min": 0.4, "max": 0.6})
    assert finding.verdict == verdict


def test_point_ignores_the_interval():
    # point judges the value even when the interval straddles the bound
    finding = _finding([_overall(0.85, ci=(0.7, 0.9))], "accuracy >= 0.8", decision="point")
    assert finding.verdict == "pass"


# ---------------------------------------------------------------- interval decisions


@pytest.mark.parametrize(
    ("ci", "verdict"),
    [
        ((0.81, 0.9), "pass"),
        ((0.8, 0.9), "pass"),  # the lower end on the bound still satisfies it
        ((0.7, 0.79), "fail"),
        ((0.75, 0.85), "inconclusive"),
        ((0.7, 0.8), "inconclusive"),  # the upper end touches the bound: part of the interval satisfies it
    ],
)
def test_interval_minimum(ci, verdict):
    value = (ci[0] + ci[1]) / 2
    finding = _finding([_overall(value, ci=ci)], "accuracy >= 0.8", decision="interval")
    assert finding.verdict == verdict
    assert finding.decision == "interval"
    expected = {"pass": "whole interval", "fail": "whole interval", "inconclusive": "straddles"}[verdict]
    assert expected in finding.reason


@pytest.mark.parametrize(
    ("ci", "verdict"), [((0.01, 0.09), "pass"), ((0.11, 0.2), "fail"), ((0.05, 0.15), "inconclusive")]
)
def test_interval_maximum(ci, verdict):
    measurement = _overall(sum(ci) / 2, ci=ci, metric="log_loss")
    assert _finding([measurement], "log_loss <= 0.1", decision="interval").verdict == verdict


def test_interval_judged_on_value_though_the_value_alone_would_decide_otherwise():
    # the value satisfies the bound, but half the interval does not: inconclusive, not pass
    assert _finding([_overall(0.9, ci=(0.6, 0.95))], "accuracy >= 0.8", decision="interval").verdict == "inconclusive"
    # the value violates the bound, but the interval reaches it: inconclusive, not fail
    assert _finding([_overall(0.7, ci=(0.6, 0.85))], "accuracy >= 0.8", decision="interval").verdict == "inconclusive"


def test_interval_wider_than_both_bounds_is_inconclusive():
    finding = _finding([_overall(0.5, ci=(0.3, 0.7))], {"metric": "accuracy", "min": 0.4, "max": 0.6}, decision="interval")
    assert finding.verdict == "inconclusive"


def test_threshold_decision_overrides_the_gate_setting():
    measurement = _overall(0.85, ci=(0.75, 0.95))
    threshold = {"metric": "accuracy", "min": 0.8, "decision": "interval"}
    assert _finding([measurement], threshold, decision="point").verdict == "inconclusive"
    threshold = {"metric": "accuracy", "min": 0.8, "decision": "point"}
    assert _finding([measurement], threshold, decision="interval").verdict == "pass"


@pytest.mark.parametrize(("value", "verdict"), [(0.9, "pass"), (0.7, "fail")])
def test_interval_without_a_ci_falls_back_to_the_value_and_says_so(value, verdict):
    finding = _finding([_overall(value)], "accuracy >= 0.8", decision="interval")
    assert finding.verdict == verdict
    assert "no interval" in finding.reason and "judged on the value" in finding.reason


# ---------------------------------------------------------------- levels and missing values


@pytest.mark.parametrize("decision", ["point", "interval"])
def test_level_warn_turns_a_violation_into_warn_and_does_not_fail_the_gate(decision):
    measurement = _overall(0.7, ci=(0.65, 0.75))
    findings, outcome = _judge([measurement], {"metric": "accuracy", "min": 0.8, "level": "warn"}, decision=decision)
    assert findings[0].verdict == "warn"
    assert outcome.verdict == "pass" and outcome.passed
    assert outcome.level == "warn"  # passed with warnings (issue 10 item 7)
    assert outcome.counts == {"pass": 0, "warn": 1, "inconclusive": 0, "fail": 0, "error": 0}
    # the same threshold at level fail does fail: the level is what made the difference
    findings, outcome = _judge([measurement], {"metric": "accuracy", "min": 0.8}, decision=decision)
    assert findings[0].verdict == "fail" and outcome.verdict == "fail"


def test_level_warn_still_passes_a_satisfied_bound():
    assert _finding([_overall(0.9)], {"metric": "accuracy", "min": 0.8, "level": "warn"}).verdict == "pass"


def test_undefined_value_is_inconclusive_with_the_measurements_note():
    note = "undefined: no examples predicted as class 1"
    measurement = Measurement("performance", "precision", None, params={"pos_label": "1"}, note=note, status="undefined")
    finding = _finding([measurement], "precision >= 0.5")
    assert finding.verdict == "inconclusive"
    assert finding.reason == note
    assert finding.matches[0].value is None


@pytest.mark.parametrize("value", [0.95, 0.2])  # satisfied or violated, a too-small group cannot tell
@pytest.mark.parametrize("decision", ["point", "interval"])
def test_insufficient_group_is_inconclusive(value, decision):
    note = "group of 12 rows is below min_group_size 30"
    measurement = _group(value, {"sex": "F"}, ci=(value - 0.01, value + 0.01), note=note, status="insufficient")
    finding = _finding([measurement], "accuracy[sex=F] >= 0.8", decision=decision)
    assert finding.verdict == "inconclusive"
    assert finding.reason == note


def test_no_matching_measurement_is_an_error_not_a_verdict():
    # issue 10 item 1: a threshold that matched nothing is an error, never "inconclusive"
    findings, outcome = _judge([_overall(0.9)], "roc_auc >= 0.8", inconclusive="pass")
    assert findings[0].verdict == "error"
    assert "'roc_auc' was not measured" in findings[0].reason
    assert findings[0].matches == () and findings[0].decisive is None
    assert outcome.verdict == "error" and outcome.level == "error" and not outcome.passed


# ---------------------------------------------------------------- the gate outcome


@pytest.mark.parametrize(("policy", "gate_verdict"), [("fail", "fail"), ("warn", "pass"), ("pass", "pass")])
def test_gate_outcome_under_each_inconclusive_policy(policy, gate_verdict):
    undefined = _overall(None, metric="roc_auc", note="one class only", status="undefined")
    measurements = [_overall(0.9), _overall(0.2, metric="log_loss"), undefined]
    findings, outcome = _judge(measurements, "accuracy >= 0.8", "roc_auc >= 0.8", "log_loss <= 0.5", inconclusive=policy)
    assert [f.verdict for f in findings] == ["pass", "inconclusive", "pass"]
    assert outcome.verdict == gate_verdict
    assert outcome.passed is (gate_verdict == "pass")
    assert outcome.level == {"fail": "fail", "warn": "warn", "pass": "pass"}[policy]
    assert outcome.inconclusive_policy == policy
    assert outcome.counts == {"pass": 2, "warn": 0, "inconclusive": 1, "fail": 0, "error": 0}


@pytest.mark.parametrize("policy", ["fail", "warn", "pass"])
def test_any_fail_fails_the_gate_whatever_the_policy(policy):
    _, outcome = _judge([_overall(0.7)], "accuracy >= 0.8", "accuracy <= 1", inconclusive=policy)
    assert outcome.verdict == "fail"
    assert outcome.counts["fail"] == 1 and outcome.counts["pass"] == 1


def test_the_default_policy_fails_on_inconclusive():
    assert GateSettings().inconclusive == "fail"
    undefined = _overall(None, note="undefined", status="undefined")
    _, outcome = judge((undefined,), [Threshold.model_validate("accuracy >= 0.8")], GateSettings())
    assert outcome.verdict == "fail"


def test_no_thresholds_pass():
    findings, outcome = judge((_overall(0.1),), [], GateSettings())
    assert findings == () and outcome.verdict == "pass"


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ((0.9, 0.85), "pass"),
        ((0.9, 0.75), "fail"),
        ((0.9, None), "inconclusive"),
        ((0.7, None), "fail"),  # fail is worse than inconclusive
    ],
)
def test_threshold_verdict_is_the_worst_of_its_matches(values, verdict):
    measurements = [
        _group(value, {"sex": sex}, metric="true_positive_rate", note=None if value is not None else "no positives")
        for sex, value in zip("FM", values)
    ]
    finding = _finding(measurements, "true_positive_rate >= 0.8")
    assert len(finding.matches) == 2
    assert finding.verdict == verdict
    if verdict != "pass":
        worst = next(m for m in finding.matches if m.verdict == verdict)
        assert finding.reason.endswith(f"for sex={worst.group['sex']}")


def test_warn_and_inconclusive_matches_give_inconclusive():
    measurements = [_group(0.5, {"sex": "F"}), _group(None, {"sex": "M"}, note="undefined")]
    finding = _finding(measurements, {"metric": "accuracy", "min": 0.8, "level": "warn", "group": "each"})
    assert [m.verdict for m in finding.matches] == ["warn", "inconclusive"]
    assert finding.verdict == "inconclusive"


# ---------------------------------------------------------------- which measurements a threshold judges


MIXED = (
    _overall(0.9),
    _group(0.1, {"sex": "F"}),
    _group(0.2, {"sex": "M"}),
    _group(0.3, {"sex": "F", "age": "<40"}),
    _group(0.05, {"sex": "F"}, metric="false_positive_rate"),
    _group(0.5, {"sex": "M"}, metric="false_positive_rate"),
)


def _selected(threshold) -> list:
    return [(m.check, m.group, m.value) for m in select(MIXED, Threshold.model_validate(threshold))]


def test_without_a_group_the_overall_value_is_judged_when_it_exists():
    assert _selected("accuracy >= 0.5") == [("performance", None, 0.9)]
    assert _finding(MIXED, "accuracy >= 0.5").verdict == "pass"  # the failing groups are not judged


def test_without_a_group_and_no_overall_value_every_group_is_judged():
    assert _selected("false_positive_rate <= 0.1") == [
        ("fairness", {"sex": "F"}, 0.05),
        ("fairness", {"sex": "M"}, 0.5),
    ]
    finding = _finding(MIXED, "false_positive_rate <= 0.1")
    assert finding.verdict == "fail" and finding.reason.endswith("for sex=M")


def test_group_each_judges_every_group_and_not_the_overall_value():
    threshold = {"metric": "accuracy", "min": 0.5, "group": "each"}
    assert [g for _, g, _ in _selected(threshold)] == [{"sex": "F"}, {"sex": "M"}, {"sex": "F", "age": "<40"}]
    assert _finding(MIXED, threshold).verdict == "fail"


def test_explicit_group_judges_that_group_only():
    assert _selected("accuracy[sex=M] >= 0.5") == [("fairness", {"sex": "M"}, 0.2)]
    # an intersection is its own group: {sex: F} is not {sex: F, age: <40}
    assert _selected("accuracy[sex=F] >= 0.5") == [("fairness", {"sex": "F"}, 0.1)]
    assert _selected("accuracy[sex=F, age=<40] >= 0.5") == [("fairness", {"sex": "F", "age": "<40"}, 0.3)]
    assert _selected("accuracy[sex=X] >= 0.5") == []


def test_check_filter():
    assert _selected({"metric": "accuracy", "min": 0.5, "check": "performance"}) == [("performance", None, 0.9)]
    # fairness has no overall accuracy: every fairness group is judged, the performance value is not
    assert [c for c, _, _ in _selected({"metric": "accuracy", "min": 0.5, "check": "fairness"})] == ["fairness"] * 3
    assert _selected({"metric": "accuracy", "min": 0.5, "check": "data"}) == []


def test_params_must_be_a_subset_of_the_measurements_params():
    measurements = (
        Measurement("fairness", "demographic_parity_ratio", 0.9,
                    params={"sensitive": "sex", "method": "between_groups", "highest_group": "sex=M"}),
        Measurement("fairness", "demographic_parity_ratio", 0.3,
                    params={"sensitive": "race", "method": "between_groups", "highest_group": "race=White"}),
    )

    def values(threshold):
        return [m.value for m in select(measurements, Threshold.model_validate(threshold))]

    assert values("demographic_parity_ratio(sensitive=sex) >= 0.8") == [0.9]
    assert values("demographic_parity_ratio(sensitive=race, method=between_groups) >= 0.8") == [0.3]
    assert values("demographic_parity_ratio >= 0.8") == [0.9, 0.3]
    assert values("demographic_parity_ratio(sensitive=age) >= 0.8") == []
    assert values("demographic_parity_ratio(sensitive=sex, method=to_reference) >= 0.8") == []
    assert values("demographic_parity_ratio(missing=1) >= 0.8") == []


@pytest.mark.parametrize(("measured", "matches"), [(0.05, True), (0.05000000001, True), (0.06, False), (0.049, False)])
def test_float_params_match_within_rounding(measured, matches):
    measurement = Measurement("robustness", "robust_accuracy", 0.7, params={"eps": measured, "attack": "pgd"})
    assert bool(select((measurement,), Threshold.model_validate("robust_accuracy(eps=0.05) >= 0.5"))) is matches


@pytest.mark.parametrize(
    ("threshold", "params"),
    [
        ("class_share(class=1) >= 0.4", {"class": "1"}),  # the data check writes class names as text
        ("precision(pos_label=1) >= 0.4", {"pos_label": "1"}),  # and so does the performance check
        ({"metric": "class_share", "params": {"class": 1}, "min": 0.4}, {"class": "1"}),
    ],
    ids=["shorthand-class", "shorthand-pos_label", "mapping-int"],
)
def test_numeric_looking_params_match_the_text_the_checks_write(threshold, params):
    # the shorthand reads class=1 as the number 1.0; the checks write the class as the text '1'
    metric = Threshold.model_validate(threshold).metric
    measurement = Measurement("data" if metric == "class_share" else "performance", metric, 0.49, params=params)
    finding = _finding([measurement], threshold)
    assert len(finding.matches) == 1, finding.reason
    assert finding.verdict == "pass"


# ---------------------------------------------------------------- the shorthand


def test_shorthand_minimum():
    assert parse_threshold("demographic_parity_ratio >= 0.8") == {"metric": "demographic_parity_ratio", "min": 0.8}
    threshold = Threshold.model_validate("demographic_parity_ratio >= 0.8")
    assert (threshold.min, threshold.max, threshold.group, threshold.params) == (0.8, None, None, {})
    assert threshold.level == "fail" and threshold.decision is None


def test_shorthand_params():
    parsed = parse_threshold("robust_accuracy(eps=0.05) >= 0.5")
    assert parsed == {"metric": "robust_accuracy", "min": 0.5, "params": {"eps": 0.05}}
    assert Threshold.model_validate("robust_accuracy(eps=0.05) >= 0.5").params == {"eps": 0.05}
    assert parse_threshold("demographic_parity_ratio(sensitive=sex, method=between_groups) >= 0.8")["params"] == {
        "sensitive": "sex", "method": "between_groups"
    }


def test_shorthand_group_keeps_strings():
    parsed = parse_threshold("false_positive_rate_ratio[race=African-American] <= 1.25")
    assert parsed == {"metric": "false_positive_rate_ratio", "max": 1.25, "group": {"race": "African-American"}}
    threshold = Threshold.model_validate("accuracy[region=1] >= 0.8")
    assert threshold.group == {"region": "1"}
    assert isinstance(threshold.group["region"], str)
    both = Threshold.model_validate("accuracy(class=x)[sex=F, age=<40] >= 0.8")
    assert both.params == {"class": "x"} and both.group == {"sex": "F", "age": "<40"}


def test_shorthand_text_round_trips_as_the_threshold_name():
    for text in ("accuracy >= 0.8", "log_loss <= 0.5", "robust_accuracy(eps=0.05) >= 0.5", "accuracy[sex=F] >= 0.8"):
        assert Threshold.model_validate(text).text == text


def _spec_with_thresholds(project, thresholds) -> Path:
    return project.spec(thresholds=thresholds)


@pytest.mark.parametrize("bad", ["accuracy > 0.8", "accuracy >= high", ">= 0.8", "accuracy >= 0.8 and", "accuracy = 0.8"])
def test_malformed_shorthand_is_a_config_error_naming_the_threshold(project, bad):
    spec = _spec_with_thresholds(project, ["accuracy >= 0.5", bad])
    with pytest.raises(ConfigError) as caught:
        load_config(spec)
    message = str(caught.value)
    assert "thresholds[1]" in message
    assert repr(bad) in message
    assert "metric >= number" in message and "metric <= number" in message  # the accepted form
    assert "\n" not in message


def test_minimum_above_maximum_is_refused(project):
    spec = _spec_with_thresholds(project, [{"metric": "accuracy", "min": 0.9, "max": 0.8}])
    with pytest.raises(ConfigError, match=r"thresholds\[0\].*min 0\.9 above max 0\.8"):
        load_config(spec)
    # equal bounds are a legitimate (if strict) threshold
    spec = _spec_with_thresholds(project, [{"metric": "accuracy", "min": 0.8, "max": 0.8}])
    assert load_config(spec).thresholds[0].max == 0.8


def test_threshold_without_a_bound_is_refused(project):
    with pytest.raises(ConfigError, match=r"thresholds\[0\].*needs min or max"):
        load_config(_spec_with_thresholds(project, [{"metric": "accuracy"}]))


# ---------------------------------------------------------------- unknown names


def _one_line_error(code, captured) -> str:
    assert code == 2, captured.err
    assert "Traceback" not in captured.err
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""
    return captured.err.strip()


@pytest.mark.parametrize("command", ["run", "validate"])
def test_unknown_metric_is_refused_with_a_suggestion(project, tmp_path, capsys, command):
    spec = _spec_with_thresholds(project, ["accuracy >= 0.1", "acuracy >= 0.8"])
    out = tmp_path / "out"
    argv = ["run", str(spec), "--out", str(out)] if command == "run" else ["validate", str(spec)]
    line = _one_line_error(main(argv), capsys.readouterr())
    assert "'acuracy'" in line
    assert "thresholds[1]" in line
    assert "closest: accuracy" in line
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "validate"])
def test_unknown_check_is_refused(project, tmp_path, capsys, command):
    spec = _spec_with_thresholds(project, [{"metric": "accuracy", "check": "perfomance", "min": 0.1}])
    out = tmp_path / "out"
    argv = ["run", str(spec), "--out", str(out)] if command == "run" else ["validate", str(spec)]
    line = _one_line_error(main(argv), capsys.readouterr())
    assert "'perfomance'" in line and "thresholds[0]" in line
    assert "performance" in line.split("'perfomance'", 1)[1]  # the valid names follow
    assert not out.exists() or list(out.iterdir()) == []


def test_metric_of_another_check_is_refused(project, capsys):
    spec = _spec_with_thresholds(project, [{"metric": "roc_auc", "check": "data", "min": 0.5}])
    line = _one_line_error(main(["validate", str(spec)]), capsys.readouterr())
    assert "'roc_auc'" in line


# ---------------------------------------------------------------- end to end on the project model


# the project's model predicts the positive class for every row: accuracy 0.49, 95% CI about [0.44, 0.54]
PASSING = ["accuracy >= 0.4", "log_loss <= 100", {"metric": "selection_rate", "check": "fairness", "min": 0.99}]
MIXED_THRESHOLDS = [
    "accuracy >= 0.4",  # pass
    "accuracy >= 0.6",  # fail
    {"metric": "accuracy", "min": 0.6, "level": "warn", "name": "accuracy, warn only"},  # warn
    {"metric": "accuracy", "min": 0.49, "decision": "interval"},  # inconclusive: the interval straddles 0.49
]


def _run(spec: Path, out: Path, capsys) -> tuple[int, str, str]:
    code = main(["run", str(spec), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cases(junit_path: Path):
    xml = JUnitXml.fromfile(str(junit_path))
    suites = list(xml)
    assert len(suites) == 1
    return xml, suites[0], list(suites[0])


def _table_rows(summary: str) -> list[str]:
    lines = [line for line in summary.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| Verdict | Threshold") and set(lines[1]) <= {"|", "-"}
    return lines[2:]


def test_passing_thresholds_exit_0(project, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = _run(project.spec(thresholds=PASSING), out, capsys)
    assert code == 0, stderr
    assert stderr == ""
    assert "gate: PASSED" in stdout
    result = json.loads((out / "result.json").read_text())
    assert [f["verdict"] for f in result["findings"]] == ["pass"] * 3
    assert result["gate"]["verdict"] == "pass"
    _, suite, cases = _cases(out / "junit.xml")
    assert len(cases) == 3 and all(case.is_passed for case in cases)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 0, 0, 0)


@pytest.mark.parametrize("policy", ["fail", "warn", "pass"])
def test_failing_thresholds_exit_1_and_write_every_gate_file(project, tmp_path, capsys, policy):
    out = tmp_path / "out"
    spec = project.spec(thresholds=MIXED_THRESHOLDS, gate={"inconclusive": policy})
    code, _, stderr = _run(spec, out, capsys)
    assert code == 1, stderr
    expected_lines = ["gate fail: accuracy >= 0.6: 0.49 violates >= 0.6"]
    if policy == "fail":
        expected_lines.append("gate inconclusive: accuracy >= 0.49: the interval [")
    lines = stderr.splitlines()
    assert len(lines) == len(expected_lines), stderr
    for line, expected in zip(lines, expected_lines):
        assert line.startswith(expected), (line, expected)

    # result.json holds the findings and the gate, and reads back
    result = json.loads((out / "result.json").read_text())
    assert [f["verdict"] for f in result["findings"]] == ["pass", "fail", "warn", "inconclusive"]
    assert [f["threshold"] for f in result["findings"]] == [
        "accuracy >= 0.4", "accuracy >= 0.6", "accuracy, warn only", "accuracy >= 0.49"
    ]
    assert result["gate"] == {
        "verdict": "fail",
        "counts": {"pass": 1, "warn": 1, "inconclusive": 1, "fail": 1, "error": 0},
        "inconclusive_policy": policy,
        "level": "fail",
        "errors": [],
    }
    assert result["gate_settings"]["inconclusive"] == policy
    assert len(result["thresholds"]) == 4
    stored = read_result(out / "result.json")
    assert [f.verdict for f in stored.findings] == ["pass", "fail", "warn", "inconclusive"]
    assert stored.findings[1].matches[0].value == pytest.approx(0.49)

    # junit.xml: one testcase per threshold
    xml, suite, cases = _cases(out / "junit.xml")
    assert [case.name for case in cases] == [f["threshold"] for f in result["findings"]]
    kinds = [[type(r) for r in case.result] for case in cases]
    inconclusive_kind = Failure if policy == "fail" else Skipped
    assert kinds == [[], [Failure], [], [inconclusive_kind]]
    failure = cases[1].result[0]
    assert failure.type == "fail" and "violates >= 0.6" in failure.message
    assert "WARN" in cases[2].system_out  # a warning passes, with the reason on the record
    failures = 2 if policy == "fail" else 1
    skipped = 0 if policy == "fail" else 1
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, failures, 0, skipped)
    assert (xml.tests, xml.failures, xml.errors) == (4, failures, 0)

    # summary.md: one row per threshold, in order
    rows = _table_rows((out / "summary.md").read_text(encoding="utf-8"))
    assert len(rows) == 4
    for row, verdict in zip(rows, ["pass", "fail", "warn", "inconclusive"]):
        assert row.split("|")[1].strip().endswith(verdict), row
    assert "0.490" in rows[1]
    assert f"inconclusive counts as {policy}" in (out / "summary.md").read_text(encoding="utf-8")


def test_only_warn_and_inconclusive_under_warn_policy_exit_0(project, tmp_path, capsys):
    thresholds = MIXED_THRESHOLDS[2:]
    code, stdout, stderr = _run(project.spec(thresholds=thresholds, gate={"inconclusive": "warn"}), tmp_path / "out", capsys)
    assert code == 0, stderr
    assert stderr == ""
    assert "gate: PASSED" in stdout


def test_a_check_error_is_a_junit_error_and_exit_2(project, tmp_path, capsys, monkeypatch):
    def boom(ctx):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(checks.CHECKS, "boom", checks.CheckRecord("boom", boom))
    out = tmp_path / "out"
    code, _, stderr = _run(project.spec(thresholds=PASSING), out, capsys)
    assert code == 2
    assert "check error: boom: internal error: RuntimeError: kaboom" in stderr.splitlines()
    xml, suite, cases = _cases(out / "junit.xml")
    assert len(cases) == 4  # three thresholds and the check that could not run
    errored = [case for case in cases if case.result and isinstance(case.result[0], Error)]
    assert len(errored) == 1
    assert "boom" in errored[0].name and "kaboom" in errored[0].result[0].message
    assert all(case.is_passed for case in cases if case is not errored[0])
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 0, 1, 0)
    assert xml.errors == 1
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "could not run" in summary and "kaboom" in summary
    assert len(_table_rows(summary)) == 3


def test_step_summary_is_appended_when_github_sets_it(project, tmp_path, capsys, monkeypatch):
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    out = tmp_path / "out"
    code, _, stderr = _run(project.spec(thresholds=MIXED_THRESHOLDS), out, capsys)
    assert code == 1, stderr
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| Verdict | Threshold" in summary
    assert target.read_text(encoding="utf-8") == "earlier step\n" + summary + "\n"


# ---------------------------------------------------------------- escaping


def test_user_text_is_escaped_in_junit_and_summary(project, tmp_path, capsys):
    frame = make_frame()
    frame.loc[frame.sex == "F", "sex"] = PAYLOAD
    frame.to_csv(project.root / "data.csv", index=False)
    thresholds = [
        {"metric": "accuracy", "check": "fairness", "group": {"sex": PAYLOAD}, "min": 0.99},
        {"metric": "accuracy", "check": "fairness", "group": "each", "min": 0.99},
        {"metric": "accuracy", "min": 0.1, "name": f"named {PAYLOAD}"},
    ]
    spec = project.spec(thresholds=thresholds)
    raw = yaml.safe_load(spec.read_text(encoding="utf-8"))
    raw["name"] = NAME_PAYLOAD  # project.spec's own `name` argument is the file name
    spec.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    code, _, stderr = _run(spec, out, capsys)
    assert code == 1, stderr

    # junit.xml parses and every text comes back as it was
    raw_xml = (out / "junit.xml").read_text(encoding="utf-8")
    assert "<script>" not in raw_xml
    _, suite, cases = _cases(out / "junit.xml")
    assert suite.name == f"rai-audit: {NAME_PAYLOAD}"
    assert [case.name for case in cases] == [
        f"accuracy[sex={PAYLOAD}] >= 0.99", "accuracy[each group] >= 0.99", f"named {PAYLOAD}"
    ]
    assert f"sex={PAYLOAD}" in cases[0].result[0].text
    assert f"sex={PAYLOAD}" in cases[1].result[0].text
    assert cases[2].is_passed

    # summary.md: no raw HTML, and the table keeps its five columns
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in summary and "</script>" not in summary
    assert "&lt;script&gt;" in summary  # the payload was rendered, escaped
    heading = summary.splitlines()[0]
    assert "&lt;script&gt;" in heading and len(UNESCAPED_PIPE.findall(heading)) == 0
    rows = _table_rows(summary)
    assert len(rows) == 3
    for row in rows:
        assert len(UNESCAPED_PIPE.findall(row)) == 6, row
    assert "\\|" in rows[0] and "\\|" in rows[2]


# ---------------------------------------------------------------- rai-audit gate on the demo Adult model


@pytest.fixture(scope="module")
def adult_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adult")
    assert main(["run", str(EXAMPLES / "adult_mlp.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def adult_copy(adult_run, tmp_path) -> Path:
    """A private copy of the run's folder, so one test's rewrite cannot reach another test."""
    folder = tmp_path / "adult"
    shutil.copytree(adult_run, folder)
    return folder


@pytest.fixture
def no_recomputation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("rai-audit gate must not recompute the audit")

    # the CLI imports run_audit from audit.runner when it runs, so this reaches it too
    monkeypatch.setattr(audit.runner, "run_audit", refuse)
    monkeypatch.setattr(audit.runner, "build_context", refuse)
    for name in list(checks.CHECKS):
        monkeypatch.setitem(checks.CHECKS, name, dataclasses.replace(checks.CHECKS[name], run=refuse))


def _gate(result: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["gate", str(result), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("thresholds", "expected_code", "verdicts"),
    [
        ("gate_performance.yaml", 0, ["pass", "pass", "pass", "pass"]),
        ("gate_fairness.yaml", 1, ["pass", "fail", "inconclusive", "inconclusive"]),
    ],
)
def test_gate_rejudges_a_stored_result(adult_copy, tmp_path, capsys, no_recomputation, thresholds, expected_code, verdicts):
    result_path = adult_copy / "result.json"
    before = {p.name: p.read_bytes() for p in adult_copy.iterdir()}
    stored_junit = (adult_copy / "junit.xml").read_text(encoding="utf-8")
    stored_summary = (adult_copy / "summary.md").read_text(encoding="utf-8")
    out = tmp_path / "gate"

    code, stdout, stderr = _gate(result_path, capsys, "--thresholds", str(EXAMPLES / thresholds), "--out", str(out))
    assert code == expected_code, stderr
    # the audit's folder is never rewritten (issue 10 item 3): its files still agree with each other
    assert {p.name: p.read_bytes() for p in adult_copy.iterdir()} == before
    assert f"wrote junit.xml, summary.md to {out}" in stdout

    written = yaml.safe_load((EXAMPLES / thresholds).read_text(encoding="utf-8"))["thresholds"]
    names = [Threshold.model_validate(t).text for t in written]
    _, suite, cases = _cases(out / "junit.xml")
    assert [case.name for case in cases] == names
    failed = [case.name for case in cases if case.result and isinstance(case.result[0], Failure)]
    assert failed == [n for n, v in zip(names, verdicts) if v in {"fail", "inconclusive"}]  # inconclusive: fail
    assert suite.failures == len(failed) and suite.tests == len(names)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert len(_table_rows(summary)) == len(names)
    assert (out / "junit.xml").read_text(encoding="utf-8") != stored_junit
    assert summary != stored_summary
    assert ("gate: PASSED" if expected_code == 0 else "gate: FAILED") in stdout
    if expected_code == 0:
        assert stderr == ""
    else:
        assert [line.split(":")[0] for line in stderr.splitlines()] == ["gate fail", "gate inconclusive", "gate inconclusive"]
        assert "demographic_parity_ratio(sensitive=sex) >= 0.8" in stderr.splitlines()[0]


def test_gate_without_thresholds_uses_the_stored_ones(adult_copy, tmp_path, capsys, no_recomputation):
    result_path = adult_copy / "result.json"
    stored = json.loads(result_path.read_text(encoding="utf-8"))
    assert len(stored["thresholds"]) == 3 and stored["gate_settings"]["inconclusive"] == "warn"
    run_junit = (adult_copy / "junit.xml").read_bytes()
    run_summary = (adult_copy / "summary.md").read_bytes()

    code, stdout, stderr = _gate(result_path, capsys, "--out", str(tmp_path / "again"))
    assert code == 0, stderr
    # the same thresholds on the same measurements: the very files the run wrote
    assert (tmp_path / "again" / "junit.xml").read_bytes() == run_junit
    assert (tmp_path / "again" / "summary.md").read_bytes() == run_summary
    for finding in stored["findings"]:
        assert f"{finding['verdict'].upper()}" in stdout and finding["threshold"] in stdout


def test_gate_rejudges_the_project_run(project, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, _, _ = _run(project.spec(thresholds=MIXED_THRESHOLDS, gate={"inconclusive": "warn"}), out, capsys)
    assert code == 1
    # the interval [0.44, 0.54] straddles 0.49: inconclusive, which one file lets pass and the other not
    lenient = {"thresholds": ["accuracy >= 0.4", "accuracy >= 0.49"], "gate": {"decision": "interval", "inconclusive": "pass"}}
    strict = {"thresholds": ["accuracy >= 0.49"], "gate": {"decision": "interval"}}
    (project.root / "lenient.yaml").write_text(yaml.safe_dump(lenient))
    (project.root / "strict.yaml").write_text(yaml.safe_dump(strict))
    monkeypatch.setattr(audit.runner, "run_audit", lambda *a, **k: pytest.fail("recomputed"))
    assert _gate(out / "result.json", capsys, "--thresholds", str(project.root / "lenient.yaml"))[0] == 0
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    judged = tmp_path / "judged"
    code, _, stderr = _gate(out / "result.json", capsys, "--thresholds", str(project.root / "strict.yaml"), "--out", str(judged))
    assert code == 1
    assert step_summary.read_text(encoding="utf-8") == (judged / "summary.md").read_text(encoding="utf-8") + "\n"
    assert stderr.startswith("gate inconclusive: accuracy >= 0.49: the interval")
    _, suite, cases = _cases(judged / "junit.xml")
    assert len(cases) == 1 and isinstance(cases[0].result[0], Failure) and cases[0].result[0].type == "inconclusive"


def test_gate_refuses_another_schema_version(adult_copy, capsys):
    result_path = adult_copy / "result.json"
    data = json.loads(result_path.read_text(encoding="utf-8"))
    data["schema_version"] = "0.9"
    result_path.write_text(json.dumps(data), encoding="utf-8")
    junit_before = (adult_copy / "junit.xml").read_bytes()
    line = _one_line_error(*_gate_captured(result_path, capsys, "--thresholds", str(EXAMPLES / "gate_performance.yaml")))
    assert "schema version 0.9" in line and "1.0" in line
    assert (adult_copy / "junit.xml").read_bytes() == junit_before


def _gate_captured(result: Path, capsys, *extra: str):
    code = main(["gate", str(result), *extra])
    return code, capsys.readouterr()


@pytest.mark.parametrize(
    "content",
    ['{"name": "x"}', "[1, 2, 3]", "name: a spec\nthresholds: [accuracy >= 0.8]\n", "not json at all {"],
    ids=["dict-without-measurements", "list", "yaml", "garbage"],
)
def test_gate_refuses_a_file_that_is_not_a_result(tmp_path, capsys, content):
    path = tmp_path / "result.json"
    path.write_text(content, encoding="utf-8")
    line = _one_line_error(*_gate_captured(path, capsys))
    assert str(path) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_gate_refuses_a_missing_result(tmp_path, capsys):
    line = _one_line_error(*_gate_captured(tmp_path / "nothing.json", capsys))
    assert "not found" in line


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("thresholds: [accuracy > 0.8]\n", "thresholds[0]"),
        ("thresholds:\n  - accuracy >= 0.8\n  - metric: accuracy\n    minimum: 0.8\n", "thresholds[1].minimum"),
        ("thresholds: []\n", "thresholds"),
        ("thresholds: [accuracy >= 0.8\n", "malformed YAML"),
        ("thresholds: [acuracy >= 0.8]\n", "'acuracy'"),
        ("thresholds: [accuracy >= 0.8]\ngate: {inconclusive: maybe}\n", "gate.inconclusive"),
    ],
    ids=["shorthand", "unknown-key", "empty", "yaml", "unknown-metric", "bad-policy"],
)
def test_gate_refuses_a_malformed_thresholds_file(adult_copy, tmp_path, capsys, content, needle):
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text(content, encoding="utf-8")
    junit_before = (adult_copy / "junit.xml").read_bytes()
    line = _one_line_error(*_gate_captured(adult_copy / "result.json", capsys, "--thresholds", str(thresholds)))
    assert needle in line
    assert (adult_copy / "junit.xml").read_bytes() == junit_before


# ---------------------------------------------------------------- the deciding measurement (issue 10 item 2)


@pytest.mark.parametrize(
    ("threshold", "decision", "decisive"),
    [
        ("false_positive_rate <= 0.5", "point", "M"),  # 0.45 is nearest the upper bound
        ("false_positive_rate >= 0.1", "point", "F"),  # 0.3 is nearest the lower bound
        ("false_positive_rate <= 0.5", "interval", "F"),  # F's interval reaches 0.49, M's only 0.46
    ],
)
def test_among_equal_verdicts_the_one_nearest_the_bound_decides(threshold, decision, decisive):
    measurements = [
        _group(0.3, {"sex": "F"}, ci=(0.11, 0.49), metric="false_positive_rate"),
        _group(0.45, {"sex": "M"}, ci=(0.44, 0.46), metric="false_positive_rate"),
    ]
    finding = _finding(measurements, threshold, decision=decision)
    assert finding.verdict == "pass"
    assert finding.decisive.group == {"sex": decisive}
    assert finding.reason.startswith("worst of 2: ") and finding.reason.endswith(f"for sex={decisive}")


def test_the_reason_names_the_attack_and_epsilon_that_decided():
    measurements = [
        Measurement("robustness", "robust_accuracy", value, params={"attack": attack, "eps": eps, "norm": "Linf"})
        for attack, eps, value in [("FGSM", 0.05, 0.51), ("PGD", 0.05, 0.433), ("FGSM", 0.1, 0.4), ("PGD", 0.1, 0.2)]
    ]
    assert _finding(measurements, "robust_accuracy(eps=0.05) >= 0.3").reason == "worst of 2: 0.433 satisfies >= 0.3 for attack=PGD"
    finding = _finding(measurements, "robust_accuracy >= 0.3")
    assert finding.verdict == "fail"
    assert finding.reason == "worst of 4: 0.2 violates >= 0.3 for attack=PGD, eps=0.1"
    assert [m.value for m in finding.violations] == [0.2]
