"""AESI suggestion from the verbatim term (keyword list of trialdesk.safety.aesi)."""

from __future__ import annotations

import pytest

from trialdesk.safety.aesi import KEYWORDS, suggest_aesi


@pytest.mark.parametrize(
    ("term", "category"),
    [
        ("Allergic conjunctivitis", "conjunctivitis"),
        ("Conjonctivite bilatérale", "conjunctivitis"),
        ("KÉRATITE", "conjunctivitis"),
        ("Blepharitis", "conjunctivitis"),
        ("Injection site erythema", "injection_site_reaction"),
        ("Réaction au point d'injection", "injection_site_reaction"),
        ("Oral herpes", "herpes"),
        ("HSV-1 infection", "herpes"),
        ("Eczema herpeticum", "herpes"),
        ("Pustulose varioliforme de Kaposi-Juliusberg", "herpes"),
        ("Hypereosinophilia", "eosinophilia"),
        ("Hyperéosinophilie", "eosinophilia"),
        ("Serum sickness", "hypersensitivity"),
        ("Anaphylactic reaction", "hypersensitivity"),
        ("Skin infection", "skin_infection"),
        ("Impétigo", "skin_infection"),
        ("Infection cutanée à staphylocoque", "skin_infection"),
        ("Cellulitis of the leg", "skin_infection"),
        ("Headache", None),
        ("Herpes zoster", None),
        ("Zona intercostal", None),
        ("", None),
    ],
)
def test_suggestion_by_keyword(term, category):
    assert suggest_aesi(term).category == category


def test_the_keyword_that_matched_is_given():
    suggestion = suggest_aesi("Eczema herpeticum of the face")
    assert suggestion.keyword == "herpe"
    assert bool(suggestion)


def test_every_aesi_code_of_the_study_file_has_keywords(studies_dir):
    from trialdesk.protocol import load_study

    definition = load_study(studies_dir / "ns-dupi")
    assert set(definition.codelist("AESI").codes) == set(KEYWORDS)
