"""The robustness check end to end: measurements, groups, flags, black boxes and bad input.

The sweep, the domains and the attacks themselves are tested in test_robustness_sweep.py.
Two small projects stand in for the demo models: a tabular linear model whose logit follows
the label rule of tests/conftest.py (so it is right often and easy to attack), with an integer
feature, an age feature and a one-hot block; and a 6 x 6 image CNN whose labels are its own
predictions on the clean images (so every point starts correctly classified).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from audit import attacks
from audit.checks import robustness
from audit.cli import main
from audit.config import config_from_dict, load_config
from audit.models import predictions_from_outputs
from audit.results import AuditResult, Reason
from audit.robust.wrappers import DecisionLogits
from audit.runner import build_context, run_audit
from tests.conftest import make_frame

TABULAR_FEATURES = [
    {"name": "x1", "type": "numeric", "encoding": "standardize", "mean": 1.0, "std": 2.0},
    {"name": "x2", "type": "numeric", "encoding": "minmax", "min": -1.0, "max": 3.0},
    {"name": "x3", "type": "numeric", "integer": True},
    {"name": "colour", "type": "categorical", "categories": ["blue", "green", "red"]},
    {"name": "age", "type": "numeric", "encoding": "standardize", "mean": 45.0, "std": 15.0},
]
LINEAR_FACTORY = '''
import torch


def build():
    # the logit of tests/conftest.py's label rule in encoded units, plus some weight on x3 and age
    layer = torch.nn.Linear(7, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.tensor([2.0, -2.0, 0.3, 0.0, 0.0, 0.3, 0.4])
        layer.bias[1] = -0.4
    return layer
'''
CNN_FACTORY = '''
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 36, 3)
    )
'''
# the linear model behind a step function: same decision, gradients zero almost everywhere
MASKED_FACTORY = LINEAR_FACTORY.replace("def build():", "def linear():") + '''

class Steps(torch.nn.Module):
    """Rounds its input to quarters: a gradient of zero almost everywhere (masked gradients)."""

    def forward(self, x):
        return torch.round(x * 4) / 4


def build():
    return torch.nn.Sequential(Steps(), linear())
'''


def write_spec(root: Path, name: str, raw: dict) -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def tabular_spec(root: Path, *, robustness_check: dict | None = None, factory: str = LINEAR_FACTORY, **extra) -> Path:
    """A tabular project: make_frame's data, a state_dict model over 7 encoded inputs."""
    from safetensors.torch import save_file

    if not (root / "data.csv").exists():
        make_frame(n=300, seed=0).to_csv(root / "data.csv", index=False)
    (root / "arch.py").write_text(factory)
    namespace: dict = {}
    exec(compile(factory, "arch.py", "exec"), namespace)
    save_file(namespace["build"]().state_dict(), str(root / "weights.safetensors"))
    raw = {
        "name": "robustness test",
        "data": {
            "kind": "tabular",
            "path": "data.csv",
            "label": {"column": "label", "classes": [0, 1], "positive": 1},
            "features": TABULAR_FEATURES,
            "sensitive": [{"column": "sex"}],
        },
        "model": {"kind": "state_dict", "path": "weights.safetensors", "factory": "arch.py:build"},
        "statistics": {"bootstrap": 50},
        "checks": {"explanations": {"enabled": False}, "robustness": robustness_check or {}},
    } | extra
    return write_spec(root, "spec.yaml", raw)


def image_spec(root: Path, *, robustness_check: dict | None = None, images: np.ndarray | None = None, n: int = 60) -> Path:
    """An image project: n 6 x 6 images in [0, 1], labelled with the CNN's own predictions."""
    from safetensors.torch import save_file

    (root / "cnn.py").write_text(CNN_FACTORY)
    namespace: dict = {}
    exec(compile(CNN_FACTORY, "cnn.py", "exec"), namespace)
    network = namespace["build"]().eval()
    save_file(network.state_dict(), str(root / "cnn.safetensors"))
    if images is None:
        images = np.random.default_rng(3).uniform(0, 1, size=(n, 1, 6, 6)).astype(np.float32)
    with torch.no_grad():
        labels = network(torch.from_numpy(np.clip(images, 0, 1))).argmax(dim=1).numpy()
    np.savez(root / "images.npz", images=images, labels=labels)
    shade = np.where(images.reshape(len(images), -1).mean(axis=1) > 0.5, "light", "dark")
    pd.DataFrame({"shade": shade}).to_csv(root / "meta.csv", index=False)
    raw = {
        "name": "image robustness test",
        "data": {
            "kind": "image", "path": "images.npz", "value_range": [0, 1], "metadata": "meta.csv",
            "label": {"classes": [0, 1, 2]}, "sensitive": [{"column": "shade"}],
        },
        "model": {"kind": "state_dict", "path": "cnn.safetensors", "factory": "cnn.py:build"},
        "statistics": {"bootstrap": 50},
        "checks": {"explanations": {"enabled": False}, "robustness": robustness_check or {}},
    }
    return write_spec(root, "image.yaml", raw)


