"""The eligibility engine: a study's criteria evaluated over screening data. Pure, no database.

Input values are keyed by the item codes of the study's screening form and checked against the
items' declarations (type, range, code list) by :func:`parse_screening_data`; :func:`evaluate`
then gives every criterion one of three results, with a message in English and French.

Semantics
---------
A criterion's result says whether the subject *satisfies* it:

- an inclusion is ``met`` when its condition holds, ``not_met`` when it does not;
- an exclusion's condition is the excluding situation: the exclusion is ``met`` when that
  situation does not hold (the subject is clear of it) and ``not_met`` when it holds;
- ``unknown`` when the data it needs are missing (absent or null), by Kleene's three-valued
  logic: ``pregnant or breastfeeding`` is already true when ``pregnant`` is true, whatever
  ``breastfeeding`` is, but unknown when ``pregnant`` is false and ``breastfeeding`` missing;
- a criterion whose ``applies_when`` is false (pregnancy items for a man) is ``met`` whatever
  its other keys say; when ``applies_when`` is unknown the criterion is ``met`` only if it would
  be met anyway, otherwise ``unknown`` (``met = not applies or satisfied``, in Kleene logic).

The subject is ``eligible`` when every criterion is met, ``not_eligible`` when any is not met,
and otherwise (some unknown, none failed) ``incomplete``.

Washouts and ages follow the expression functions of :mod:`trialdesk.protocol.expressions`:
``weeks_since(last_use, screening_date) < N`` excludes exactly when the last use is less than
7·N days before the screening date (7·N days is allowed; ``"never"`` never excludes), and an age
is reached on the birthday.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.protocol.errors import ItemValueError
from trialdesk.protocol.expressions import NEVER, UNKNOWN, age_years
from trialdesk.protocol.schema import Criterion, Item
from trialdesk.protocol.schema import Study as StudyDefinition

__all__ = [
    "CriterionResult",
    "Evaluation",
    "InvalidScreeningData",
    "Result",
    "Status",
    "data_to_json",
    "evaluate",
    "display_value",
    "parse_item_value",
    "parse_screening_data",
    "screening_items",
]

LANGUAGES = ("en", "fr")


class Result(StrEnum):
    """Whether the subject satisfies one criterion."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


class Status(StrEnum):
    """The verdict over all criteria."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


class InvalidScreeningData(ValueError):
    """A screening value that the screening form does not accept.

    Parameters
    ----------
    key : str
        The input key (an item code, or ``"(input)"`` when the input is not an object at all).
    value : object
        The offending value, as received.
    reason : str
        Why it is refused.
    """

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"{key}: {value!r} {reason}")

    @property
    def reason_with_value(self) -> str:
        """The message without the key: ``'abc' is not an integer``."""
        return f"{self.value!r} {self.reason}"


@dataclass(frozen=True)
class CriterionResult:
    """The result of one criterion, with the message a coordinator reads.

    Attributes
    ----------
    id, kind : str
        The criterion id (``INC01``) and ``inclusion`` or ``exclusion``.
    result : Result
        ``met``, ``not_met`` or ``unknown``.
    applies : bool or None
        Whether the criterion applies to the subject (``None``: unknown).
    missing : tuple of str
        Item codes it reads whose values are missing.
    messages : Mapping of str to str
        The message by language (``en``, ``fr``).
    """

    id: str
    kind: str
    result: Result
    applies: bool | None
    missing: tuple[str, ...]
    messages: Mapping[str, str]

    def message(self, language: str = "en") -> str:
        return self.messages["fr" if language.lower().startswith("fr") else "en"]


@dataclass(frozen=True)
class Evaluation:
    """The verdict and every criterion's result, in study order."""

    status: Status
    criteria: tuple[CriterionResult, ...]

    def ids_with(self, result: Result) -> list[str]:
        """Ids of the criteria with this result, in study order."""
        return [criterion.id for criterion in self.criteria if criterion.result == result]

    def to_json(self, language: str = "en") -> dict[str, Any]:
        """The verdict as the ``trialdesk screen`` command and the API print it."""
        return {
            "status": self.status.value,
            "criteria": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "result": c.result.value,
                    "message": c.message(language),
                }
                for c in self.criteria
            ],
        }

    def to_records(self) -> list[dict[str, Any]]:
        """Every criterion's result with both messages, as stored with an assessment."""
        return [
            {
                "id": c.id,
                "kind": c.kind,
                "result": c.result.value,
                "applies": c.applies,
                "missing": list(c.missing),
                **{f"message_{lang}": c.messages[lang] for lang in LANGUAGES},
            }
            for c in self.criteria
        ]


