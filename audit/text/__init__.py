"""Text classifiers as a data kind: tokenization, data and model loading, and the text checks.

``tokens``: the model's own tokenizer, read offline. ``data``: texts, labels, metadata and
identity-mention columns as one :class:`~audit.context.AuditData`. ``model``: Hugging Face
sequence classifiers and modules taking token ids and an attention mask, predicted in batches
sorted by length. ``identity``: whole-word term matching. ``bias``: Borkan et al. 2019 bias
AUCs. ``counterfactual``: identity swaps (Prabhakaran et al. 2019). ``attributions`` and
``attacks``: token attributions and greedy character and word attacks.
"""
