"""The study-file schema: frozen pydantic models of everything a study file declares.

The models check the *shape* of each part (types, required keys, patterns, no unknown keys);
:mod:`trialdesk.protocol.checks` checks how the parts fit together (references, windows,
expressions against the items they read). Use :func:`trialdesk.protocol.load_study` to get a
:class:`Study`: it runs both and reports every problem with its file and line.

The format is documented key by key in ``docs/study_files.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from trialdesk.lib.partial_dates import PartialDateError, parse_partial_date

from .errors import ItemValueError, UnknownCodeError
from .expressions import (
    NEVER,
    Expression,
    ExpressionError,
    NameType,
    ValueType,
    parse_expression,
)

__all__ = [
    "CONTEXT_NAMES",
    "Arm",
    "Band",
    "CodeItem",
    "Codelist",
    "Criterion",
    "DataType",
    "Dosing",
    "EditCheck",
    "Endpoint",
    "Form",
    "Item",
    "ItemGroup",
    "Randomization",
    "Setting",
    "Site",
    "Sponsor",
    "Stratum",
    "Study",
    "Text",
    "Visit",
]

#: Codes of forms, visits, arms, sites, code lists, edit checks and criteria: ``NASA``, ``W16``.
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=40)]
#: Item codes and setting keys: ``nasa_total``, ``itch_pain_anchor``.
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
#: A non-empty text without surrounding white space.
Word = Annotated[str, StringConstraints(pattern=r"^\S(.*\S)?$", max_length=200)]
#: Codes that may be either (stratum codes, ``stratify_by`` entries): ``site``, ``AGE_GROUP``.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=60)]
DataType = Literal["integer", "decimal", "text", "date", "datetime", "boolean", "choice"]


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number", "must be a number, not {value!r}", {"value": value})
    return value


#: An integer or a decimal number (never a boolean).
Number = Annotated[int | float, PlainValidator(_number)]


#: Names that every form-level expression (edit check, computed item) may read besides the
#: items: the capture engine supplies their values for the record being checked.
CONTEXT_NAMES: Mapping[str, NameType] = {
    "visit_date": NameType(ValueType.DATE),
    "visit_code": NameType(ValueType.TEXT),
    "d0_date": NameType(ValueType.DATE),
    "planned_units": NameType(ValueType.NUMBER),
    "last_dosing_date": NameType(ValueType.DATE),
}

_VALUE_TYPES: Mapping[str, ValueType] = {
    "integer": ValueType.NUMBER,
    "decimal": ValueType.NUMBER,
    "text": ValueType.TEXT,
    "date": ValueType.DATE,
    "datetime": ValueType.DATE,
    "boolean": ValueType.BOOLEAN,
    "choice": ValueType.TEXT,
}


def _expression(value: Any, handler: Any, info: ValidationInfo) -> Expression:
    if isinstance(value, Expression):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("expression_type", "an expression must be a string")
    constants = (info.context or {}).get("constants")
    try:
        return parse_expression(value, constants=constants)
    except ExpressionError as error:
        message = "; ".join(problem.message for problem in error.problems)
        raise PydanticCustomError("expression", "{message}", {"message": message}) from None


#: An expression field: parsed (syntax only) when the model is validated; the names it uses are
#: checked by :mod:`trialdesk.protocol.checks`. Settings given in the validation context
#: (``{"constants": {"settings.x": value}}``) are bound.
ExpressionField = Annotated[
    Expression,
    WrapValidator(_expression),
    PlainSerializer(lambda expression: expression.text, return_type=str),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Text(_Frozen):
    """A text in English and French (``{en: …, fr: …}``)."""

    en: Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
    fr: Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]

    def get(self, language: str) -> str:
        """The text in ``language`` ("fr…" gives French, anything else English)."""
        return self.fr if language.lower().startswith("fr") else self.en

    def __str__(self) -> str:
        return self.en


class Sponsor(_Frozen):
    name: Word
    protocol_code: Word | None = None


class Arm(_Frozen):
    """A treatment arm; ``ratio`` is its share of the allocation (2 and 1 for 2:1)."""

    code: Code
    name: Text
    ratio: int = Field(ge=1, le=20)
    product: Text | None = None


class Randomization(_Frozen):
    """Permuted-block randomization; the list itself is generated and sealed elsewhere."""

    method: Literal["permuted_blocks"] = "permuted_blocks"
    block_sizes: list[int] = Field(min_length=1)
    block_choice: Literal["random", "fixed"] = "random"
    stratify_by: list[Identifier] = Field(default_factory=list)
    kit_reserve_per_site: int = Field(default=0, ge=0)
    units_per_kit: int = Field(default=1, ge=1)
    low_stock_kits: int = Field(default=2, ge=0)


class Site(_Frozen):
    code: Code
    name: Word
    city: Word


class Stratum(_Frozen):
    """A stratification factor: ``source`` is ``site`` or ``FORM.item`` (a choice or boolean)."""

    code: Identifier
    label: Text
    source: Word


class Visit(_Frozen):
    """A planned visit: target ``day`` from the reference visit (day 0) and its window in days."""

    code: Code
    label: Text
    day: int
    window_before: int = Field(default=0, ge=0)
    window_after: int = Field(default=0, ge=0)

    @property
    def earliest(self) -> int:
        return self.day - self.window_before

    @property
    def latest(self) -> int:
        return self.day + self.window_after

    def planned_date(self, reference: dt.date) -> dt.date:
        """The target date of this visit for a subject whose day 0 is ``reference``."""
        return reference + dt.timedelta(days=self.day)

    def window(self, reference: dt.date) -> tuple[dt.date, dt.date]:
        """First and last allowed dates (inclusive) for a subject whose day 0 is ``reference``."""
        return (
            reference + dt.timedelta(days=self.earliest),
            reference + dt.timedelta(days=self.latest),
        )


class CodeItem(_Frozen):
    code: Word
    label: Text


class Codelist(_Frozen):
    code: Code
    label: Text | None = None
    items: list[CodeItem] = Field(min_length=1)

    @property
    def codes(self) -> list[str]:
        return [item.code for item in self.items]


class Item(_Frozen):
    """One question of a form.

    ``min``/``max`` apply to integer and decimal items; ``codelist`` to choice items;
    ``allow_never`` and ``partial`` to date items; ``computed`` items are never typed.
    """

    code: Key
    label: Text
    help: Text | None = None
    data_type: DataType
    unit: Word | None = None
    min: Number | None = None
    max: Number | None = None
    decimals: int | None = Field(default=None, ge=0, le=6)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None
    required: bool = False
    codelist: Code | None = None
    computed: ExpressionField | None = None
    allow_never: bool = False
    partial: bool = False

    @property
    def value_type(self) -> ValueType:
        """The type of this item's values in expressions."""
        return _VALUE_TYPES[self.data_type]

    def name_type(self, codes: list[str] | None = None) -> NameType:
        """What an expression may assume about this item (``codes`` of a choice item)."""
        choices = frozenset(codes) if codes is not None and self.data_type == "choice" else None
        return NameType(self.value_type, choices, self.allow_never, self.partial)

    def parse(self, raw: Any, codes: list[str] | None = None) -> Any:
        """The typed value of ``raw`` for this item, or ``None`` for a missing value.

        Accepts Python values and their usual text forms (``"2024-03-01"``, ``"12"``,
        ``"true"``); a date item with ``allow_never`` accepts ``"never"`` (giving
        :data:`~trialdesk.protocol.expressions.NEVER`), one with ``partial`` accepts ``YYYY`` and
        ``YYYY-MM``, also written ``YYYY-UN-UN`` or ``YYYY-MM-UNK`` (returned as the canonical
        text ``YYYY`` / ``YYYY-MM``; see :mod:`trialdesk.lib.partial_dates`). ``codes`` are the
        codes of a choice item.

        Raises
        ------
        ItemValueError
            Naming the item and the value: wrong type, malformed, out of range, unknown code.
        """
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return None
        value = _PARSERS[self.data_type](self, raw, codes)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.min is not None and value < self.min:
                raise ItemValueError(self.code, raw, f"is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise ItemValueError(self.code, raw, f"is above the maximum {self.max}")
        return value


def _parse_integer(item: Item, raw: Any, codes: list[str] | None) -> int:
    if isinstance(raw, bool):
        raise ItemValueError(item.code, raw, "is not an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d+\s*", raw):
        return int(raw)
    raise ItemValueError(item.code, raw, "is not an integer")


def _parse_decimal(item: Item, raw: Any, codes: list[str] | None) -> float:
    if isinstance(raw, bool):
        raise ItemValueError(item.code, raw, "is not a number")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str) and re.fullmatch(r"\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)\s*", raw):
        value = float(raw.strip().replace(",", "."))
    else:
        raise ItemValueError(item.code, raw, "is not a number")
    if item.decimals is not None and round(value, item.decimals) != value:
        raise ItemValueError(item.code, raw, f"has more than {item.decimals} decimal(s)")
    return value


