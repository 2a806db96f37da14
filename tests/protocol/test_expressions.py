"""The expression language: Kleene logic, date functions and their conventions, load-time checks."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import pickle

import pytest

from trialdesk.protocol.expressions import (
    NEVER,
    UNKNOWN,
    EvaluationError,
    ExpressionError,
    NameType,
    ValueType,
    age_years,
    compile_expression,
    days_between,
    is_before,
    parse_expression,
    weeks_since,
)

T, F, U = True, False, UNKNOWN
TRUTH = (T, F, U)


def value(text: str, **values: object) -> object:
    return compile_expression(text, set(values) | {"a", "b", "c", "x", "y"}, where="test").evaluate(
        values
    )


def given(v: object) -> dict[str, object]:
    """Values for a name: UNKNOWN is expressed as an absent key (the way callers pass it)."""
    return {} if v is UNKNOWN else {"v": v}


def kleene_and(a: object, b: object) -> object:
    if a is F or b is F:
        return F
    return U if U in (a, b) else T


def kleene_or(a: object, b: object) -> object:
    if a is T or b is T:
        return T
    return U if U in (a, b) else F


# --- three-valued truth tables ------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), list(itertools.product(TRUTH, TRUTH)))
def test_and_is_kleene(a, b):
    values = {k: v for k, v in (("a", a), ("b", b)) if v is not UNKNOWN}
    assert value("a and b", **values) is kleene_and(a, b)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(TRUTH, TRUTH)))
def test_or_is_kleene(a, b):
    values = {k: v for k, v in (("a", a), ("b", b)) if v is not UNKNOWN}
    assert value("a or b", **values) is kleene_or(a, b)


@pytest.mark.parametrize(("a", "expected"), [(T, F), (F, T), (U, U)])
def test_not(a, expected):
    values = {} if a is UNKNOWN else {"a": a}
    assert value("not a", **values) is expected


@pytest.mark.parametrize(("a", "b", "c"), list(itertools.product(TRUTH, TRUTH, TRUTH)))
def test_three_operands_and_de_morgan(a, b, c):
    values = {k: v for k, v in (("a", a), ("b", b), ("c", c)) if v is not UNKNOWN}
    assert value("a and b and c", **values) is kleene_and(kleene_and(a, b), c)
    assert value("a or b or c", **values) is kleene_or(kleene_or(a, b), c)
    assert value("not (a and b)", **values) is value("not a or not b", **values)
    assert value("not (a or b)", **values) is value("not a and not b", **values)


def test_none_is_unknown_like_an_absent_name():
    assert value("a or b", a=None, b=False) is UNKNOWN
    assert value("x > 1", x=None) is UNKNOWN


def test_a_decided_operand_stops_evaluation():
    # `x / 0` is never computed once `a` is False (and would be UNKNOWN anyway)
    assert value("a and x / y > 1", a=False, x=1, y=0) is F
    assert value("a or x / y > 1", a=True, x=1, y=0) is T


@pytest.mark.parametrize(
    "text",
    ["x + 1", "x - 1", "x * 2", "x / 2", "x // 2", "x % 2", "-x", "x > 1", "x == 1", "x != 1",
     "x in (1, 2)", "x not in (1, 2)", "abs(x)", "round(x)", "max(x, 1)", "sum(x, 1)",
     "days_between(x, y)", "weeks_since(x, y)", "age_years(x, y)", "1 if a else 2"],
)  # fmt: skip
def test_unknown_propagates_through_arithmetic_comparisons_and_calls(text):
    assert value(text) is UNKNOWN


def test_chained_comparison_is_the_and_of_its_links():
    assert value("0 <= x <= 10", x=5) is T
    assert value("0 <= x <= 10", x=11) is F
    assert value("x <= 5 <= y", x=11) is F  # a False link decides, whatever the others
    assert value("x <= 5 <= y", x=1) is UNKNOWN


def test_if_else_with_an_unknown_test_is_unknown():
    assert value("x if a else y", x=1, y=2, a=True) == 1
    assert value("x if a else y", x=1, y=2, a=False) == 2
    assert value("x if a else y", x=1, y=2) is UNKNOWN


def test_missingness_functions_see_unknown():
    assert value("is_missing(x)") is T
    assert value("is_missing(x)", x=0) is F
    assert value("coalesce(x, y, 3)", y=2) == 2
    assert value("coalesce(x, y)") is UNKNOWN
    assert value("sum_missing_as_zero(1, x, y, a)", x=1, y=2) == 3
    assert value("sum_missing_as_zero(1, x, y, a)", x=1) is UNKNOWN


def test_unknown_has_no_truth_value_and_survives_pickling():
    with pytest.raises(TypeError):
        bool(UNKNOWN)
    assert pickle.loads(pickle.dumps(UNKNOWN)) is UNKNOWN
    assert pickle.loads(pickle.dumps(NEVER)) is NEVER
    assert repr(UNKNOWN) == "UNKNOWN"


def test_round_is_half_away_from_zero():
    assert value("round(x)", x=2.5) == 3
    assert value("round(x)", x=-2.5) == -3
    assert value("round(x, 1)", x=1.25) == 1.3


def test_division_by_zero_is_unknown():
    assert value("x / y", x=1, y=0) is UNKNOWN


def test_a_value_of_the_wrong_type_is_an_evaluation_error():
    with pytest.raises(EvaluationError, match="x"):
        value("x + 1", x="abc")
    with pytest.raises(EvaluationError, match="truth value"):
        value("a and b", a=1, b=True)
    with pytest.raises(EvaluationError, match="not a date"):
        value("days_between(x, y)", x="yesterday", y=dt.date(2024, 1, 1))


# --- dates: birthday, washout, never -----------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (dt.date(2006, 3, 15), dt.date(2024, 3, 14), 17),
        (dt.date(2006, 3, 15), dt.date(2024, 3, 15), 18),  # reached on the birthday
        (dt.date(2006, 3, 15), dt.date(2024, 3, 16), 18),
        (dt.date(2006, 12, 31), dt.date(2024, 12, 30), 17),
        (dt.date(2006, 12, 31), dt.date(2024, 12, 31), 18),
        (dt.date(2004, 2, 29), dt.date(2022, 2, 28), 17),  # leap-day birthday, common year
        (dt.date(2004, 2, 29), dt.date(2022, 3, 1), 18),
        (dt.date(2004, 2, 29), dt.date(2024, 2, 29), 20),
    ],
)
def test_age_is_reached_on_the_birthday(birth, on, age):
    assert age_years(birth, on) == age
    rule = compile_expression("age_years(b, s) >= 18", {"b", "s"}, where="INC01")
    assert rule.evaluate({"b": birth, "s": on}) is (age >= 18)


@pytest.mark.parametrize("weeks", [1, 2, 4, 8, 16])
def test_washout_boundary_exactly_7n_days_is_allowed(weeks):
    rule = compile_expression("weeks_since(last, ref) < N", {"last", "ref", "N"}, where="EXC")
    reference = dt.date(2024, 6, 1)
    for days, excluded in ((7 * weeks - 1, True), (7 * weeks, False), (7 * weeks + 1, False)):
        last = reference - dt.timedelta(days=days)
        assert rule.evaluate({"last": last, "ref": reference, "N": weeks}) is excluded, days


def test_a_last_use_on_the_reference_day_or_after_it_excludes():
    rule = compile_expression("weeks_since(last, ref) < 2", {"last", "ref"}, where="EXC")
    reference = dt.date(2024, 6, 1)
    assert rule.evaluate({"last": reference, "ref": reference}) is T
    assert rule.evaluate({"last": reference + dt.timedelta(days=3), "ref": reference}) is T


@pytest.mark.parametrize("never", [NEVER, "never"])
def test_never_used_never_excludes(never):
    rule = compile_expression("weeks_since(last, ref) < 16", {"last", "ref"}, where="EXC05")
    assert rule.evaluate({"last": never, "ref": dt.date(2024, 6, 1)}) is F
    assert weeks_since(never, dt.date(2024, 6, 1)) == math.inf
    assert days_between(never, dt.date(2024, 6, 1)) == math.inf


def test_never_is_not_a_reference_date():
    with pytest.raises(EvaluationError, match="never"):
        weeks_since(dt.date(2024, 1, 1), NEVER)
    with pytest.raises(EvaluationError, match="never"):
        age_years(NEVER, dt.date(2024, 1, 1))


def test_dates_accept_iso_text_datetimes_and_treat_partial_dates_as_unknown():
    assert days_between("2024-01-01", dt.datetime(2024, 1, 15, 23, 59)) == 14
    assert days_between("2024-01", dt.date(2024, 2, 1)) is UNKNOWN
    assert days_between("2024", dt.date(2024, 2, 1)) is UNKNOWN


# --- load-time checks --------------------------------------------------------------------------


def problems_of(text: str, names: object) -> list[tuple[str | None, str]]:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, names, where="rule R1")  # type: ignore[arg-type]
    assert "rule R1" in str(caught.value)
    return [(problem.name, problem.message) for problem in caught.value.problems]


def test_unknown_names_are_each_reported_with_a_suggestion():
    problems = problems_of("last_biologics > 1 and nasa_totl > 5", {"last_biologic", "nasa_total"})
    assert [name for name, _ in problems] == ["last_biologics", "nasa_totl"]
    assert "did you mean 'last_biologic'?" in problems[0][1]


def test_unknown_function_is_reported_by_name():
    [(name, message)] = problems_of("weeks_between(a, b) < 2", {"a", "b"})
    assert name == "weeks_between"
    assert "unknown function" in message


def test_wrong_number_of_arguments():
    [(name, message)] = problems_of("age_years(a) >= 18", {"a"})
    assert name == "age_years"
    assert "1 argument" in message


@pytest.mark.parametrize("text", ["x >", "(x", "x = 1", "x; y", "if x: y"])
def test_syntax_errors(text):
    [(_, message)] = problems_of(text, {"x", "y"})
    assert "syntax error" in message


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("__import__('os')", "unknown function"),
        ("x.__class__", "starting with _"),
        ("__builtins__", "starting with _"),
        ("a.b.c", "more than one dot"),
        ("x[0]", "indexing"),
        ("lambda: 1", "lambda"),
        ("f'{x}'", "f-strings"),
        ("x ** 2", "power"),
        ("[y for y in x]", "ListComp"),
        ("x is None", "`is`"),
        ("x == None", "None"),
        ("x in y", "literal tuple"),
        ("int(x)", "unknown function"),
        ("sum(*x)", "arguments"),
        ("round(x, ndigits=1)", "keyword"),
        ("~x", "~"),
        ("{'a': 1}", "dictionaries"),
    ],
)
def test_constructs_outside_the_language_are_refused(text, construct):
    problems = problems_of(text, {"x", "y", "a.b"})
    assert construct in " ".join(message for _, message in problems)


def test_dotted_names_and_bound_settings():
    rule = compile_expression(
        "AE.records == 0 and x > settings.limit",
        {"AE.records", "x"},
        where="check",
        constants={"settings.limit": 8},
    )
    assert rule.names == {"AE.records", "x"}
    assert rule.evaluate({"AE.records": 0, "x": 9}) is T
    assert rule.evaluate({"AE.records": 0, "x": 8}) is F
    [(name, message)] = problems_of("x > settings.limt", {"x"})
    assert (name, message) == ("settings.limt", "unknown setting 'limt'")


TYPED = {
    "score": NameType(ValueType.NUMBER),
    "visit_date": NameType(ValueType.DATE),
    "sex": NameType(ValueType.TEXT, frozenset({"F", "M"})),
    "smoker": NameType(ValueType.BOOLEAN),
    "last_use": NameType(ValueType.DATE, never=True),
    "onset": NameType(ValueType.DATE, partial=True),
}


@pytest.mark.parametrize(
    ("text", "name", "fragment"),
    [
        ('sex == "female"', "female", "is not one of the codes (F, M)"),
        ('sex in ("F", "X")', "X", "is not one of the codes"),
        ("visit_date + 1 > visit_date", None, "use days_between()"),
        ("score > visit_date", None, "cannot compare"),
        ("sex > 'F'", None, "cannot order"),
        ("score and smoker", None, "must be True or False"),
        ("last_use < visit_date", "last_use", "may be 'never'"),
        ("weeks_since(visit_date, last_use) < 2", "last_use", "may be 'never'"),
        ("onset < visit_date", "onset", "partial date"),
        ("days_between(score, visit_date) > 1", None, "is a number, not a date"),
    ],
)
def test_type_errors_are_found_at_load(text, name, fragment):
    problems = problems_of(text, TYPED)
    assert any(n == name and fragment in message for n, message in problems), problems


def test_well_typed_rules_pass():
    for text in (
        'sex == "F" and not smoker',
        "weeks_since(last_use, visit_date) < 2",
        "days_between(onset, visit_date) < 0",
        "is_missing(last_use)",
        "score if smoker else 0",
    ):
        compile_expression(text, TYPED, where="ok")


def test_a_rule_must_have_the_expected_type():
    with pytest.raises(ExpressionError, match="must be a boolean but is a number"):
        compile_expression("score + 1", TYPED, where="INC", expect=ValueType.BOOLEAN)


def test_parse_keeps_text_names_and_equality():
    first = parse_expression("  x > 1 ")
    assert first.text == "x > 1"
    assert first == parse_expression("x > 1")
    assert hash(first) == hash(parse_expression("x > 1"))
    assert first != parse_expression("x > 2")
    assert first.functions == frozenset()


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2025", "2026-03-14", True),
        ("2025-12", "2026", True),
        ("2026-02", "2026-03", True),
        ("2026-03", "2026-03-14", UNKNOWN),
        ("2026-03-14", "2026-03", UNKNOWN),
        ("2026-03-31", "2026-03", False),  # the 31st cannot be before any day of March
        ("2026-04", "2026-03", False),
        ("2024-02", "2024-03-01", True),  # leap February: its 29th is still before 1 March
        (dt.date(2026, 3, 13), dt.date(2026, 3, 14), True),
        (dt.date(2026, 3, 14), dt.date(2026, 3, 14), False),
        ("never", "2026", True),
    ],
)
def test_is_before_reads_partial_dates_as_ranges(first, second, expected):
    assert is_before(first, second) is expected


def test_is_before_refuses_an_impossible_month():
    with pytest.raises(EvaluationError, match="'2026-13' is not a date"):
        is_before("2026-13", "2026")
