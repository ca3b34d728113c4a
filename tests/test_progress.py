"""Progress on stderr: shown with --progress (or on a terminal), never with --quiet; cost warnings."""

from __future__ import annotations

import pytest
import yaml

from audit import cost, progress
from audit.cli import main
from audit.config import config_from_dict


@pytest.fixture
def spec(project):
    return project.spec(checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})


def test_progress_flag_draws_the_steps_and_a_time_line(spec, tmp_path, capsys):
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--progress"]) == 0
    err = capsys.readouterr().err
    for step in ("loading data", "loading model", "predicting", "performance", "fairness"):
        assert step in err
    time_line = err.strip().splitlines()[-1]
    assert time_line.startswith("time: loading torch and the audit libraries ")
    assert ", loading data " in time_line
    assert " fairness " in time_line and time_line.endswith(" s")


def test_a_sharded_run_times_its_reading_of_the_shards(project, tmp_path, capsys):
    # the time line read "loading data 0.0 s" nowhere and nothing for the shards a streamed run spent its time on
    spec = project.spec(engine={"batch_rows": 100},
                        checks={"explanations": {"enabled": False}, "robustness": {"enabled": False}})
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--progress"]) == 0
    time_line = capsys.readouterr().err.strip().splitlines()[-1]
    steps = [part.rsplit(" ", 2)[0] for part in time_line.removeprefix("time: ").split(", ")]
    assert steps.index("loading model") + 1 == steps.index("reading shards") and "fairness" in steps


def test_nothing_on_stderr_when_it_is_not_a_terminal(spec, tmp_path, capsys):
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""


def test_quiet_wins_over_progress(spec, tmp_path, capsys):
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--progress", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_task_without_listener_reports_nothing_and_nested_tasks_are_timed():
    class Record(progress.Listener):
        def __init__(self):
            self.events = []

        def start(self, label, *, total, unit, depth):
            self.events.append(("start", label, total, depth))
            return progress.Task()

        def end(self, label, task, *, seconds, depth):
            self.events.append(("end", label, depth))

    with progress.task("alone") as step:
        step.advance()
    record = Record()
    with progress.listening(record):
        with progress.task("outer", total=2):
            with progress.task("inner"):
                pass
    assert record.events == [("start", "outer", 2, 0), ("start", "inner", None, 1), ("end", "inner", 1), ("end", "outer", 0)]


def _config(project, **checks):
    raw = yaml.safe_load(project.spec(checks=checks).read_text())
    return config_from_dict(raw, base=project.root)


def test_cost_counts_rows_methods_and_samples(project):
    config = _config(project, explanations={"methods": ["IntegratedGradients", "KernelExplainer"], "rows": 300,
                                            "costly_rows": 50, "steps": 20})
    found = cost.explanations(config, rows=1000, columns=6, methods=["IntegratedGradients", "KernelExplainer"])
    # IG: 300 rows x 3 x 20 steps; KernelSHAP: 50 rows x (2 x 6 + 2048) coalitions x 100 background rows
    assert found.evaluations == 300 * 3 * 20 + 50 * (2 * 6 + 2048) * 100
    assert "costly_rows" in found.setting


def test_cost_of_attacks_is_rows_epsilons_steps(project):
    config = _config(project, robustness={"attacks": ["FGSM", "PGD"], "rows": 200, "steps": 10})
    found = cost.robustness(config, rows=150, attacks=["FGSM", "PGD"], epsilons=7)
    assert found.evaluations == 150 * 3 * 7 * (1 + 10)


def test_a_long_run_is_warned_with_the_setting_that_cuts_it():
    long = cost.Cost("explanations", 2e6, "KernelExplainer: 100 rows", "checks.explanations.costly_rows")
    short = cost.Cost("robustness", 1e3, "PGD", "checks.robustness.rows")
    lines = cost.warnings([long, short], seconds_per_row=1e-4)  # 200 s and 0.1 s (above the floor)
    assert lines == ["explanations may take about 3 min (KernelExplainer: 100 rows); to cut it, lower checks.explanations.costly_rows"]


def test_the_run_warns_before_a_costly_explanation(project, tmp_path, capsys):
    spec = project.spec(checks={"robustness": {"enabled": False},
                                "explanations": {"methods": ["KernelExplainer"], "costly_rows": 300, "rows": 300,
                                                 "trust": False}})
    # stop right after the warning: the estimate is all this test needs
    class Stop(Exception):
        pass

    def stop(*args):
        raise Stop

    import dataclasses

    import audit.checks

    record = dataclasses.replace(audit.checks.CHECKS["explanations"], run=stop)  # its input rules stay
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audit.cost, "WARN_SECONDS", 0.0)
        patch.setitem(audit.checks.CHECKS, "explanations", record)
        main(["run", str(spec), "--out", str(tmp_path / "out"), "--progress"])
    err = capsys.readouterr().err
    assert "warning: explanations may take about" in err
    assert "lower checks.explanations.costly_rows" in err


def test_the_floor_keeps_a_fast_model_from_hiding_a_costly_method():
    costly = cost.Cost("explanations", 2.1e7, "KernelExplainer: 100 rows", "checks.explanations.costly_rows")
    assert cost.warnings([costly], seconds_per_row=1e-9) == cost.warnings([costly], seconds_per_row=cost.FLOOR_SECONDS)
    assert cost.warnings([costly], seconds_per_row=1e-9)  # 105 s at the floor


def test_the_demo_is_not_warned(capsys):
    """The demo runs in seconds: a warning there would teach people to ignore them."""
    from audit import runner
    from audit.config import load_config
    from audit.data import load_data
    from audit.models import load_model, predict
    from audit.resources import bundled

    for name in ("adult_mlp.yaml", "digits_cnn.yaml"):
        config = load_config(bundled("examples") / name)
        data, model = load_data(config), load_model(config)
        predict(model, data, config.model)
        assert runner._cost_warnings(config, data, model, runner._seconds_per_row(model, data)) == []
