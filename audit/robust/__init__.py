"""Adversarial robustness: the pieces behind the robustness check.

- :mod:`audit.robust.wrappers`: the audited model as torchattacks needs it (logits whose argmax
  is the audit's decision; a torch module over a black box), and attack-time torch hygiene;
- :mod:`audit.robust.domain`: where an attack may move each input (images: the value range;
  tabular data: bounds, immutable, integer and one-hot features) and the map between the
  input space and the attack's [0, 1] space, with the final projection;
- :mod:`audit.robust.sweep`: the epsilon sweep, minimal-perturbation runs, per-point outcomes;
- :mod:`audit.robust.summary`: robust accuracy, success rates, medians and their bootstrap
  intervals, overall and per group;
- :mod:`audit.robust.sanity`: the gradient-masking flags.
"""
