"""The contract every registered entry passes: each check, attribution method and attack.

Parametrised over the registries themselves, so an entry cannot be registered without running
here: a check's measurements are catalogued and survive the JSON round trip; a method's
attributions are shaped like its input, finite, reproducible under a seed, leave the input
untouched and (for additive methods that are exact) add up; an attack stays in the attack space
and within its budget. Numbers are checked against references in the per-family test files;
this suite checks the shape every entry promises.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from audit import attacks, checks, load_config, run_audit
from audit.catalogue import catalogue
from audit.explain import registry
from audit.explain.attribution import FeatureLayout
from audit.results import AuditResult, Reason
from tests.test_explain_methods import adapter_for, network, request_for, tabular_layout, tabular_rows

EXACT = {"ExactShapley", "KernelExplainer", "PermutationExplainer", "IntegratedGradients", "DeepLift", "DeepExplainer"}
"""Methods whose attributions add up to output minus reference (to their own tolerance) on these small inputs."""


# ---------------------------------------------------------------- checks


@pytest.fixture(scope="module")
def audits(tmp_path_factory) -> dict[str, AuditResult]:
    """The small fixtures: the test project with every default check, a hiring tool for LL144, and the
    tiny text project (a one-layer BERT on 90 short texts) for the text checks."""
    from tests.conftest import Project
    from tests.test_ll144 import _project
    from tests.text_fixtures import make_project

    project = Project(tmp_path_factory.mktemp("contract"))
    checks_section = {"explanations": {"methods": ["IntegratedGradients"], "rows": 20},
                      "robustness": {"rows": 20, "epsilons": [0.1], "attacks": ["FGSM"]}}
    return {"default": run_audit(load_config(project.spec(checks=checks_section))),
            "ll144": run_audit(load_config(_project(tmp_path_factory.mktemp("ll144")))),
            "text": run_audit(load_config(make_project(tmp_path_factory.mktemp("text"))))}


@pytest.mark.parametrize("record", checks.records(), ids=lambda r: r.name)
def test_every_check_emits_catalogued_measurements_that_round_trip(record, audits):
    audited = audits["text"] if record.name in checks.TEXT_ONLY else audits.get(record.name, audits["default"])
    assert record.catalogue, f"{record.name} catalogues no metric"
    assert record.name in audited.checks_run and not audited.failures
    emitted = audited.select(record.name)
    assert emitted, f"{record.name} measured nothing on the fixture"
    for m in emitted:
        assert m.metric in record.metrics, m
        assert m.status in (None, "undefined", "insufficient")
        assert (m.value is None) == (m.status == "undefined"), m
        assert (m.reason is None) == (m.status is None), m  # undefined and insufficient say why, as a code
        assert m.reason is None or Reason(m.reason), m
        assert all(isinstance(k, str) for k in m.params), m
    again = AuditResult.from_dict(json.loads(audited.to_json())).select(record.name)
    written = json.loads(json.dumps([m.to_dict() for m in emitted], default=list))
    assert [m.to_dict() for m in again] == written


def test_every_catalogued_metric_has_a_label_a_unit_and_known_rates():
    for name in catalogue().names():
        metric = catalogue().get(name)
        assert metric.label and metric.unit, metric
        for rate in metric.compares:  # a disparity compares catalogued rates
            assert catalogue().get(rate).denominator, (metric, rate)


# ---------------------------------------------------------------- attribution methods


def _image_request(seed: int = 0):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(2 * 36, 4))
    images = torch.rand(3, 1, 6, 6)
    layout = FeatureLayout.image((1, 6, 6), patch=2)
    return request_for(adapter_for(module), images, [0, 1, 3], layout=layout, background=torch.rand(4, 1, 6, 6),
                       classes=4, steps=20)


def _tabular_request():
    module = network(6, 3, seed=31, activation=torch.nn.ReLU)
    return request_for(adapter_for(module), tabular_rows(4, seed=32), [0, 1, 2, 1], layout=tabular_layout(),
                       background=tabular_rows(12, seed=33), classes=3, steps=50)


CASES = [(name, kind) for name, method in registry.METHODS.items() for kind in method.data if kind != "text"]
TEXT_CASES = [name for name, method in registry.METHODS.items() if "text" in method.data]


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_every_method_explains_in_the_shape_of_its_input(name, kind):
    request = _tabular_request() if kind == "tabular" else _image_request()
    request = replace(request, samples=60)
    before = request.inputs.clone()
    found = registry.attribute(name, request)
    n = len(request.inputs)
    assert found.values.shape == tuple(request.inputs.shape)
    assert found.outputs.shape == (n,) and found.base_values.shape == (n,)
    assert np.isfinite(found.values).all() and np.isfinite(found.outputs).all()
    assert found.targets.tolist() == request.targets.tolist()
    assert torch.equal(request.inputs, before), "a method changed its input"
    with torch.no_grad():
        outputs = request.model.adapter.forward(request.inputs)
    np.testing.assert_allclose(found.outputs, np.asarray(outputs)[np.arange(n), request.targets.numpy()], atol=1e-4)
    again = registry.attribute(name, request)
    np.testing.assert_allclose(again.values, found.values, atol=1e-6)  # reproducible under the request's seed
    if name in EXACT and kind == "tabular":
        np.testing.assert_allclose(found.values.sum(axis=1), found.outputs - found.base_values, atol=5e-3)


@pytest.fixture(scope="module")
def text_context(tmp_path_factory):
    from audit.runner import build_context
    from tests.text_fixtures import make_project

    return build_context(load_config(make_project(tmp_path_factory.mktemp("text_methods"))))


@pytest.mark.parametrize("name", TEXT_CASES)
def test_every_text_method_explains_per_token_position(name, text_context):
    """A text method's values are per token, zero at padding, finite and reproducible; outputs are the model's."""
    from audit.text import attributions

    ctx = text_context
    rows = np.array([0, 3, 5])
    texts = [ctx.data.frame["text"][r] for r in rows]
    batch = attributions.text_batch(ctx.model, texts, rows, ctx.predictions.decisions[rows])
    before = batch.ids.clone()
    found = attributions.explain(ctx.model, name, batch, steps=8, seed=0)
    assert found.values.shape == tuple(batch.ids.shape) and found.outputs.shape == (3,)
    assert np.isfinite(found.values).all() and (found.values[batch.mask.numpy() == 0] == 0).all()
    assert found.targets.tolist() == batch.targets.tolist() and torch.equal(batch.ids, before)
    probability = found.settings.get("output") == "probability"
    expected = (ctx.predictions.probabilities if probability else ctx.model.outputs(batch.ids, batch_size=8))
    np.testing.assert_allclose(found.outputs, np.asarray(expected)[rows if probability else np.arange(3),
                                                                    batch.targets.numpy()], atol=1e-5)
    again = attributions.explain(ctx.model, name, batch, steps=8, seed=0)
    np.testing.assert_allclose(again.values, found.values, atol=1e-9)
    assert registry.problem(registry.get(name), kind="text", model=attributions._explained(ctx.model), groups=0) is None


def test_gradient_explainer_estimates_expected_gradients():
    """SHAP's GradientExplainer against expected gradients computed here by Monte Carlo over the same kind of path."""
    request = replace(_tabular_request(), samples=2000)
    found = registry.attribute("GradientExplainer", request)
    # expected gradients add up to output minus the background mean output, up to sampling error
    with torch.no_grad():
        logits = request.model.adapter.forward(request.background)
    mean = np.asarray(logits)[:, request.targets.numpy()].mean(axis=0)
    np.testing.assert_allclose(found.base_values, mean, atol=1e-5)
    np.testing.assert_allclose(found.values.sum(axis=1), found.outputs - found.base_values, atol=0.1)


