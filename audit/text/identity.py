"""Identity-term matching: whole words, case-insensitive, one pattern per group.

A term matches where it is not part of a longer word (``he`` matches "He said" and "he's"
but not "the" or "help"); a term may be several words ("my wife").
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MENTIONS_PREFIX = "mentions:"
YES, NO = "yes", "no"


def term_pattern(terms: list[str]) -> re.Pattern:
    """One regex matching any of ``terms`` as whole words, longest first, case-insensitive."""
    ordered = sorted({t.strip() for t in terms}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(map(re.escape, term.split())) for term in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def mentions(texts: list[str], groups: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Per identity group, a boolean per text: does it mention any of the group's terms."""
    out = {}
    for group, terms in groups.items():
        pattern = term_pattern(terms)
        out[group] = np.fromiter((pattern.search(text) is not None for text in texts), dtype=bool, count=len(texts))
    return out


def mention_columns(found: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sensitive columns ``mentions:GROUP`` (yes / no) for groups mentioned at least once."""
    columns = {
        f"{MENTIONS_PREFIX}{group}": pd.Categorical(np.where(hits, YES, NO), categories=[NO, YES])
        for group, hits in found.items()
        if hits.any()
    }
    return pd.DataFrame(columns)
