"""The expression language of study files: small, safe, three-valued.

Eligibility criteria, edit checks and computed items are written as expressions such as::

    weeks_since(last_biologic, screening_date) < 16
    pregnant or breastfeeding or (childbearing_potential and not adequate_contraception)
    sum(dlqi_q1, dlqi_q2, dlqi_q3)

An expression is a single Python-syntax expression restricted to literals (numbers, strings,
``True``/``False``), names (``nasa_total``) and dotted names (``settings.tcs_quantity_method``,
``AE.records``), the operators ``+ - * / // %``, comparisons (``== != < <= > >=``, ``in`` and
``not in`` a literal tuple), ``and``/``or``/``not``, ``x if test else y`` and calls of the
functions in :data:`FUNCTIONS`. It is parsed with :mod:`ast` and evaluated by a subclass of
simpleeval's :class:`~simpleeval.SimpleEval`; Python's ``eval`` is never used.

:func:`compile_expression` parses an expression and checks it against the names it may use
(unknown names and functions, wrong arity, and, when the names carry types, type errors such as
comparing a date with a number or a choice with a code its code list does not have). It is run
when a study file is loaded, so a broken rule never reaches a subject.

Three-valued logic
------------------
A name whose value is absent or ``None`` is :data:`UNKNOWN`. ``UNKNOWN`` propagates through
arithmetic, comparisons and function calls (except :func:`is_missing`, :func:`coalesce` and
:func:`sum_missing_as_zero`, which look at missingness on purpose). The logical operators follow
Kleene's strong logic:

=========  =======  =======  =======
``a and b`` b=True   b=False  b=UNKNOWN
=========  =======  =======  =======
a=True     True     False    UNKNOWN
a=False    False    False    False
a=UNKNOWN  UNKNOWN  False    UNKNOWN
=========  =======  =======  =======

``or`` is True if any operand is True, else UNKNOWN if any is UNKNOWN, else False; ``not UNKNOWN``
is UNKNOWN; a chained comparison ``a < b < c`` is the ``and`` of its links; ``x if t else y`` is
UNKNOWN when ``t`` is. ``UNKNOWN`` has no truth value: ``bool(UNKNOWN)`` raises ``TypeError``, so
it can never be mistaken for False.

Dates and "never"
-----------------
Date values are :class:`datetime.date` (a :class:`datetime.datetime` counts as its date; an ISO
``YYYY-MM-DD`` string is accepted too; a partial date ``YYYY`` or ``YYYY-MM`` is UNKNOWN to the
date functions). A last-use date may be :data:`NEVER` (or the string ``"never"``): it is
infinitely far in the past, so ``weeks_since(NEVER, ref)`` is ``inf`` and never excludes.

The washout convention of NS-DUPI ("within N weeks before inclusion" excludes when
``inclusion − last_use < 7·N`` days; exactly 7·N days is allowed) reads
``weeks_since(last_use, inclusion) < N``. Ages are reached on the birthday
(:func:`age_years`).
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import math
import re
from collections import ChainMap
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Final

from simpleeval import DEFAULT_OPERATORS, SimpleEval

from trialdesk.lib.partial_dates import PartialDateError, parse_partial_date

from .errors import ProtocolError

__all__ = [
    "FUNCTIONS",
    "NEVER",
    "UNKNOWN",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "ExpressionProblem",
    "NameType",
    "ValueType",
    "compile_expression",
    "parse_expression",
]


class _Unknown:
    """The type of :data:`UNKNOWN`: a value that is missing, so neither true nor false."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value; test it with `value is UNKNOWN`")

    def __reduce__(self) -> str:
        return "UNKNOWN"


class _Never:
    """The type of :data:`NEVER`: a last-use date for something never used."""

    _instance: _Never | None = None

    def __new__(cls) -> _Never:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEVER"

    def __str__(self) -> str:
        return "never"

    def __reduce__(self) -> str:
        return "NEVER"


#: The result of an expression whose value cannot be known because data are missing.
UNKNOWN: Final = _Unknown()
#: The last-use date of something never used (items with ``allow_never``).
NEVER: Final = _Never()


class ValueType(StrEnum):
    """The static type of a value in an expression."""

    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    BOOLEAN = "boolean"
    ANY = "any"