# ---------------------------------------------------------------- attacks


ATTACK_CASES = [(name, norm) for name, attack in attacks.ATTACKS.items() for norm in attack.norms]


@pytest.mark.parametrize(("name", "norm"), ATTACK_CASES, ids=[f"{n}-{m}" for n, m in ATTACK_CASES])
def test_every_attack_stays_in_the_attack_space_and_its_budget(name, norm):
    pytest.importorskip("torchattacks")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).eval()
    inputs = torch.rand(6, 1, 8, 8)  # Square's L2 search needs images of 5 pixels a side or more
    labels = model(inputs).argmax(dim=1).detach()
    eps = 0.1 if norm == "Linf" else 0.5
    settings = attacks.AttackSettings(eps=eps, step_size=eps / 4, steps=10, norm=norm, seed=0, classes=4, images=True)
    attack = attacks.get(name)
    before = inputs.clone()
    adversarial = attacks.perturb(attack, model, inputs, labels, settings)
    assert adversarial.shape == inputs.shape and torch.equal(inputs, before)
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    if not attack.minimal:  # a minimal-perturbation attack is measured, not bounded
        moved = (adversarial - inputs).flatten(1)
        size = moved.abs().max(dim=1).values if norm == "Linf" else moved.norm(dim=1)
        assert float(size.max()) <= eps * (1 + 1e-4) + 1e-6
    again = attacks.perturb(attack, model, inputs, labels, settings)
    assert torch.equal(adversarial, again), "not reproducible under the seed"
