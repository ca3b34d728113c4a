"""The explicit registry of attribution methods, by the name a spec uses.

One :class:`Method` per name: the function, the library it comes from, and what it needs
(gradients; forward hooks on the layers; a cap on rows because it is costly; at most
:data:`~audit.explain.exact.MAX_GROUPS` groups). :func:`get` refuses an unknown name with the
list of valid ones; :func:`problem` says why a method cannot run on a given model or data and
which methods can. Nothing here imports Captum, SHAP or LIME.

Text methods are entries too (data kind ``text``): their ``text_function`` takes a
:class:`~audit.explain.text_methods.TextRequest` (tokenized texts and the text model) and returns
an :class:`Attribution` per token position; ``embedding_layer`` says a method needs the
model's token embedding layer (Captum's layer methods), which a black box does not expose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from audit.explain import captum_methods, exact, lime_methods, shap_methods, text_methods
from audit.explain.attribution import Attribution
from audit.explain.model import ExplainedModel, Request
from audit.registry import Registry

TABULAR, IMAGE, TEXT = "tabular", "image", "text"


@dataclass(frozen=True)
class Method:
    name: str
    function: Callable[[Request], Attribution]
    library: str
    summary: str
    gradients: bool = False
    hooks: bool = False
    costly: bool = False
    data: tuple[str, ...] = (TABULAR, IMAGE)
    image_function: Callable[[Request], Attribution] | None = None
    text_function: Callable[[text_methods.TextRequest], Attribution] | None = None
    embedding_layer: bool = False
    signed: bool = True
    max_groups: int | None = None
    reference: str = "baseline"  # what the attributions are measured from: baseline, background or none

    def function_for(self, kind: str) -> Callable:
        if kind == TEXT:
            return self.text_function
        return self.image_function if kind == IMAGE and self.image_function is not None else self.function


def _text_only(request: Request) -> Attribution:
    raise TypeError("a text method takes a TextRequest (audit.text.attributions.explain)")


METHODS: Registry[Method] = Registry("method", field="checks.explanations.methods")
for _method in (
    Method("IntegratedGradients", captum_methods.integrated_gradients, "rai-audit, Captum's rule",
           "path integral of gradients from the baseline", gradients=True),
    Method("DeepLift", captum_methods.deep_lift, "Captum", "DeepLift rescale rule from the baseline",
           gradients=True, hooks=True),
    Method("GradientShap", captum_methods.gradient_shap, "Captum",
           "expected gradients over background rows", gradients=True, reference="background"),
    Method("Saliency", captum_methods.saliency, "Captum", "absolute input gradient", gradients=True, signed=False,
           reference="none"),
    Method("InputXGradient", captum_methods.input_x_gradient, "Captum", "input times gradient", gradients=True,
           reference="none"),
    Method("FeatureAblation", captum_methods.feature_ablation, "Captum",
           "each source column (image patch) set to the baseline"),
    Method("Occlusion", captum_methods.occlusion, "Captum", "a sliding window set to the baseline", data=(IMAGE,)),
    Method("DeepExplainer", shap_methods.deep_explainer, "SHAP", "DeepSHAP over background rows",
           gradients=True, hooks=True, reference="background"),
    Method("GradientExplainer", shap_methods.gradient_explainer, "SHAP",
           "expected gradients over background rows", gradients=True, reference="background"),
    Method("KernelExplainer", shap_methods.kernel_explainer, "SHAP",
           "KernelSHAP weighted linear fit over coalitions of columns", costly=True, reference="background"),
    Method("PermutationExplainer", shap_methods.permutation_explainer, "SHAP",
           "Shapley values from permutations of columns", costly=True, reference="background"),
    Method("ExactShapley", exact.exact_shapley, "rai-audit",
           "exact Shapley values by enumeration over source columns", costly=True, max_groups=exact.MAX_GROUPS,
           reference="background"),
    Method("LIME", lime_methods.lime_tabular, "LIME", "local linear surrogate", costly=True,
           data=(TABULAR, IMAGE, TEXT), image_function=lime_methods.lime_image,
           text_function=text_methods.lime),
    Method("LayerIntegratedGradients", _text_only, "Captum",
           "Integrated Gradients on the token embedding layer from a padding baseline", gradients=True,
           data=(TEXT,), text_function=text_methods.layer_integrated_gradients, embedding_layer=True,
           reference="padding"),
    Method("LayerGradientXActivation", _text_only, "Captum", "gradient times the token embeddings",
           gradients=True, data=(TEXT,), text_function=text_methods.layer_gradient_x_activation,
           embedding_layer=True, reference="none"),
    Method("Partition", _text_only, "SHAP", "Owen values over a hierarchy of words (text masker)", costly=True,
           data=(TEXT,), text_function=text_methods.partition, reference="masked text"),
):
    METHODS.add(_method)


def names() -> list[str]:
    return METHODS.names()


def get(name: str) -> Method:
    return METHODS.lookup(name)


def problem(method: Method, *, kind: str, model: ExplainedModel, groups: int) -> str | None:
    """Why ``method`` cannot run here, or None if it can."""
    if kind not in method.data:
        return f"{method.name} works on {' and '.join(method.data)} data, not {kind} data"
    if method.gradients and not model.differentiable:
        return f"{method.name} needs gradients, but a {model.adapter.kind} model is a black box"
    if method.embedding_layer and getattr(model.adapter, "embeddings", None) is None:
        return (f"{method.name} needs the model's token embedding layer (an nn.Embedding), which this "
                f"{model.adapter.kind} model does not expose")
    if method.hooks and not model.eager:
        return (f"{method.name} sets forward hooks on the model's layers, which a {model.adapter.kind} model "
                "does not allow (it needs a state_dict with its factory, or a pickled module)")
    if method.max_groups is not None and groups > method.max_groups:
        return f"{method.name} enumerates at most {method.max_groups} groups; this input has {groups}"
    return None


def usable(*, kind: str, model: ExplainedModel, groups: int) -> list[str]:
    return [name for name, m in METHODS.items() if problem(m, kind=kind, model=model, groups=groups) is None]


BLACK_BOX_MANY_GROUPS = "PermutationExplainer"
"""The model-agnostic Shapley method a black box gets when its groups are too many to enumerate."""


def defaults(*, kind: str, model: ExplainedModel, groups: int) -> list[str]:
    """The methods used when the spec names none: a fast one and an exact or model-agnostic check on it."""
    few = groups <= exact.MAX_GROUPS
    if kind == TEXT:
        gradients = model.differentiable and getattr(model.adapter, "embeddings", None) is not None
        return ["LayerIntegratedGradients"] if gradients else ["Partition", "LIME"]
    if kind == IMAGE:
        return ["IntegratedGradients", "Occlusion"] if model.differentiable else ["Occlusion", "KernelExplainer"]
    if model.differentiable:
        return ["IntegratedGradients", "ExactShapley" if few else "GradientShap"]
    # a black box past exact enumeration: PermutationExplainer, whose cost grows with the number of
    # groups (max(500, 2g+1) evaluations a row) where KernelExplainer's starts at 2,048 coalitions
    return ["ExactShapley" if few else BLACK_BOX_MANY_GROUPS, "FeatureAblation"]


def attribute(name: str, request: Request) -> Attribution:
    """Run a method; a binary model is explained toward its positive class once, then mirrored.

    For a binary model the score of the other class is ``offset - score`` (see
    :mod:`audit.explain.model`), so every method's attributions toward it are the negated
    attributions toward the positive class (Saliency's absolute gradients are unchanged):
    one run serves rows of both classes.
    """
    method = get(name)
    model = request.model
    if request.kind == TEXT or not model.binary:  # text methods explain the predicted class itself
        return _run(method, request)
    positive = torch.full_like(request.targets, model.positive_index)
    found = _run(method, replace(request, targets=positive))
    mirrored = request.targets.numpy() != model.positive_index
    sign = np.where(mirrored, -1.0, 1.0).reshape((-1,) + (1,) * (found.values.ndim - 1))
    offset = model.mirror_offset
    return replace(
        found,
        values=found.values * sign if method.signed else found.values,
        outputs=np.where(mirrored, offset - found.outputs, found.outputs),
        base_values=np.where(mirrored, offset - found.base_values, found.base_values),
        targets=request.targets.numpy().copy(),
    )


def _run(method: Method, request: Request) -> Attribution:
    """One method, seeded by the request: the same request gives the same values, whichever ran before.

    GradientShap (torch) and KernelSHAP (NumPy's global generator) draw from global random state;
    seeding each call keeps a method's numbers independent of the other methods in the spec.
    """
    numpy_state = np.random.get_state()
    # gradients even when a caller (Captum's sensitivity metric) runs under torch.no_grad
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(request.seed)
        np.random.seed(request.seed % 2**32)
        try:
            return method.function_for(request.kind)(request)
        finally:
            np.random.set_state(numpy_state)