@dataclass(frozen=True)
class NameType:
    """What an expression may assume about a name.

    Parameters
    ----------
    type : ValueType
        The static type of the name's values.
    choices : frozenset of str, optional
        The codes a choice item may take; a comparison with another literal is an error.
    never : bool
        The name is a last-use date that may be :data:`NEVER`; it can only be used as the first
        argument of :func:`weeks_since` or :func:`days_between`.
    partial : bool
        The name is a date that may be partial (``YYYY-MM``); it can only be used through the
        date functions (which treat a partial date as UNKNOWN).
    """

    type: ValueType = ValueType.ANY
    choices: frozenset[str] | None = None
    never: bool = False
    partial: bool = False


@dataclass(frozen=True)
class ExpressionProblem:
    """One problem of one expression: the offending name (if any) and a message."""

    name: str | None
    message: str


class ExpressionError(ProtocolError):
    """An expression that does not parse or does not check.

    Parameters
    ----------
    where : str
        Where the expression comes from (``"eligibility EXC05 condition"``).
    problems : list of ExpressionProblem
        Every problem found.
    """

    def __init__(self, where: str, problems: list[ExpressionProblem]) -> None:
        self.where = where
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {problem.message}" for problem in self.problems))


class EvaluationError(ProtocolError):
    """An expression that cannot be evaluated over the values given (a value of the wrong type)."""


# --------------------------------------------------------------------------------------------
# Functions


def _as_date(value: Any, function: str) -> dt.date | _Never | _Unknown:
    if value is NEVER or (isinstance(value, str) and value == "never"):
        return NEVER
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        elif re.fullmatch(r"\d{4}(-\d{2})?", value):
            return UNKNOWN
    raise EvaluationError(f"{function}(): {value!r} is not a date")


def _require_date(value: Any, function: str, argument: str) -> dt.date | _Unknown:
    date = _as_date(value, function)
    if date is NEVER:
        raise EvaluationError(f"{function}(): the {argument} cannot be 'never'")
    return date  # type: ignore[return-value]


def days_between(start: Any, end: Any) -> float | int | _Unknown:
    """Days from ``start`` to ``end`` (``end − start``); ``inf`` when ``start`` is NEVER.

    >>> days_between(dt.date(2024, 1, 1), dt.date(2024, 1, 15))
    14
    """
    first = _as_date(start, "days_between")
    last = _require_date(end, "days_between", "end date")
    if first is UNKNOWN or last is UNKNOWN:
        return UNKNOWN
    if first is NEVER:
        return math.inf
    return (last - first).days  # type: ignore[operator]


def _date_range(value: Any, function: str) -> tuple[dt.date, dt.date]:
    """The first and last day a (possibly partial) date may be; NEVER is the distant past."""
    if value is NEVER or (isinstance(value, str) and value == "never"):
        return dt.date.min, dt.date.min
    if isinstance(value, str) and re.fullmatch(r"\d{4}(-\d{2})?", value):
        try:
            partial = parse_partial_date(value, function)
        except PartialDateError:
            raise EvaluationError(f"{function}(): {value!r} is not a date") from None
        return partial.earliest(), partial.latest()
    date = _as_date(value, function)
    return date, date  # type: ignore[return-value]


def is_before(first: Any, second: Any) -> bool | _Unknown:
    """Whether ``first`` is a day before ``second``, partial dates read as the days they may be.

    True when even the last day ``first`` may be is before the first day ``second`` may be;
    False when ``first`` cannot be before ``second``; UNKNOWN when the partial dates overlap.
    For full dates ``is_before(a, b)`` is ``days_between(b, a) < 0``.

    >>> is_before("2025", "2026-03-14"), is_before("2026-03", "2026-03-14")
    (True, UNKNOWN)
    >>> is_before(dt.date(2026, 3, 14), dt.date(2026, 3, 14))
    False
    """
    first_from, first_to = _date_range(first, "is_before")
    second_from, second_to = _date_range(second, "is_before")
    if first_to < second_from:
        return True
    if first_from >= second_to:
        return False
    return UNKNOWN