def robustness_of(result, metric: str | None = None) -> list:
    return [m for m in result.measurements if m.check == "robustness" and (metric is None or m.metric == metric)]


def overall(result, metric: str, attack: str) -> dict[float, object]:
    return {m.params["eps"]: m for m in robustness_of(result, metric) if m.group is None and m.params["attack"] == attack}


# ---------------------------------------------------------------- measurements


def test_measurement_contract_and_json_round_trip(tmp_path):
    result = run_audit(load_config(tabular_spec(tmp_path)))
    found = robustness_of(result)
    assert not result.failures
    assert {m.metric for m in found} <= set(robustness.METRICS)
    assert {m.metric for m in found} >= {
        "robust_accuracy", "attack_success_rate", "median_minimal_perturbation", "large_epsilon_accuracy",
        "gradient_masking_flag", "adversarial_example",
    }
    eps = sorted(overall(result, "robust_accuracy", "PGD"))
    assert eps == [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]  # the tabular default grid, in standard deviations
    for m in overall(result, "robust_accuracy", "PGD").values():
        assert m.params["norm"] == "Linf" and m.params["units"] == "standard deviations" and m.n == 300
        assert m.ci is None or m.ci[0] <= m.value <= m.ci[1]
    again = json.loads(result.to_json())
    assert [m for m in again["measurements"] if m["check"] == "robustness"] == [m.to_dict() for m in found]


def test_robust_accuracy_at_zero_is_the_clean_accuracy_of_the_attacked_rows(tmp_path):
    spec = tabular_spec(tmp_path, robustness_check={"rows": 120, "epsilons": [0.5]})
    result = run_audit(load_config(spec))
    ctx = build_context(load_config(spec))
    rows = robustness.plan_run(ctx).rows
    assert len(rows) == 120
    clean = float((ctx.predictions.decisions[rows] == ctx.data.labels[rows]).mean())
    assert overall(result, "robust_accuracy", "PGD")[0.0].value == pytest.approx(clean, abs=1e-12)
    assert overall(result, "attack_success_rate", "PGD")[0.0].value == 0.0
    # all rows attacked: equal to the performance check's accuracy
    full = run_audit(load_config(tabular_spec(tmp_path, robustness_check={"epsilons": [0.5]})))
    accuracy = next(m for m in full.measurements if m.check == "performance" and m.metric == "accuracy" and m.group is None)
    assert overall(full, "robust_accuracy", "FGSM")[0.0].value == pytest.approx(accuracy.value, abs=1e-12)


def test_robust_accuracy_falls_and_success_rate_is_its_complement_among_correct_points(tmp_path):
    result = run_audit(load_config(tabular_spec(tmp_path)))
    robust, success = overall(result, "robust_accuracy", "PGD"), overall(result, "attack_success_rate", "PGD")
    values = [robust[e].value for e in sorted(robust)]
    assert values == sorted(values, reverse=True) and values[-1] < 0.5 * values[0]
    correct = robust[0.0].value * robust[0.0].n
    for eps in robust:
        broken = success[eps].value * success[eps].n
        assert success[eps].n == round(correct)
        assert robust[eps].value * robust[eps].n == pytest.approx(correct - broken)


def test_per_group_robust_accuracy_and_medians_equal_a_hand_computation(tmp_path):
    spec = tabular_spec(tmp_path, robustness_check={"attacks": ["PGD"], "epsilons": [0.2, 0.5, 1.0]})
    result = run_audit(load_config(spec))
    ctx = build_context(load_config(spec))
    setup = robustness.plan_run(ctx)
    from audit.robust import sweep

    outcome = sweep.run(attacks.get("PGD"), setup.target, setup.epsilons, setup.plan, keep=0)
    sex = ctx.data.sensitive["sex"].to_numpy()[setup.rows]
    for group in ("F", "M"):
        mine = {m.params["eps"]: m for m in robustness_of(result, "robust_accuracy") if m.group == {"sex": group}}
        members = sex == group
        for k, eps in enumerate(setup.epsilons):
            # by hand: correct and not broken at this epsilon or a smaller one
            expected = np.mean([(b > k) for b in outcome.broken_at[members]])
            assert mine[eps].value == pytest.approx(expected, abs=1e-12)
            assert mine[eps].n == members.sum()
            assert mine[eps].ci[0] <= mine[eps].value <= mine[eps].ci[1]
        median = next(m for m in robustness_of(result, "median_minimal_perturbation") if m.group == {"sex": group})
        distances = outcome.distance[members & setup.target.correct]
        assert median.value == pytest.approx(float(np.median(distances)))
    medians = {m.group["sex"]: m.value for m in robustness_of(result, "median_minimal_perturbation") if m.group}
    gap = robustness_of(result, "robustness_gap")[0]
    assert gap.value == pytest.approx(max(medians.values()) - min(medians.values()))
    assert gap.params["most_fragile_group"] == f"sex={min(medians, key=medians.get)}"