# --------------------------------------------------------------------------------------------
# Input


def screening_items(definition: StudyDefinition) -> dict[str, Item]:
    """The items of the study's screening form by code, in form order."""
    form = definition.screening
    if form is None:
        raise InvalidScreeningData("(study)", definition.id, "declares no screening form")
    return {item.code: item for item in form.items}


#: The JSON types each data type accepts; the item's own parser then checks format and range.
_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "integer": (int, float),
    "decimal": (int, float),
    "boolean": (bool,),
    "date": (str,),
    "datetime": (str,),
    "choice": (str,),
    "text": (str,),
}
_TYPE_WORDS = {
    "integer": "an integer",
    "decimal": "a number",
    "boolean": "true or false",
    "date": "a date text (YYYY-MM-DD)",
    "datetime": "a date-time text",
    "choice": "a code",
    "text": "a text",
}


def parse_screening_data(
    definition: StudyDefinition, raw: Any, *, strict: bool = True
) -> dict[str, Any]:
    """Typed screening values from input keyed by screening-form item codes.

    Parameters
    ----------
    definition : Study
        The loaded study file.
    raw : Mapping
        The input. An absent key or a ``None`` value is unknown.
    strict : bool
        JSON input (the command, the API): each value must have the JSON type of its item
        (``7`` not ``"7"`` for an integer, ``true`` for a boolean). With ``strict=False`` (web
        forms) the text forms ``"7"``, ``"true"`` and ``""`` (unknown) are accepted too.

    Returns
    -------
    dict
        Every item code of the screening form → its typed value (``datetime.date``,
        :data:`~trialdesk.protocol.expressions.NEVER`, ``bool``, ``int``…) or ``None``;
        computed items are filled in.

    Raises
    ------
    InvalidScreeningData
        The first problem found: an unknown key, a computed item given, a wrong type, a
        malformed date, a value outside the item's range or code list, or values that a hard
        edit check of the screening form refuses (a birth date after the screening date…).
    """
    if not isinstance(raw, Mapping):
        raise InvalidScreeningData("(input)", raw, "is not an object of screening items")
    items = screening_items(definition)
    for key in raw:
        if key not in items:
            known = ", ".join(items)
            raise InvalidScreeningData(
                str(key), raw[key], f"is given for an unknown key (screening items: {known})"
            )
    values: dict[str, Any] = {}
    for code, item in items.items():
        value = raw.get(code)
        if item.computed is not None:
            if value is not None:
                raise InvalidScreeningData(code, value, "is given for a computed item")
            continue
        values[code] = parse_item_value(definition, item, value, strict=strict)
    for code, item in items.items():
        if item.computed is not None:
            computed = item.computed.evaluate(values)
            values[code] = None if computed is UNKNOWN else computed
    _apply_hard_checks(definition, values)
    return values


def _apply_hard_checks(definition: StudyDefinition, values: dict[str, Any]) -> None:
    """Refuse values that a hard edit check of the screening form fires on.

    The offending key is the check's ``item``; a check without one names the keys whose
    removal stops it firing (the last in form order, the others in the message).
    """
    form = definition.screening
    order = list(screening_items(definition))
    for check in definition.checks_of(form.code) if form is not None else []:
        if check.severity != "hard" or check.expression.evaluate(values) is not True:
            continue
        if check.item is not None:
            culprits = [check.item]
        else:
            named = [name for name in order if name in check.expression.names]
            culprits = [
                name
                for name in named
                if values.get(name) is not None
                and check.expression.evaluate({**values, name: None}) is not True
            ] or [name for name in named if values.get(name) is not None]
        key, others = culprits[-1], culprits[:-1]
        shown = "".join(f"; {name} = {_json_value(values[name])!r}" for name in others)
        raise InvalidScreeningData(
            key, _json_value(values[key]), f"is refused: {check.message.en} ({check.id}{shown})"
        )


