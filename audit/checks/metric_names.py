"""The catalogues of the checks that need torch, importable without it.

`rai-audit gate` and `compare` read every check's catalogue (names, directions, glossary);
importing audit.checks.explanations or .robustness for them would load torch, captum and shap
(seconds). Each of those modules takes its CATALOGUE from here.
"""

from audit.catalogue import Metric

EXPLANATIONS_CATALOGUE = (
    Metric("rows_explained", "rows explained", unit="count", describes=("output",)),
    Metric("feature_importance", "mean |attribution|", unit="attribution"),
    Metric("group_feature_importance", "mean |attribution| in a group", unit="attribution"),
    Metric("group_importance_difference", "difference in mean |attribution| from the other rows", better="lower",
           unit="attribution"),
    Metric("group_attribution_difference", "difference in mean signed attribution from the other rows", better="lower",
           unit="attribution"),
    Metric("sensitive_reliance", "share of attribution on a sensitive column"),
    Metric("proxy_association", "association of a feature with a sensitive column", unit="score"),
    Metric("proxy_reliance", "share of attribution on a proxy"),
    Metric("sensitive_and_proxy_reliance", "share of attribution on a sensitive column and its proxies"),
    Metric("completeness_gap", "completeness gap", "How far a row's attributions fail to add up to the change in output "
           "they explain, as a share of that change; 0 for exact Shapley values, small for Integrated Gradients with "
           "enough steps."),
    Metric("infidelity", "infidelity", "Set random halves of the features to the baseline input and compare the change "
           "in output with the sum of the removed features' attributions: 0 means the attributions predict every "
           "removal, 1 means they predict nothing."),
    Metric("sensitivity", "sensitivity", "The largest relative change of a row's attributions when its numeric inputs "
           "are nudged slightly; large values mean fragile explanations.", unit="score"),
    Metric("method_agreement", "method agreement", "Spearman rank correlation of two methods' feature attributions on "
           "the same rows (1: same order), and the share of their top features they have in common.", unit="score"),
    Metric("randomization_similarity", "similarity to a randomised model's attributions", unit="score"),
    Metric("local_attribution", "attribution of one feature in one row", unit="attribution", describes=("value",)),
    Metric("local_output", "model output for one row", unit="score", describes=("base_value", "probability")),
    Metric("attribution_map", "attribution map of one image", unit="attribution",
           describes=("base_value", "output", "probability")),  # the map itself is an artefact
    Metric("group_attribution_map", "mean attribution map of a group", unit="attribution"),
)

ROBUSTNESS_CATALOGUE = (
    Metric("robust_accuracy", "robust accuracy", "The share of examples the model still classifies correctly after an "
           "attacker changes each one by at most epsilon; at epsilon 0 it is the ordinary accuracy.", better="higher",
           denominator="rows attacked"),
    Metric("attack_success_rate", "attack success rate", "Of the examples the model classifies correctly, the share the "
           "attack makes it get wrong.", better="lower", denominator="correctly classified rows"),
    Metric("median_minimal_perturbation", "median minimal perturbation", "Half of the correctly classified examples flip "
           "under a change this small or smaller (the smallest change the attack found; the true minimum may be smaller "
           "still).", unit="distance"),
    Metric("robustness_gap", "robustness gap between groups", unit="difference",
           describes=("most_fragile_group", "least_fragile_group")),
    Metric("large_epsilon_accuracy", "accuracy under an unbounded attack", denominator="rows attacked"),
    Metric("gradient_masking_flag", "gradient masking flag", unit="flag"),
    Metric("adversarial_example", "size of an adversarial example's perturbation", unit="distance"),
)

EXPLANATIONS = tuple(m.name for m in EXPLANATIONS_CATALOGUE)
ROBUSTNESS = tuple(m.name for m in ROBUSTNESS_CATALOGUE)