def test_deterministic_under_a_seed_including_square(tmp_path):
    check = {"attacks": ["FGSM", "PGD", "Square"], "rows": 80, "epsilons": [0.2, 1.0]}
    spec = tabular_spec(tmp_path, robustness_check=check)
    first, second = (robustness_of(run_audit(load_config(spec))) for _ in range(2))
    assert [m.to_dict() for m in first] == [m.to_dict() for m in second]
    other = robustness_of(run_audit(load_config(tabular_spec(tmp_path, robustness_check=check, seed=1))))
    assert [m.to_dict() for m in other] != [m.to_dict() for m in first]


def test_the_check_leaves_data_and_model_as_it_found_them(tmp_path):
    ctx = build_context(load_config(tabular_spec(tmp_path, robustness_check={"rows": 50, "epsilons": [0.5]})))
    before = ctx.data.features.clone()
    module = ctx.model.module
    module.train(True)
    flags = [p.requires_grad for p in module.parameters()]
    calls = ctx.model.forward_calls
    robustness.run(ctx)
    assert torch.equal(ctx.data.features, before)
    assert module.training and [p.requires_grad for p in module.parameters()] == flags
    assert all(p.grad is None for p in module.parameters())
    assert ctx.model.forward_calls == calls


def test_examples_show_tabular_changes_in_data_units(tmp_path):
    result = run_audit(load_config(tabular_spec(tmp_path, robustness_check={"examples": 2})))
    examples = robustness_of(result, "adversarial_example")
    assert len(examples) == 2
    frame = make_frame(n=300, seed=0)
    for m in examples:
        assert m.params["true_class"] != m.params["adversarial_class"]
        changes = result.artefact(m)["changes"]
        assert changes and "changes" not in m.params, "an adversarial example moves something, shown as a figure"
        for change in changes:
            assert change["feature"] in {"x1", "x2", "x3"}  # colour is one-hot, age immutable
            assert change["clean"] == pytest.approx(frame.loc[m.params["row"], change["feature"]], rel=1e-5, abs=1e-5)
            assert change["change"] == pytest.approx(change["adversarial"] - change["clean"], abs=1e-6)
            assert abs(change["change_sd"]) <= m.params["eps"] * (1 + 1e-5)


def test_image_check_has_standard_defaults_groups_and_pixel_examples(tmp_path):
    result = run_audit(load_config(image_spec(tmp_path)))
    assert not result.failures
    robust = overall(result, "robust_accuracy", "PGD")
    assert sorted(robust) == [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3]
    assert robust[0.0].value == 1.0 and robust[0.3].value < 0.5 and robust[0.0].params["units"] == "input units"
    assert {tuple(m.group.items()) for m in robustness_of(result, "robust_accuracy") if m.group} <= {
        (("shade", "dark"),), (("shade", "light"),)
    }
    example = robustness_of(result, "adversarial_example")[0]
    image = result.artefact(example)["image"]
    assert image["shape"] == [1, 6, 6] and len(image["clean"]) == len(image["adversarial"]) == 36
    assert max(image["clean"] + image["adversarial"]) <= 255 and min(image["difference"]) >= -127


def test_large_images_are_thumbnailed(tmp_path):
    images = np.random.default_rng(0).uniform(0, 1, size=(2, 3, 70, 50)).astype(np.float32)
    thumb = robustness._thumbnail(torch.from_numpy(images[0]))
    assert thumb.shape == (3, 24, 17) and max(thumb.shape) <= robustness.THUMBNAIL


# ---------------------------------------------------------------- attacks and models