def parse_item_value(definition: StudyDefinition, item: Item, value: Any, *, strict: bool) -> Any:
    """The typed value of one screening item (see :func:`parse_screening_data`).

    Raises
    ------
    InvalidScreeningData
        Naming the item code and the value.
    """
    if value is None:
        return None
    if strict:
        accepted = _JSON_TYPES[item.data_type]
        wrong_bool = isinstance(value, bool) and bool not in accepted
        if wrong_bool or not isinstance(value, accepted):
            raise InvalidScreeningData(item.code, value, f"is not {_TYPE_WORDS[item.data_type]}")
    codes = definition.codelist(item.codelist).codes if item.codelist else None
    try:
        return item.parse(value, codes)
    except ItemValueError as error:
        raise InvalidScreeningData(item.code, value, error.reason) from None


def display_value(definition: StudyDefinition, code: str, value: Any, language: str) -> str:
    """A screening value as a coordinator reads it: yes/no, a code's label, a unit, "never".

    ``value`` may be typed (from :func:`parse_screening_data`) or its JSON form.
    """
    if value is None:
        return "–"
    return _Describer(definition).value(code, value, "fr" if language.startswith("fr") else "en")


def data_to_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """Typed screening values as JSON values (dates ``YYYY-MM-DD``, ``"never"``)."""
    return {code: _json_value(value) for code, value in values.items()}


def _json_value(value: Any) -> Any:
    if value is NEVER:
        return "never"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------------------------
# Evaluation


def evaluate(definition: StudyDefinition, values: Mapping[str, Any]) -> Evaluation:
    """Every criterion of the study over ``values`` (from :func:`parse_screening_data`).

    Returns
    -------
    Evaluation
        The status (eligible / not_eligible / incomplete) and, in study order, each criterion's
        result and messages.
    """
    describe = _Describer(definition)
    results = tuple(
        _evaluate_criterion(criterion, values, describe) for criterion in definition.eligibility
    )
    kinds = {result.result for result in results}
    if Result.NOT_MET in kinds:
        status = Status.NOT_ELIGIBLE
    elif Result.UNKNOWN in kinds:
        status = Status.INCOMPLETE
    else:
        status = Status.ELIGIBLE
    return Evaluation(status, results)


def _evaluate_criterion(
    criterion: Criterion, values: Mapping[str, Any], describe: _Describer
) -> CriterionResult:
    applies: Any = True
    names = set(criterion.condition.names)
    if criterion.applies_when is not None:
        applies = criterion.applies_when.evaluate(values)
        names |= criterion.applies_when.names
    holds = criterion.condition.evaluate(values)
    satisfied = holds if criterion.kind == "inclusion" else _kleene_not(holds)
    if applies is False:
        result = Result.MET
    elif applies is True:
        result = _as_result(satisfied)
    else:  # applicability unknown: met only if the criterion is met anyway
        result = Result.MET if satisfied is True else Result.UNKNOWN
    ordered = [name for name in describe.order if name in names]
    missing = tuple(name for name in ordered if values.get(name) is None)
    messages = {
        language: describe.message(
            criterion,
            result,
            applies=applies,
            missing=missing,
            values=values,
            language=language,
        )
        for language in LANGUAGES
    }
    return CriterionResult(
        id=criterion.id,
        kind=criterion.kind,
        result=result,
        applies=None if applies is UNKNOWN else bool(applies),
        missing=missing,
        messages=messages,
    )


def _kleene_not(value: Any) -> Any:
    return UNKNOWN if value is UNKNOWN else not value


def _as_result(value: Any) -> Result:
    if value is UNKNOWN:
        return Result.UNKNOWN
    if not isinstance(value, bool):
        raise TypeError(f"a criterion evaluated to {value!r}, not True, False or UNKNOWN")
    return Result.MET if value else Result.NOT_MET


#: Between the items of a message (French puts a space before a semicolon).
_SEPARATOR = {"en": "; ", "fr": " ; "}
#: The date every washout and the age are computed from.
REFERENCE_DATE = "screening_date"

