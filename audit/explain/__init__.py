"""Attributions from Captum, SHAP, LIME and exact enumeration, behind one Attribution type.

``registry`` names every method; ``model`` holds the one explained output per class and the
torch hygiene around it; ``trust`` measures how far to trust the values; ``aggregate`` turns
attributions into global, per-group and local figures with bootstrap intervals.
Libraries are imported inside the functions that use them.
"""

from audit.explain.attribution import Attribution, FeatureLayout
from audit.explain.model import ExplainedModel, Request
from audit.explain.registry import METHODS, attribute, names

__all__ = ["Attribution", "ExplainedModel", "FeatureLayout", "METHODS", "Request", "attribute", "names"]