def test_every_attack_is_registered_and_none_needs_torchvision(tmp_path):
    import importlib.util
    import sys

    assert attacks.names() == ["FGSM", "PGD", "PGDL2", "CW", "DeepFool", "APGD", "FAB", "Square", "AutoAttack"]
    run_audit(load_config(tabular_spec(tmp_path, robustness_check={"attacks": ["APGD", "FAB"], "rows": 20})))
    assert "torchattacks" in sys.modules and "torchvision" not in sys.modules
    assert importlib.util.find_spec("torchvision") is None


def test_black_box_model_runs_square_by_default(project, tmp_path):
    spec = project.spec(model=project.model("onnx"), checks={
        "explanations": {"enabled": False}, "robustness": {"rows": 60, "epsilons": [0.5, 2.0]},
    })
    result = run_audit(load_config(spec))
    assert not result.failures
    assert {m.params["attack"] for m in robustness_of(result, "robust_accuracy")} == {"Square"}
    assert result.model["forward_batches"] == 1  # attack queries are not prediction batches


def test_decision_logits_argmax_is_the_audit_decision():
    """One logit, two logits, probabilities; a threshold other than 0.5; multiclass."""
    from audit.config import ModelSpec
    from audit.context import AuditData

    rng = np.random.default_rng(0)
    cases = [
        (rng.normal(0, 2, (400, 1)), "logits", 0.3, 1),
        (rng.normal(0, 2, (400, 2)), "logits", 0.7, 0),
        (rng.uniform(0.01, 0.99, (400, 1)), "probabilities", 0.4, 1),
        (rng.dirichlet([1, 1], 400), "probabilities", 0.6, 1),
        (rng.normal(0, 2, (400, 4)), "logits", 0.5, None),
    ]
    for outputs, kind, threshold, positive in cases:
        classes = ("a", "b") if positive is not None else ("a", "b", "c", "d")
        data = AuditData(labels=np.zeros(400, int), classes=classes, positive_index=positive, sensitive=pd.DataFrame(), features=None)
        spec = ModelSpec.model_construct(kind="onnx", output=kind, threshold=threshold)
        expected = predictions_from_outputs(outputs, data, spec).decisions
        wrapper = DecisionLogits(torch.nn.Identity(), probabilities=kind == "probabilities", positive_index=positive, threshold=threshold)
        found = wrapper(torch.from_numpy(outputs).float()).argmax(dim=1).numpy()
        assert (found == expected).mean() >= 0.995, (kind, threshold)  # float32 ties at the threshold aside


def test_autoattack_runs_its_substitute_on_tabular_data_and_says_so(tmp_path):
    spec = tabular_spec(tmp_path, robustness_check={"attacks": ["AutoAttack"], "rows": 40, "epsilons": [0.5]})
    result = run_audit(load_config(spec))
    assert not result.failures
    note = overall(result, "robust_accuracy", "AutoAttack")[0.5].note
    assert "APGD-CE, FAB and Square" in note and "four classes" in note


def test_standard_autoattack_on_the_ten_class_digits_model():
    spec = Path(__file__).resolve().parent.parent / "examples" / "digits_cnn.yaml"
    raw = yaml.safe_load(spec.read_text()) | {"thresholds": []}
    raw["checks"] = {"explanations": {"enabled": False}, "robustness": {"attacks": ["AutoAttack"], "rows": 12, "epsilons": [0.05, 0.2]}}
    config = config_from_dict(raw, base=spec.parent)
    config._source = spec
    result = run_audit(config)
    assert not result.failures
    robust = overall(result, "robust_accuracy", "AutoAttack")
    assert robust[0.2].value == 0.0 and robust[0.0].note is None  # the standard ensemble: no substitute note


def test_minimal_perturbation_attack_gives_a_median_and_a_curve(tmp_path):
    spec = image_spec(tmp_path, robustness_check={"attacks": ["CW"], "rows": 30, "epsilons": [0.1, 0.3, 1.0]})
    result = run_audit(load_config(spec))
    assert not result.failures
    median = next(m for m in robustness_of(result, "median_minimal_perturbation") if m.group is None)
    robust = overall(result, "robust_accuracy", "CW")
    assert "measured in the audit's norm" in robust[0.1].note
    if median.value is not None:  # broken at every epsilon its perturbation fits in
        assert robust[1.0].value <= 0.5 or median.value > 1.0
    else:  # undefined, and the code says why (the view reads the code, never the note)
        assert median.reason == Reason.NOT_BROKEN and median.status == "undefined"