_WORDS = {
    "en": {
        ("inclusion", Result.MET): "Met: {text}.",
        ("inclusion", Result.NOT_MET): "Not met: {text} — {details}.",
        ("exclusion", Result.MET): "Met: not excluded by “{text}”.",
        ("exclusion", Result.NOT_MET): "Not met: excluded by “{text}” — {details}.",
        "unknown": "Unknown: {text} — missing data: {details}.",
        "unknown_other": "Unknown: {text} — the data given are incomplete.",
        "not_applicable": "Met: does not apply to this subject ({details}) — {text}.",
        "age": "age {n} on the screening date",
        "before": "{n} days before the screening date",
        "after": "{n} days after the screening date",
        True: "yes",
        False: "no",
        "never": "never",
    },
    "fr": {
        ("inclusion", Result.MET): "Rempli : {text}.",
        ("inclusion", Result.NOT_MET): "Non rempli : {text} — {details}.",
        ("exclusion", Result.MET): "Rempli : non exclu par « {text} ».",
        ("exclusion", Result.NOT_MET): "Non rempli : exclu par « {text} » — {details}.",
        "unknown": "Inconnu : {text} — données manquantes : {details}.",
        "unknown_other": "Inconnu : {text} — les données saisies sont incomplètes.",
        "not_applicable": "Rempli : ne s'applique pas à ce sujet ({details}) — {text}.",
        "age": "{n} ans à la date de sélection",
        "before": "{n} jours avant la date de sélection",
        "after": "{n} jours après la date de sélection",
        True: "oui",
        False: "non",
        "never": "jamais",
    },
}


class _Describer:
    """Writes criterion messages with item labels and values in the reader's language."""

    def __init__(self, definition: StudyDefinition) -> None:
        self.definition = definition
        self.items = screening_items(definition)
        self.order = list(self.items)

    def label(self, code: str, language: str) -> str:
        item = self.items.get(code)
        return item.label.get(language) if item is not None else code

    def value(self, code: str, value: Any, language: str) -> str:
        words = _WORDS[language]
        item = self.items.get(code)
        if value is NEVER or (item is not None and item.data_type == "date" and value == "never"):
            return words["never"]
        if isinstance(value, bool):
            return words[value]
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        if item is not None and item.codelist and isinstance(value, str):
            for code_item in self.definition.codelist(item.codelist).items:
                if code_item.code == value:
                    return code_item.label.get(language)
        unit = f" {item.unit}" if item is not None and item.unit else ""
        return f"{value}{unit}"

    def details(
        self, names: list[str], functions: frozenset[str], values: Mapping[str, Any], language: str
    ) -> str:
        """``label = value`` for each known value, with ages and delays from the screening date."""
        words = _WORDS[language]
        reference = values.get(REFERENCE_DATE)
        shown = []
        for code in names:
            value = values.get(code)
            if value is None:
                continue
            text = f"{self.label(code, language)} = {self.value(code, value, language)}"
            if (
                code != REFERENCE_DATE
                and isinstance(value, dt.date)
                and isinstance(reference, dt.date)
                and REFERENCE_DATE in names
            ):
                if "age_years" in functions:
                    text += f" ({words['age'].format(n=age_years(value, reference))})"
                elif functions & {"weeks_since", "days_between"}:
                    days = (reference - value).days
                    key = "before" if days >= 0 else "after"
                    text += f" ({words[key].format(n=abs(days))})"
            shown.append(text)
        return _SEPARATOR[language].join(shown)

    def message(
        self,
        criterion: Criterion,
        result: Result,
        *,
        applies: Any,
        missing: tuple[str, ...],
        values: Mapping[str, Any],
        language: str,
    ) -> str:
        words = _WORDS[language]
        text = criterion.text.get(language).rstrip(".")
        if applies is False:
            names = [n for n in self.order if n in criterion.applies_when.names]  # type: ignore[union-attr]
            details = self.details(names, frozenset(), values, language)
            return words["not_applicable"].format(text=text, details=details)
        if result == Result.UNKNOWN:
            if not missing:
                return words["unknown_other"].format(text=text)
            labels = _SEPARATOR[language].join(self.label(code, language) for code in missing)
            return words["unknown"].format(text=text, details=labels)
        names = [n for n in self.order if n in criterion.condition.names]
        details = self.details(names, criterion.condition.functions, values, language)
        return words[(criterion.kind, result)].format(text=text, details=details)
