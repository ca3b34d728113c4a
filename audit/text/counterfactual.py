"""Counterfactual identity swaps: Perturbation Sensitivity Analysis (Prabhakaran et al. 2019).

A swap declares pairs of terms, ``[term of the first side, its partner]``; each direction
rewrites every text mentioning a term of one side, replacing each such term (whole word,
case-insensitive, its capitalisation kept) by its partner, and re-scores the text. Terms of
the other side in the same text are left as they are. What changes is measured per direction:
the mean signed and absolute change in the positive-class score, the largest change, and the
share of decisions that flip.

Grammar: a term with several partners (``her`` is the partner of both ``his`` and ``him``)
takes the first partner declared when the next word is a content word ("her car" -> "his car")
and the last one otherwise, before punctuation, the end of the text or a function word ("told
her." -> "told him.", "gave her the keys" -> "gave him the keys"). This is the English
possessive / object rule; it is a heuristic, and the report shows the rewritten texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.config import SwapSpec
from audit.text.identity import term_pattern

FUNCTION_WORDS = frozenset(
    "a an the to and or but of in on at for with from by as that this these those than then so if "
    "is was are were be been am up out off down over about into onto after before when while because "
    "too very really just also again once now not no yes".split()
)
_NEXT_WORD = re.compile(r"\s*([A-Za-z']+)?")


@dataclass(frozen=True)
class Direction:
    """One direction of a swap: source term (lower case) -> its partners, in declared order."""

    name: str
    targets: dict[str, tuple[str, ...]]

    @property
    def pattern(self) -> re.Pattern:
        return term_pattern(list(self.targets))

    def rewrite(self, text: str) -> str:
        return self.pattern.sub(lambda match: self._partner(match, text), text)

    def _partner(self, match: re.Match, text: str) -> str:
        options = self.targets[" ".join(match.group(0).lower().split())]
        chosen = options[0]
        if len(options) > 1:
            following = _NEXT_WORD.match(text, match.end()).group(1)
            content_word = following is not None and following.lower() not in FUNCTION_WORDS
            chosen = options[0] if content_word else options[-1]
        return _same_case(match.group(0), chosen)


def _same_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def directions(spec: SwapSpec) -> list[Direction]:
    """Both directions of a swap: first side -> second, and second -> first."""
    first, second = spec.groups
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for a, b in spec.pairs:
        a, b = a.strip().lower(), b.strip().lower()
        _add(forward, a, b)
        _add(backward, b, a)
    return [
        Direction(f"{first}->{second}", {k: tuple(v) for k, v in forward.items()}),
        Direction(f"{second}->{first}", {k: tuple(v) for k, v in backward.items()}),
    ]


def _add(mapping: dict[str, list[str]], term: str, partner: str) -> None:
    partners = mapping.setdefault(term, [])
    if partner not in partners:
        partners.append(partner)
