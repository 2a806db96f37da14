"""Adverse events of special interest (AESI) for dupilumab: a suggestion from the term.

The NS-DUPI protocol lists the AESI of dupilumab: conjunctivitis / keratitis / blepharitis,
injection-site reaction, oral herpes / HSV infection including eczema herpeticum, eosinophilia,
hypersensitivity / serum sickness, and skin infections. The study file's code list ``AESI`` has
one code per entry.

:func:`suggest_aesi` reads the verbatim term of an adverse event and suggests the category whose
keyword it contains. It is only a suggestion, shown beside the AE: the investigator's answer on
the AE form (``ae_aesi``, ``ae_aesi_category``) always wins, in either direction.

Matching
--------
The term is lower-cased and stripped of accents (``Kératite`` → ``keratite``); a keyword matches
when it occurs in the term as written below (a stem such as ``conjonctiv`` matches
``conjonctivite``). Categories are tried in the order of :data:`KEYWORDS`, so that "eczema
herpeticum" is herpes, not a skin infection. A term containing one of :data:`EXCLUSIONS`
(``zoster``: varicella-zoster is not HSV) is never suggested as herpes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["EXCLUSIONS", "KEYWORDS", "AesiSuggestion", "normalized", "suggest_aesi"]

#: Keywords (accent-free, lower case; English and French) per AESI code, in matching order.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "conjunctivitis": (
        "conjunctivit",
        "conjonctivit",
        "keratit",
        "keratoconjunctivit",
        "blepharit",
    ),
    "injection_site_reaction": (
        "injection site",
        "injection-site",
        "point d'injection",
        "site d'injection",
        "point d injection",
        "site d injection",
    ),
    "herpes": (
        "herpe",
        "hsv",
        "kaposi",
        "cold sore",
        "bouton de fievre",
    ),
    "eosinophilia": ("eosinophil",),
    "hypersensitivity": (
        "hypersensitiv",
        "hypersensibilit",
        "serum sickness",
        "maladie serique",
        "anaphyla",
        "angioedema",
        "angio-oedem",
        "angioedem",
    ),
    "skin_infection": (
        "skin infection",
        "infection cutanee",
        "infection de la peau",
        "impetigo",
        "cellulitis",
        "cellulite infectieuse",
        "erysipel",
        "folliculit",
        "furuncl",
        "furoncl",
        "abscess",
        "abces",
        "staphylococc",
        "molluscum",
        "wart",
        "verrue",
    ),
}

#: Words that veto one category's suggestion.
EXCLUSIONS: dict[str, tuple[str, ...]] = {"herpes": ("zoster", "zona")}


@dataclass(frozen=True)
class AesiSuggestion:
    """The suggested AESI code and the keyword that matched (both ``None``: not an AESI)."""

    category: str | None
    keyword: str | None = None

    def __bool__(self) -> bool:
        return self.category is not None


def normalized(term: str) -> str:
    """Lower case, accents removed, runs of white space collapsed."""
    decomposed = unicodedata.normalize("NFKD", term.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.replace("’", "'").split())


def suggest_aesi(term: str | None) -> AesiSuggestion:
    """The AESI category the verbatim ``term`` suggests, by the keyword list.

    >>> suggest_aesi("Conjonctivite bilatérale").category
    'conjunctivitis'
    >>> suggest_aesi("Eczema herpeticum").category
    'herpes'
    >>> suggest_aesi("Herpes zoster").category is None
    True
    >>> bool(suggest_aesi("Headache"))
    False
    """
    if not term:
        return AesiSuggestion(None)
    text = normalized(term)
    for category, keywords in KEYWORDS.items():
        if any(word in text for word in EXCLUSIONS.get(category, ())):
            continue
        for keyword in keywords:
            if keyword in text:
                return AesiSuggestion(category, keyword)
    return AesiSuggestion(None)
