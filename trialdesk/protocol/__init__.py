"""The protocol as data: study files, their schema, their loader and the expression language.

A study file (``studies/<id>/study.yaml``, documented in ``docs/study_files.md``) declares a
study's arms, sites, visits, schedule of activities, forms and items, edit checks, eligibility
criteria, dosing regimen, endpoints and settings. :func:`load_study` reads it, validates it and
returns a frozen :class:`Study`, or raises :class:`StudyFileError` listing every problem as
``file:line: name: message``.

This package is free of Django (the Django app's ``models.py`` and ``services.py`` record loaded
versions in the database); other code imports from here::

    from trialdesk.protocol import load_study, resolve_study_path
    study = load_study(resolve_study_path("ns-dupi"))
    study.forms_at("W16")
"""

from __future__ import annotations

from .errors import ItemValueError, Problem, ProtocolError, StudyFileError, UnknownCodeError
from .expressions import (
    NEVER,
    UNKNOWN,
    EvaluationError,
    Expression,
    ExpressionError,
    compile_expression,
)
from .loader import STUDIES_DIR, STUDY_FILE, load_study, resolve_study_path
from .schema import (
    CONTEXT_NAMES,
    Arm,
    Band,
    CodeItem,
    Codelist,
    Criterion,
    Dosing,
    EditCheck,
    Endpoint,
    Form,
    Item,
    ItemGroup,
    Randomization,
    Setting,
    Site,
    Sponsor,
    Stratum,
    Study,
    Text,
    Visit,
)

__all__ = [
    "CONTEXT_NAMES",
    "NEVER",
    "STUDIES_DIR",
    "STUDY_FILE",
    "UNKNOWN",
    "Arm",
    "Band",
    "CodeItem",
    "Codelist",
    "Criterion",
    "Dosing",
    "EditCheck",
    "Endpoint",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "Form",
    "Item",
    "ItemGroup",
    "ItemValueError",
    "Problem",
    "ProtocolError",
    "Randomization",
    "Setting",
    "Site",
    "Sponsor",
    "Stratum",
    "Study",
    "StudyFileError",
    "Text",
    "UnknownCodeError",
    "Visit",
    "compile_expression",
    "load_study",
    "resolve_study_path",
]