def test_flags_fire_for_masked_gradients(tmp_path):
    # PGD from the clean input only: its random restarts (issue 12) step around this masking, so
    # with them its curve falls and not_falling rightly stays down; the large-epsilon run never restarts
    check = {"attacks": ["FGSM", "PGD", "Square"], "rows": 100, "epsilons": [0.25, 0.5, 1.0, 2.0], "restarts": 0}
    result = run_audit(load_config(tabular_spec(tmp_path, robustness_check=check, factory=MASKED_FACTORY)))
    flags = {(m.params["test"], m.params["attack"]): m for m in robustness_of(result, "gradient_masking_flag")}
    assert flags[("large_epsilon", "PGD")].value == 1.0
    assert flags[("black_box_stronger", "Square")].value == 1.0
    assert flags[("not_falling", "PGD")].value == 1.0
    assert flags[("not_falling", "Square")].value == 0.0
    assert any("possible gradient masking" in w for w in result.warnings)
    plain = run_audit(load_config(tabular_spec(tmp_path, robustness_check=check)))
    assert [m.params for m in robustness_of(plain, "gradient_masking_flag") if m.value] == []


# ---------------------------------------------------------------- bad input: exit 2, one line, no files


def _bad(spec: Path, out: Path, capsys, *needles: str) -> str:
    code = main(["run", str(spec), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    assert captured.out == ""
    assert not out.exists() or not list(out.iterdir())
    return captured.err


def test_gradient_attack_on_a_black_box_names_square(project, tmp_path, capsys):
    spec = project.spec(model=project.model("onnx"), checks={"robustness": {"attacks": ["FGSM", "Square"]}})
    _bad(spec, tmp_path / "out", capsys, "FGSM", "black box", "Square")


@pytest.mark.parametrize("epsilons, needle", [([-0.1, 0.2], "must be >= 0"), ([], "epsilons is empty")], ids=["negative", "empty"])
def test_bad_epsilon_lists(tmp_path, capsys, epsilons, needle):
    spec = tabular_spec(tmp_path, robustness_check={"epsilons": epsilons})
    _bad(spec, tmp_path / "out", capsys, "checks.robustness", "epsilons", needle)


def test_images_outside_the_declared_value_range(tmp_path, capsys):
    images = np.random.default_rng(0).uniform(0, 1.5, size=(20, 1, 6, 6)).astype(np.float32)
    spec = image_spec(tmp_path, images=images)
    _bad(spec, tmp_path / "out", capsys, "outside the declared value_range [0, 1]")


def test_unknown_attack_lists_the_valid_ones(tmp_path, capsys):
    spec = tabular_spec(tmp_path, robustness_check={"attacks": ["PGDD"]})
    line = _bad(spec, tmp_path / "out", capsys, "'PGDD'", "did you mean 'PGD'")
    assert ", ".join(attacks.names()) in line


def test_attack_of_the_other_norm_and_unknown_feature_names(tmp_path, capsys):
    _bad(tabular_spec(tmp_path, robustness_check={"attacks": ["PGD"], "norm": "L2"}), tmp_path / "a", capsys, "PGD is an Linf attack", "PGDL2")
    _bad(tabular_spec(tmp_path, robustness_check={"immutable": ["x9"]}), tmp_path / "b", capsys, "'x9' is not a model input", "x1, x2, x3")
    _bad(tabular_spec(tmp_path, robustness_check={"bounds": {"colour": [0, 1]}}), tmp_path / "c", capsys, "'colour' is categorical")
    _bad(image_spec(tmp_path, robustness_check={"immutable": ["x1"]}), tmp_path / "d", capsys, "are for tabular data")


def test_predictions_only_audits_skip_the_check_with_a_warning(tmp_path):
    frame = make_frame(n=100, seed=0)
    frame["decision"] = (frame.x1 > 1).astype(int)
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec = write_spec(tmp_path, "p.yaml", {
        "name": "predictions", "data": {"kind": "tabular", "path": "data.csv", "label": {"column": "label", "classes": [0, 1]}},
        "model": {"kind": "predictions", "decision_column": "decision"},
        "checks": {"explanations": {"enabled": False}},
    })
    result = run_audit(load_config(spec))
    assert not robustness_of(result) and result.skipped == {"robustness": Reason.NO_MODEL} and result.warnings
    assert AuditResult.from_dict(json.loads(result.to_json())).skipped == result.skipped


def test_missing_torchattacks_is_one_line_before_any_output(project, tmp_path, capsys, monkeypatch):
    """torchattacks is installed apart (--no-deps); without it the audit stops at once, saying how to fix it."""
    import importlib.util

    from audit.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchattacks" else real(name, *a))
    out = tmp_path / "out"
    code = main(["run", str(project.spec()), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "torchattacks" in err and "pip install --no-deps torchattacks==3.5.1" in err
    assert not out.exists()  # no empty folder left behind either (issue 18)