def _parse_text(item: Item, raw: Any, codes: list[str] | None) -> str:
    if not isinstance(raw, str):
        raise ItemValueError(item.code, raw, "is not a text")
    if item.max_length is not None and len(raw) > item.max_length:
        raise ItemValueError(item.code, raw, f"is longer than {item.max_length} characters")
    if item.pattern is not None and not re.fullmatch(item.pattern, raw):
        raise ItemValueError(item.code, raw, f"does not match the pattern {item.pattern}")
    return raw


def _parse_date(item: Item, raw: Any, codes: list[str] | None) -> Any:
    if isinstance(raw, dt.datetime):
        raise ItemValueError(item.code, raw, "is a date and time, not a date")
    if isinstance(raw, dt.date):
        return raw
    if raw is NEVER or raw == "never":
        if item.allow_never:
            return NEVER
        raise ItemValueError(item.code, raw, "is not allowed: this date cannot be 'never'")
    if isinstance(raw, str) and item.partial:
        try:
            partial = parse_partial_date(raw, item.code)
        except PartialDateError as error:
            raise ItemValueError(item.code, raw, error.problem) from None
        return partial.earliest() if partial.complete else str(partial)
    if isinstance(raw, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                pass
    expected = "YYYY-MM-DD" + (", YYYY-MM or YYYY" if item.partial else "")
    expected += ' or "never"' if item.allow_never else ""
    raise ItemValueError(item.code, raw, f"is not a date ({expected})")


def _parse_datetime(item: Item, raw: Any, codes: list[str] | None) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?.*", raw):
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            pass
    raise ItemValueError(item.code, raw, "is not a date and time (YYYY-MM-DDTHH:MM)")


def _parse_boolean(item: Item, raw: Any, codes: list[str] | None) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ItemValueError(item.code, raw, "is not true or false")


def _parse_choice(item: Item, raw: Any, codes: list[str] | None) -> str:
    if not isinstance(raw, str):
        raise ItemValueError(item.code, raw, "is not a code")
    if codes is not None and raw not in codes:
        raise ItemValueError(item.code, raw, f"is not one of the codes ({', '.join(codes)})")
    return raw


_PARSERS = {
    "integer": _parse_integer,
    "decimal": _parse_decimal,
    "text": _parse_text,
    "date": _parse_date,
    "datetime": _parse_datetime,
    "boolean": _parse_boolean,
    "choice": _parse_choice,
}


class ItemGroup(_Frozen):
    """Items shown together. ``enabled_by`` names a boolean setting that switches the group on;
    ``lab_test`` marks a laboratory result group (items ``<prefix>_value``, ``_unit``, ``_lln``,
    ``_uln``)."""

    code: Code
    label: Text
    enabled_by: Key | None = None
    lab_test: Code | None = None
    items: list[Item] = Field(default_factory=list)


class Form(_Frozen):
    """A case report form; a ``repeating`` form holds any number of records (AEs…)."""

    code: Code
    label: Text
    help: Text | None = None
    repeating: bool = False
    patient_reported: bool = False
    item_groups: list[ItemGroup] = Field(min_length=1)

    @property
    def items(self) -> list[Item]:
        """Every item of every group, in order."""
        return [item for group in self.item_groups for item in group.items]

    def item(self, code: str) -> Item:
        """The item ``code`` of this form; :class:`UnknownCodeError` if there is none."""
        for item in self.items:
            if item.code == code:
                return item
        raise UnknownCodeError(f"item of form {self.code}", code)


class EditCheck(_Frozen):
    """A data check on one form: it *fires* when its expression is True (UNKNOWN never fires).

    A ``hard`` check refuses the save; a ``soft`` one saves and raises a query on ``item``.
    """

    id: Code
    form: Code
    item: Key | None = None
    expression: ExpressionField
    severity: Literal["hard", "soft"]
    message: Text


class Criterion(_Frozen):
    """An eligibility criterion over the screening form's items.

    For an inclusion, ``condition`` is what must hold; for an exclusion it is the excluding
    situation. When ``applies_when`` is False the criterion does not apply to the subject.
    """

    id: Code
    kind: Literal["inclusion", "exclusion"]
    text: Text
    applies_when: ExpressionField | None = None
    condition: ExpressionField


class Dosing(_Frozen):
    """The dosing regimen: units (syringes) to give at each dosing visit, in visit order."""

    reading: Literal["A", "B"] = "A"
    last_dosing_week: int = Field(default=14, ge=0)
    unit: Text
    form: Code | None = None
    units_per_visit: dict[Code, Annotated[int, Field(ge=1)]] = Field(min_length=1)

    @property
    def dosing_visits(self) -> list[str]:
        """The visits at which the study drug is given."""
        return list(self.units_per_visit)

    @property
    def total_units(self) -> int:
        """Units a fully compliant subject receives."""
        return sum(self.units_per_visit.values())


class Band(_Frozen):
    code: Key
    label: Text
    min: Number
    max: Number


class Endpoint(_Frozen):
    """An outcome measure: which item, at which visits, summarised how."""

    code: Code
    kind: Literal["primary", "secondary", "safety", "exploratory"]
    label: Text
    form: Code
    item: Key | None = None
    visits: list[Code] = Field(default_factory=list)
    baseline_visit: Code | None = None
    summary: Literal["value", "change_from_baseline", "sum_over_visits", "records"] = "value"
    analysis: str | None = None
    bands: list[Band] = Field(default_factory=list)
    responder_change: Number | None = None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


class Setting(_Frozen):
    """A protocol setting: a convention of ours or an open item the sponsor must settle.

    ``value`` is a boolean, number, text, list of texts or null; ``choices`` lists the values
    allowed. Expressions read it as ``settings.<key>``.
    """

    value: Any
    label: Text
    description: Text | None = None
    choices: list[Any] | None = None
    status: Literal["open", "convention", "fixed"] = "fixed"

    @field_validator("value")
    @classmethod
    def _value_is_plain(cls, value: Any) -> Any:
        if _is_scalar(value) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return value
        raise PydanticCustomError(
            "setting_value",
            "must be a boolean, number, text or list of texts, not {value!r}",
            {"value": value},
        )

    @field_validator("choices")
    @classmethod
    def _choices_are_scalars(cls, choices: list[Any] | None) -> list[Any] | None:
        for choice in choices or []:
            if choice is None or not _is_scalar(choice):
                raise PydanticCustomError(
                    "setting_choice",
                    "a choice must be a boolean, number or text, not {value!r}",
                    {"value": choice},
                )
        return choices


class Study(_Frozen):
    """A loaded, checked study file. Get one from :func:`trialdesk.protocol.load_study`.

    Lookups (:meth:`form`, :meth:`visit`, :meth:`item`…) raise
    :class:`~trialdesk.protocol.errors.UnknownCodeError` for a code the study does not declare.
    """

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
    version: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)*$", max_length=32)]
    version_date: dt.date | None = None
    sha256: str = ""
    title: Word
    short_title: Word | None = None
    kind: Literal["randomized", "observational"]
    phase: Word | None = None
    blinding: Literal["none", "single", "double", "triple"] = "none"
    registry_ids: dict[Word, Word] = Field(default_factory=dict)
    sponsor: Sponsor
    target_enrollment: int | None = Field(default=None, ge=1)
    arms: list[Arm] = Field(default_factory=list)
    randomization: Randomization | None = None
    sites: list[Site] = Field(min_length=1)
    strata: list[Stratum] = Field(default_factory=list)
    visits: list[Visit] = Field(min_length=1)
    schedule: dict[Code, list[Code]] = Field(default_factory=dict)
    screening_form: Code | None = None
    forms: list[Form] = Field(min_length=1)
    codelists: list[Codelist] = Field(default_factory=list)
    edit_checks: list[EditCheck] = Field(default_factory=list)
    eligibility: list[Criterion] = Field(default_factory=list)
    dosing: Dosing | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    settings: dict[Key, Setting] = Field(default_factory=dict)

    _index: dict[tuple[str, str], Any] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        index: dict[tuple[str, str], Any] = {}
        for kind, objects, key in (
            ("arm", self.arms, "code"),
            ("site", self.sites, "code"),
            ("visit", self.visits, "code"),
            ("form", self.forms, "code"),
            ("code list", self.codelists, "code"),
            ("criterion", self.eligibility, "id"),
            ("edit check", self.edit_checks, "id"),
            ("endpoint", self.endpoints, "code"),
            ("stratum", self.strata, "code"),
        ):
            for obj in objects:
                index.setdefault((kind, getattr(obj, key)), obj)
        self._index = index

    def _get(self, kind: str, code: str) -> Any:
        try:
            return self._index[(kind, code)]
        except KeyError:
            raise UnknownCodeError(kind, code) from None

    def arm(self, code: str) -> Arm:
        return self._get("arm", code)

    def site(self, code: str) -> Site:
        return self._get("site", code)

    def visit(self, code: str) -> Visit:
        return self._get("visit", code)

    def form(self, code: str) -> Form:
        return self._get("form", code)

    def codelist(self, code: str) -> Codelist:
        return self._get("code list", code)

    def criterion(self, criterion_id: str) -> Criterion:
        return self._get("criterion", criterion_id)

    def edit_check(self, check_id: str) -> EditCheck:
        return self._get("edit check", check_id)

    def endpoint(self, code: str) -> Endpoint:
        return self._get("endpoint", code)

    def item(self, form: str, item: str) -> Item:
        """The item ``item`` of form ``form``."""
        return self.form(form).item(item)

    def setting(self, key: str) -> Any:
        """The value of setting ``key``."""
        if key not in self.settings:
            raise UnknownCodeError("setting", key)
        return self.settings[key].value

    @property
    def reference_visit(self) -> Visit:
        """The visit at day 0, from which every planned date is computed."""
        return next(visit for visit in self.visits if visit.day == 0)

    @property
    def screening(self) -> Form | None:
        """The form whose items the eligibility criteria read."""
        return self.form(self.screening_form) if self.screening_form else None

    def forms_at(self, visit_code: str) -> list[Form]:
        """The forms the schedule of activities puts at a visit, in schedule order."""
        self.visit(visit_code)
        return [self.form(code) for code in self.schedule.get(visit_code, [])]

    def visits_of(self, form_code: str) -> list[Visit]:
        """The visits at which a form is scheduled, in visit order."""
        self.form(form_code)
        return [visit for visit in self.visits if form_code in self.schedule.get(visit.code, [])]

    def checks_of(self, form_code: str) -> list[EditCheck]:
        """The edit checks of a form, in file order."""
        return [check for check in self.edit_checks if check.form == form_code]

    def parse_value(self, form: str, item: str, raw: Any) -> Any:
        """The typed value of ``raw`` for an item (see :meth:`Item.parse`), codes included."""
        declared = self.item(form, item)
        codes = self.codelist(declared.codelist).codes if declared.codelist else None
        return declared.parse(raw, codes)

    def _codes_of(self, item: Item) -> list[str] | None:
        if item.codelist is None or ("code list", item.codelist) not in self._index:
            return None
        return self.codelist(item.codelist).codes

    def eligibility_names(self) -> dict[str, NameType]:
        """The names eligibility criteria may read: the screening form's items."""
        screening = self.screening
        if screening is None:
            return {}
        return {item.code: item.name_type(self._codes_of(item)) for item in screening.items}

    def names_for(self, form_code: str) -> dict[str, NameType]:
        """The names an edit check or computed item of a form may read.

        The form's own items by code; :data:`CONTEXT_NAMES` (``visit_date``…); ``FORM.item`` for
        the items of every other non-repeating form at the same visit (or of the screening
        form); ``FORM.records``, the number of records of a repeating form at the visit.
        Settings are bound when the study is loaded (``settings.<key>``).
        """
        own = self.form(form_code)
        names = {item.code: item.name_type(self._codes_of(item)) for item in own.items}
        names.update(CONTEXT_NAMES)
        names["visit_code"] = NameType(ValueType.TEXT, frozenset(v.code for v in self.visits))
        for form in self.forms:
            if form.repeating:
                names[f"{form.code}.records"] = NameType(ValueType.NUMBER)
            elif form.code != own.code:
                for item in form.items:
                    names[f"{form.code}.{item.code}"] = item.name_type(self._codes_of(item))
        return names

    def settings_values(self) -> Mapping[str, Any]:
        """Every setting as the expression names ``settings.<key>`` → value."""
        return {f"settings.{key}": setting.value for key, setting in self.settings.items()}