def weeks_since(last_use: Any, reference: Any) -> float | _Unknown:
    """Weeks from ``last_use`` to ``reference``, as a fraction (days / 7); ``inf`` for NEVER.

    ``weeks_since(last, ref) < N`` is true exactly when ``ref − last < 7·N`` days, which is the
    washout convention: a last use exactly 7·N days before the reference is allowed.

    >>> weeks_since(dt.date(2024, 1, 1), dt.date(2024, 1, 15))
    2.0
    """
    days = days_between(last_use, reference)
    if days is UNKNOWN:
        return UNKNOWN
    return days / 7  # type: ignore[operator]


def age_years(birth: Any, on: Any) -> int | _Unknown:
    """Age in completed years on a date; the age is reached on the birthday itself.

    Someone born on 29 February reaches a new age on 1 March in a common year.

    >>> age_years(dt.date(2006, 3, 15), dt.date(2024, 3, 15))
    18
    """
    born = _require_date(birth, "age_years", "birth date")
    day = _require_date(on, "age_years", "date")
    if born is UNKNOWN or day is UNKNOWN:
        return UNKNOWN
    before_birthday = (day.month, day.day) < (born.month, born.day)  # type: ignore[union-attr]
    return day.year - born.year - int(before_birthday)  # type: ignore[union-attr]


