"""The metric names of the checks that need torch, importable without it.

`rai-audit gate` and `compare` refuse unknown metric names, so they need every check's names;
importing audit.checks.explanations or .robustness for them would load torch, captum and shap
(seconds). Each of those modules takes its METRICS from here.
"""

EXPLANATIONS = (
    "rows_explained", "feature_importance", "group_feature_importance", "group_importance_difference",
    "group_attribution_difference", "sensitive_reliance", "proxy_association", "proxy_reliance",
    "sensitive_and_proxy_reliance", "completeness_gap", "infidelity", "sensitivity", "method_agreement",
    "randomization_similarity", "local_attribution", "local_output", "attribution_map", "group_attribution_map",
)
ROBUSTNESS = (
    "robust_accuracy", "attack_success_rate", "median_minimal_perturbation", "robustness_gap",
    "large_epsilon_accuracy", "gradient_masking_flag", "adversarial_example",
)
