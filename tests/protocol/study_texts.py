"""The texts of a minimal valid study (``study.yaml`` and its included ``forms.yaml``)."""

from __future__ import annotations

MINI_STUDY = """\
id: mini
version: "1.0"
title: A minimal randomized study
kind: randomized
sponsor:
  name: Test sponsor
include:
  - forms.yaml
arms:
  - code: A
    name: {en: "Active", fr: "Actif"}
    ratio: 2
  - code: P
    name: {en: "Placebo", fr: "Placebo"}
    ratio: 1
randomization:
  block_sizes: [3, 6]
  stratify_by: [site]
sites:
  - code: S1
    name: Site one
    city: Town
strata:
  - code: site
    label: {en: "Site", fr: "Centre"}
    source: site
visits:
  - code: D0
    label: {en: "Day 0", fr: "Jour 0"}
    day: 0
  - code: W2
    label: {en: "Week 2", fr: "Semaine 2"}
    day: 14
    window_before: 3
    window_after: 3
  - code: W4
    label: {en: "Week 4", fr: "Semaine 4"}
    day: 28
    window_before: 3
    window_after: 3
screening_form: SCR
schedule:
  D0: [VITALS, DRUG]
  W2: [VITALS, DRUG]
  W4: [VITALS]
dosing:
  last_dosing_week: 2
  unit: {en: "syringe", fr: "seringue"}
  form: DRUG
  units_per_visit: {D0: 2, W2: 1}
codelists:
  - code: SEX
    items:
      - {code: F, label: {en: "Female", fr: "Femme"}}
      - {code: M, label: {en: "Male", fr: "Homme"}}
settings:
  heavy_kg:
    value: 150
    label: {en: "Heavy weight", fr: "Poids élevé"}
eligibility:
  - id: INC01
    kind: inclusion
    text: {en: "Adult", fr: "Adulte"}
    condition: age_years(birth_date, screening_date) >= 18
  - id: INC02
    kind: inclusion
    text: {en: "Score of 5 or more", fr: "Score de 5 ou plus"}
    condition: score >= 5
  - id: EXC01
    kind: exclusion
    text: {en: "Pregnant", fr: "Enceinte"}
    applies_when: sex == "F"
    condition: pregnant
"""

MINI_FORMS = """\
forms:
  - code: SCR
    label: {en: "Screening", fr: "Sélection"}
    items:
      - code: screening_date
        label: {en: "Screening date", fr: "Date de sélection"}
        data_type: date
        required: true
      - code: birth_date
        label: {en: "Date of birth", fr: "Date de naissance"}
        data_type: date
      - code: sex
        label: {en: "Sex", fr: "Sexe"}
        data_type: choice
        codelist: SEX
      - code: score
        label: {en: "Score", fr: "Score"}
        data_type: integer
        min: 0
        max: 10
      - code: pregnant
        label: {en: "Pregnant", fr: "Enceinte"}
        data_type: boolean
  - code: VITALS
    label: {en: "Vital signs", fr: "Signes vitaux"}
    items:
      - code: weight
        label: {en: "Weight", fr: "Poids"}
        data_type: decimal
        unit: kg
        min: 1
        max: 300
      - code: height
        label: {en: "Height", fr: "Taille"}
        data_type: decimal
        unit: cm
        min: 40
        max: 250
  - code: DRUG
    label: {en: "Study drug", fr: "Traitement à l'étude"}
    repeating: true
    items:
      - code: kit_number
        label: {en: "Kit number", fr: "Numéro de kit"}
        data_type: text
        required: true
edit_checks:
  - id: VITALS_HEAVY
    form: VITALS
    item: weight
    severity: soft
    expression: weight > settings.heavy_kg
    message: {en: "Heavy: please confirm", fr: "Poids élevé : confirmer"}
"""