def _round(value: float, digits: int = 0) -> float | int:
    """Round half away from zero (not Python's round-half-to-even)."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    quantum = Decimal(1).scaleb(-int(digits))
    rounded = Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    return int(rounded) if digits <= 0 else float(rounded)


def _sum(*values: Any) -> Any:
    return sum(values)


def _min(*values: Any) -> Any:
    return min(values)


def _max(*values: Any) -> Any:
    return max(values)


def _is_missing(value: Any) -> bool:
    return value is UNKNOWN


def _coalesce(*values: Any) -> Any:
    return next((value for value in values if value is not UNKNOWN), UNKNOWN)


def _sum_missing_as_zero(max_missing: Any, *values: Any) -> Any:
    if max_missing is UNKNOWN:
        return UNKNOWN
    missing = sum(1 for value in values if value is UNKNOWN)
    if missing > max_missing:
        return UNKNOWN
    return sum(value for value in values if value is not UNKNOWN)


@dataclass(frozen=True)
class _Function:
    """A function of the language: implementation, parameter and result types, arity."""

    impl: Callable[..., Any]
    signature: str
    params: tuple[ValueType, ...]
    result: ValueType | None
    min_args: int
    variadic: ValueType | None = None
    unknown_aware: bool = False
    doc: str = ""


_N, _D, _A, _B = ValueType.NUMBER, ValueType.DATE, ValueType.ANY, ValueType.BOOLEAN

#: The functions an expression may call, by name. ``result=None`` means "the common type of the
#: arguments". Explicit list: nothing else is callable.
FUNCTIONS: Final[Mapping[str, _Function]] = {
    "days_between": _Function(
        days_between,
        "days_between(start, end)",
        (_D, _D),
        _N,
        2,
        doc="end − start in days; inf when start is never",
    ),
    "is_before": _Function(
        is_before,
        "is_before(first, second)",
        (_D, _D),
        _B,
        2,
        doc="first is a day before second; partial dates compared as ranges of days",
    ),
    "weeks_since": _Function(
        weeks_since,
        "weeks_since(last_use, reference)",
        (_D, _D),
        _N,
        2,
        doc="(reference − last_use) / 7 in weeks; inf when last_use is never",
    ),
    "age_years": _Function(
        age_years,
        "age_years(birth, on)",
        (_D, _D),
        _N,
        2,
        doc="completed years on a date; reached on the birthday",
    ),
    "sum": _Function(_sum, "sum(x, ...)", (_N,), _N, 1, variadic=_N, doc="sum of numbers"),
    "min": _Function(_min, "min(x, ...)", (_A,), None, 1, variadic=_A, doc="smallest value"),
    "max": _Function(_max, "max(x, ...)", (_A,), None, 1, variadic=_A, doc="largest value"),
    "abs": _Function(abs, "abs(x)", (_N,), _N, 1, doc="absolute value"),
    "round": _Function(
        _round, "round(x, digits=0)", (_N, _N), _N, 1, doc="rounded half away from zero"
    ),
    "is_missing": _Function(
        _is_missing,
        "is_missing(x)",
        (_A,),
        _B,
        1,
        unknown_aware=True,
        doc="True when x is missing (UNKNOWN), else False; never UNKNOWN itself",
    ),
    "coalesce": _Function(
        _coalesce,
        "coalesce(x, ...)",
        (_A,),
        None,
        1,
        variadic=_A,
        unknown_aware=True,
        doc="the first argument that is not missing",
    ),
    "sum_missing_as_zero": _Function(
        _sum_missing_as_zero,
        "sum_missing_as_zero(max_missing, x, ...)",
        (_N, _N),
        _N,
        2,
        variadic=_N,
        unknown_aware=True,
        doc="sum counting up to max_missing missing values as 0; UNKNOWN beyond that",
    ),
}


# --------------------------------------------------------------------------------------------
# Evaluation


def _operator_in(item: Any, container: Any) -> bool:
    return item in container


def _operator_not_in(item: Any, container: Any) -> bool:
    return item not in container


_OPERATORS: Final = {
    op: DEFAULT_OPERATORS[op]
    for op in (
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.Div,
        ast.FloorDiv,
        ast.Mod,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.USub,
        ast.UAdd,
    )
} | {ast.In: _operator_in, ast.NotIn: _operator_not_in}


def _truth(value: Any, source: str) -> bool | _Unknown:
    if value is UNKNOWN or isinstance(value, bool):
        return value
    raise EvaluationError(f"{source!r} is {value!r}, not a truth value (True or False)")


class _KleeneEvaluator(SimpleEval):
    """simpleeval with missing values as UNKNOWN and Kleene's three-valued logic."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(_OPERATORS), functions={}, names={})
        self._values = values
        self.nodes[ast.Tuple] = self._eval_sequence
        self.nodes[ast.List] = self._eval_sequence

    def _source(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.expr, node) or ast.unparse(node)

    def _lookup(self, name: str) -> Any:
        value = self._values.get(name)
        return UNKNOWN if value is None else value

    def _eval_name(self, node: ast.Name) -> Any:
        return self._lookup(node.id)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        return self._lookup(_dotted(node))

    def _eval_sequence(self, node: ast.Tuple | ast.List) -> tuple[Any, ...]:
        return tuple(self._eval(element) for element in node.elts)

    def _eval_boolop(self, node: ast.BoolOp) -> bool | _Unknown:
        conjunction = isinstance(node.op, ast.And)
        unknown = False
        for operand in node.values:
            value = _truth(self._eval(operand), self._source(operand))
            if value is UNKNOWN:
                unknown = True
            elif value is not conjunction:
                return value  # False in an `and`, True in an `or`: decided
        return UNKNOWN if unknown else conjunction

    def _eval_compare(self, node: ast.Compare) -> bool | _Unknown:
        left = self._eval(node.left)
        result: bool | _Unknown = True
        for operation, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._eval(comparator)
            if left is UNKNOWN or right is UNKNOWN:
                result = UNKNOWN
            elif not self._apply(operation, left, right, node):
                return False
            left = right
        return result

    def _eval_unaryop(self, node: ast.UnaryOp) -> Any:
        operand = self._eval(node.operand)
        if isinstance(node.op, ast.Not):
            value = _truth(operand, self._source(node.operand))
            return UNKNOWN if value is UNKNOWN else not value
        if operand is UNKNOWN:
            return UNKNOWN
        return self._apply(node.op, operand, None, node)

    def _eval_binop(self, node: ast.BinOp) -> Any:
        left, right = self._eval(node.left), self._eval(node.right)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        try:
            return self._apply(node.op, left, right, node)
        except EvaluationError as error:
            if isinstance(error.__cause__, ZeroDivisionError):
                return UNKNOWN
            raise

    def _eval_ifexp(self, node: ast.IfExp) -> Any:
        test = _truth(self._eval(node.test), self._source(node.test))
        if test is UNKNOWN:
            return UNKNOWN
        return self._eval(node.body if test else node.orelse)

    def _eval_call(self, node: ast.Call) -> Any:
        function = FUNCTIONS[node.func.id]  # type: ignore[attr-defined]
        arguments = [self._eval(argument) for argument in node.args]
        if not function.unknown_aware and any(value is UNKNOWN for value in arguments):
            return UNKNOWN
        try:
            return function.impl(*arguments)
        except (TypeError, ValueError) as error:
            raise EvaluationError(f"{self._source(node)}: {error}") from error

    def _apply(self, operation: ast.AST, left: Any, right: Any, node: ast.AST) -> Any:
        operator = self.operators[type(operation)]
        try:
            return operator(left) if isinstance(node, ast.UnaryOp) else operator(left, right)
        except (TypeError, ValueError, ArithmeticError) as error:
            message = f"{self._source(node)}: cannot compute with {left!r} and {right!r}"
            raise EvaluationError(message) from error


# --------------------------------------------------------------------------------------------
# Parsing and checking


_ALLOWED_BINOPS: Final = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_ALLOWED_COMPARISONS: Final = (
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
)
_CONSTRUCT_NAMES: Final = {
    ast.Pow: "the power operator **",
    ast.Is: "`is` (use == or is_missing())",
    ast.IsNot: "`is not` (use != or is_missing())",
    ast.Lambda: "lambda",
    ast.Subscript: "indexing []",
    ast.Dict: "dictionaries",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "the := operator",
}


def _dotted(node: ast.Attribute) -> str:
    return f"{node.value.id}.{node.attr}"  # type: ignore[attr-defined]


class _SyntaxChecker(ast.NodeVisitor):
    """Refuses every construct outside the language and collects names and functions."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def refuse(self, node: ast.AST, what: str | None = None) -> None:
        construct = what or _CONSTRUCT_NAMES.get(type(node)) or type(node).__name__
        raise _Refused(f"{construct} is not allowed in study-file expressions")

    def generic_visit(self, node: ast.AST) -> None:
        allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd)
        if not isinstance(node, allowed):
            self.refuse(node)
        super().generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if not isinstance(node.op, _ALLOWED_BINOPS):
            self.refuse(node.op)
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Invert):
            self.refuse(node.op, "the ~ operator")
        self.visit(node.operand)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        for operation, comparator in zip(node.ops, node.comparators, strict=True):
            if not isinstance(operation, _ALLOWED_COMPARISONS):
                self.refuse(operation)
            if isinstance(operation, ast.In | ast.NotIn):
                if not isinstance(comparator, ast.Tuple | ast.List):
                    self.refuse(comparator, "`in` with anything but a literal tuple (a, b, …)")
                for element in comparator.elts:
                    if not isinstance(element, ast.Constant):
                        self.refuse(element, "a non-literal inside an `in` tuple")
                    self.visit(element)
            else:
                self.visit(comparator)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            self.refuse(node.func, "calling anything but a function name")
        if node.keywords:
            self.refuse(node, "keyword arguments")
        self.functions.add(node.func.id)  # type: ignore[attr-defined]
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                self.refuse(argument, "*arguments")
            self.visit(argument)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            self.refuse(node, f"a name starting with _ ({node.id})")
        self.names.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.value, ast.Name):
            self.refuse(node, "a dotted name with more than one dot")
        if node.attr.startswith("_") or node.value.id.startswith("_"):  # type: ignore[attr-defined]
            self.refuse(node, f"a name starting with _ ({_dotted(node)})")
        self.names.add(_dotted(node))

    def visit_Constant(self, node: ast.Constant) -> None:
        if node.value is None:
            self.refuse(node, "None (test missing values with is_missing(x))")
        if not isinstance(node.value, bool | int | float | str):
            self.refuse(node, f"the literal {node.value!r}")


class _Refused(Exception):
    pass


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression, ready to be checked and evaluated.

    Build it with :func:`compile_expression` (parse and check) or :func:`parse_expression`
    (parse only). Equality and hashing use the text and the bound constants.

    Attributes
    ----------
    text : str
        The expression as written.
    names : frozenset of str
        The names it reads from the values given to :meth:`evaluate` (bound constants excluded).
    functions : frozenset of str
        The functions it calls.
    constants : Mapping
        Values bound at load time (the study's ``settings.*``), which :meth:`evaluate` adds to
        the values it is given.
    """

    text: str
    tree: ast.expr = field(repr=False)
    names: frozenset[str]
    functions: frozenset[str]
    constants: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.text == other.text and dict(self.constants) == dict(other.constants)

    def __hash__(self) -> int:
        return hash(self.text)

    def __str__(self) -> str:
        return self.text

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The value of the expression over ``values``, or :data:`UNKNOWN`.

        Parameters
        ----------
        values : Mapping
            Value of each name; an absent name or a ``None`` value is UNKNOWN.

        Raises
        ------
        EvaluationError
            A value of a type the expression cannot use (a text where a number is needed…).
        """
        scope: Mapping[str, Any] = (
            ChainMap(dict(self.constants), values) if self.constants else values
        )
        evaluator = _KleeneEvaluator(scope)
        return evaluator.eval(self.text, previously_parsed=self.tree)

    def check(
        self,
        names: Collection[str] | Mapping[str, NameType],
        *,
        expect: ValueType | None = None,
    ) -> list[ExpressionProblem]:
        """Every problem of this expression against the names it may use.

        Parameters
        ----------
        names : set of str or Mapping of str to NameType
            The names the expression may read. With types, type errors are found too.
        expect : ValueType, optional
            The type the expression must have (BOOLEAN for a rule).

        Returns
        -------
        list of ExpressionProblem
            Empty when the expression is fine.
        """
        checker = _TypeChecker(self, names)
        result = checker.infer(self.tree)
        if expect is not None and result.type not in (expect, ValueType.ANY):
            checker.problem(None, f"must be a {expect} but is a {result.type}")
        return checker.problems


@dataclass(frozen=True)
class _Typed:
    type: ValueType
    choices: frozenset[str] | None = None
    never: bool = False
    partial: bool = False


_ANY: Final = _Typed(ValueType.ANY)


def _type_of_value(value: Any) -> _Typed:
    if isinstance(value, bool):
        return _Typed(ValueType.BOOLEAN)
    if isinstance(value, int | float):
        return _Typed(ValueType.NUMBER)
    if isinstance(value, str):
        return _Typed(ValueType.TEXT)
    if isinstance(value, dt.date):
        return _Typed(ValueType.DATE)
    return _ANY


class _TypeChecker:
    """Infers the static type of each node, collecting every problem on the way."""

    def __init__(self, expression: Expression, names: Collection[str] | Mapping[str, NameType]):
        self.expression = expression
        self.names = names
        self.typed = isinstance(names, Mapping)
        self.problems: list[ExpressionProblem] = []

    def problem(self, name: str | None, message: str) -> None:
        self.problems.append(ExpressionProblem(name, message))

    def source(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.expression.text, node) or ast.unparse(node)

    def infer(self, node: ast.AST) -> _Typed:
        method = getattr(self, f"infer_{type(node).__name__}")
        return method(node)

    def infer_Constant(self, node: ast.Constant) -> _Typed:
        return _type_of_value(node.value)

    def infer_Name(self, node: ast.Name) -> _Typed:
        return self.lookup(node.id)

    def infer_Attribute(self, node: ast.Attribute) -> _Typed:
        return self.lookup(_dotted(node))

    def lookup(self, name: str) -> _Typed:
        if name in self.expression.constants:
            return _type_of_value(self.expression.constants[name])
        if name not in self.names:
            if name.startswith("settings."):
                self.problem(name, f"unknown setting {name[len('settings.') :]!r}")
            else:
                self.problem(name, f"unknown name {name!r}{_suggestion(name, self.names)}")
            return _ANY
        if not self.typed:
            return _ANY
        declared = self.names[name]  # type: ignore[index]
        return _Typed(declared.type, declared.choices, declared.never, declared.partial)

    def infer_BoolOp(self, node: ast.BoolOp) -> _Typed:
        keyword = "and" if isinstance(node.op, ast.And) else "or"
        for operand in node.values:
            self.expect_boolean(operand, f"an operand of `{keyword}`")
        return _Typed(ValueType.BOOLEAN)

    def infer_UnaryOp(self, node: ast.UnaryOp) -> _Typed:
        if isinstance(node.op, ast.Not):
            self.expect_boolean(node.operand, "the operand of `not`")
            return _Typed(ValueType.BOOLEAN)
        self.expect_number(node.operand, "the operand of a sign")
        return _Typed(ValueType.NUMBER)

    def infer_BinOp(self, node: ast.BinOp) -> _Typed:
        self.expect_number(node.left, "arithmetic")
        self.expect_number(node.right, "arithmetic")
        return _Typed(ValueType.NUMBER)

    def infer_IfExp(self, node: ast.IfExp) -> _Typed:
        self.expect_boolean(node.test, "the test of `if … else`")
        return self.common([node.body, node.orelse], "the two branches of `if … else`")

    def infer_Compare(self, node: ast.Compare) -> _Typed:
        left_node, left = node.left, self.infer(node.left)
        for operation, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(operation, ast.In | ast.NotIn):
                self.check_membership(left_node, left, right_node)  # type: ignore[arg-type]
                continue
            right = self.infer(right_node)
            self.check_comparison(operation, (left_node, left), (right_node, right))
            left_node, left = right_node, right
        return _Typed(ValueType.BOOLEAN)

    def infer_Call(self, node: ast.Call) -> _Typed:
        name = node.func.id  # type: ignore[attr-defined]
        function = FUNCTIONS.get(name)
        arguments = [self.infer(argument) for argument in node.args]
        if function is None:
            known = ", ".join(sorted(FUNCTIONS))
            self.problem(
                name,
                f"unknown function {name!r}{_suggestion(name, FUNCTIONS)} (functions: {known})",
            )
            return _ANY
        most = len(function.params) if function.variadic is None else None
        if len(arguments) < function.min_args or (most is not None and len(arguments) > most):
            self.problem(name, f"{function.signature} called with {len(arguments)} argument(s)")
            return _Typed(function.result or ValueType.ANY)
        for position, (argument_node, argument) in enumerate(
            zip(node.args, arguments, strict=True)
        ):
            wanted = (
                function.params[position] if position < len(function.params) else function.variadic
            )
            if wanted in (ValueType.ANY, None) or argument.type in (wanted, ValueType.ANY):
                continue
            self.problem(
                None,
                f"argument {self.source(argument_node)!r} of {function.signature} "
                f"is a {argument.type}, not a {wanted}",
            )
        never_ok = name in ("days_between", "weeks_since", "is_before")
        date_function = name in ("days_between", "weeks_since", "age_years", "is_before")
        for position, argument in enumerate(arguments):
            role = f"argument {position + 1} of {name}()"
            if name == "is_missing":
                continue
            if argument.never and not (never_ok and position == 0):
                self.never_misused(node.args[position], role)
            elif argument.partial and not date_function:
                self.never_misused(node.args[position], role)
        if function.result is None:
            return self.common(node.args, f"the arguments of {name}()", inferred=arguments)
        return _Typed(function.result)

    def infer_Tuple(self, node: ast.Tuple) -> _Typed:
        return _ANY

    infer_List = infer_Tuple

    def expect_boolean(self, node: ast.AST, role: str) -> None:
        typed = self.infer(node)
        if typed.type not in (ValueType.BOOLEAN, ValueType.ANY):
            self.problem(
                None, f"{role} must be True or False, but {self.source(node)!r} is a {typed.type}"
            )

    def expect_number(self, node: ast.AST, role: str) -> None:
        typed = self.infer(node)
        if typed.never or typed.partial:
            self.never_misused(node, role)
        elif typed.type not in (ValueType.NUMBER, ValueType.ANY):
            hint = " (use days_between() for dates)" if typed.type == ValueType.DATE else ""
            self.problem(
                None, f"{role} needs numbers, but {self.source(node)!r} is a {typed.type}{hint}"
            )

    def never_misused(self, node: ast.AST, role: str) -> None:
        name = self.source(node)
        typed = self.infer(node)
        if typed.never:
            self.problem(
                name,
                f"{name!r} may be 'never' and can only be the first argument of "
                f"weeks_since() or days_between() (found in {role})",
            )
        else:
            self.problem(
                name,
                f"{name!r} may be a partial date and can only be used through "
                f"days_between(), weeks_since() or age_years() (found in {role})",
            )

    def common(
        self, nodes: list[ast.expr], role: str, inferred: list[_Typed] | None = None
    ) -> _Typed:
        types = inferred if inferred is not None else [self.infer(node) for node in nodes]
        concrete = {typed.type for typed in types} - {ValueType.ANY}
        if len(concrete) > 1:
            listed = " and ".join(sorted(concrete))
            self.problem(None, f"{role} mix {listed}")
            return _ANY
        return _Typed(concrete.pop()) if concrete else _ANY

    def check_comparison(
        self, operation: ast.cmpop, left: tuple[ast.expr, _Typed], right: tuple[ast.expr, _Typed]
    ) -> None:
        for node, typed in (left, right):
            if typed.never or typed.partial:
                self.never_misused(node, "a comparison")
                return
        (left_node, left_type), (right_node, right_type) = left, right
        kinds = {left_type.type, right_type.type} - {ValueType.ANY}
        text = f"{self.source(left_node)!r} and {self.source(right_node)!r}"
        if len(kinds) > 1:
            self.problem(
                None, f"cannot compare {text}: a {left_type.type} with a {right_type.type}"
            )
            return
        ordering = not isinstance(operation, ast.Eq | ast.NotEq)
        if ordering and kinds & {ValueType.TEXT, ValueType.BOOLEAN}:
            self.problem(None, f"cannot order {text}: only numbers and dates have an order")
            return
        self.check_code(left_type, right_node)
        self.check_code(right_type, left_node)

    def check_membership(self, left_node: ast.expr, left: _Typed, options: ast.Tuple) -> None:
        if left.never or left.partial:
            self.never_misused(left_node, "an `in` test")
            return
        for element in options.elts:
            element_type = _type_of_value(element.value)  # type: ignore[attr-defined]
            if (
                ValueType.ANY not in (left.type, element_type.type)
                and left.type != element_type.type
            ):
                self.problem(
                    None,
                    f"{self.source(left_node)!r} is a {left.type} but the `in` tuple "
                    f"holds {self.source(element)!r}, a {element_type.type}",
                )
            self.check_code(left, element)

    def check_code(self, typed: _Typed, other: ast.expr) -> None:
        if typed.choices is None or not isinstance(other, ast.Constant):
            return
        if isinstance(other.value, str) and other.value not in typed.choices:
            codes = ", ".join(sorted(typed.choices))
            self.problem(other.value, f"{other.value!r} is not one of the codes ({codes})")


def _suggestion(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_expression(text: str, *, constants: Mapping[str, Any] | None = None) -> Expression:
    """Parse an expression and refuse constructs outside the language; names are not checked.

    Parameters
    ----------
    text : str
        The expression.
    constants : Mapping, optional
        Values bound now (``{"settings.x": 3}``); they are no longer names to supply.

    Raises
    ------
    ExpressionError
        A syntax error or a construct the language does not have.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expression", [ExpressionProblem(None, "the expression is empty")])
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        where = ""
        if error.offset:
            line = f"line {error.lineno} of the expression, " if (error.lineno or 1) > 1 else ""
            where = f" at {line}column {error.offset}"
        message = f"syntax error{where}: {error.msg} in {source!r}"
        raise ExpressionError("expression", [ExpressionProblem(None, message)]) from None
    checker = _SyntaxChecker()
    try:
        checker.visit(tree)
    except _Refused as refused:
        raise ExpressionError("expression", [ExpressionProblem(None, str(refused))]) from None
    bound = dict(constants or {})
    used = {name: bound[name] for name in checker.names if name in bound}
    return Expression(
        text=source,
        tree=tree.body,
        names=frozenset(checker.names - used.keys()),
        functions=frozenset(checker.functions),
        constants=used,
    )


def compile_expression(
    text: str,
    names: Collection[str] | Mapping[str, NameType],
    *,
    where: str,
    constants: Mapping[str, Any] | None = None,
    expect: ValueType | None = None,
) -> Expression:
    """Parse an expression and check every name, function and type it uses.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"weeks_since(last_biologic, screening_date) < 16"``.
    names : set of str or Mapping of str to NameType
        The names it may read; with :class:`NameType` values, types are checked too.
    where : str
        Where the expression comes from, used in error messages.
    constants : Mapping, optional
        Values bound at compile time (``settings.*``).
    expect : ValueType, optional
        The type the expression must have.

    Raises
    ------
    ExpressionError
        With every problem found.

    Examples
    --------
    >>> rule = compile_expression("nasa_total >= 5", {"nasa_total"}, where="INC04")
    >>> rule.evaluate({"nasa_total": 7}), rule.evaluate({})
    (True, UNKNOWN)
    """
    try:
        expression = parse_expression(text, constants=constants)
    except ExpressionError as error:
        raise ExpressionError(where, error.problems) from None
    problems = expression.check(names, expect=expect)
    if problems:
        raise ExpressionError(where, problems)
    return expression
