"""Partial dates: an adverse event that began "in March 2025", day unknown.

Format
------
A partial date is written year first, with ``UN`` or ``UNK`` (unknown) for a missing month or
day, or with the unknown parts left off (ISO 8601 reduced precision):

==================  ==============================  =================
written             meaning                         stored (canonical)
==================  ==============================  =================
``2025-03-14``      14 March 2025                   ``2025-03-14``
``2025-03``         some day of March 2025          ``2025-03``
``2025-03-UN``      same                            ``2025-03``
``2025``            some day of 2025                ``2025``
``2025-UN-UN``      same                            ``2025``
``2025-UN``         same                            ``2025``
``2025-UNK-UNK``    same                            ``2025``
``2025-03-UNK``     some day of March 2025          ``2025-03``
==================  ==============================  =================

``UN`` and ``UNK`` are accepted in either case (``un``). The canonical form is what the capture
forms store for the study file's ``partial: true`` date items (``YYYY``, ``YYYY-MM``,
``YYYY-MM-DD``): :meth:`trialdesk.protocol.schema.Item.parse` reads every shape above through
:func:`parse_partial_date` and keeps the canonical text, so a stored value always reads back.
Pure Python; ``trialdesk.safety.partial_dates`` re-exports it for the safety code.

Validation
----------
Refused, with a :class:`PartialDateError` naming the field and the value: anything but the
shapes above; a year outside 1900–2100; a month outside 01–12; a day that does not exist in its
month (``2025-02-29``); a known day in an unknown month (``2025-UN-14``); an unknown year
(``UNK-03-14``).

Comparisons use the interval a partial date covers: :meth:`PartialDate.earliest` and
:meth:`PartialDate.latest`. Two partial dates *may be the same day* when their intervals overlap
(:meth:`PartialDate.overlaps`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["PartialDate", "PartialDateError", "parse_partial_date"]

MIN_YEAR = 1900
MAX_YEAR = 2100

_SHAPE = re.compile(r"(?P<year>\d{4})(?:-(?P<month>\d{2}|UNK?)(?:-(?P<day>\d{2}|UNK?))?)?")
_UNKNOWN = (None, "UN", "UNK")


class PartialDateError(ValueError):
    """A text that is not a valid (partial) date; the message names the field and the value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        super().__init__(f"{field}: {value!r} {problem}")
        self.field = field
        self.value = value
        self.problem = problem


@dataclass(frozen=True, order=True)
class PartialDate:
    """A date of which the month and the day may be unknown (``None``)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __str__(self) -> str:
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
            if self.day is not None:
                text += f"-{self.day:02d}"
        return text

    @property
    def complete(self) -> bool:
        return self.day is not None

    def earliest(self) -> dt.date:
        """The first day the partial date may be."""
        return dt.date(self.year, self.month or 1, self.day or 1)

    def latest(self) -> dt.date:
        """The last day the partial date may be."""
        month = self.month or 12
        day = self.day or calendar.monthrange(self.year, month)[1]
        return dt.date(self.year, month, day)

    def overlaps(self, other: PartialDate) -> bool:
        """Whether the two may be the same day."""
        return self.earliest() <= other.latest() and other.earliest() <= self.latest()


def parse_partial_date(value: object, field: str = "date") -> PartialDate:
    """Read a (partial) date written as in the module docstring, or a :class:`datetime.date`.

    Raises
    ------
    PartialDateError
        Naming ``field`` and the value, for every refusal listed in the module docstring.
    """
    if isinstance(value, dt.datetime):
        raise PartialDateError(field, value, "is a date and time, not a date")
    if isinstance(value, dt.date):
        return PartialDate(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise PartialDateError(field, value, "is not a date")
    match = _SHAPE.fullmatch(value.strip().upper())
    if match is None:
        raise PartialDateError(
            field,
            value,
            "is not a date (YYYY-MM-DD, YYYY-MM, YYYY, with UN or UNK for unknown parts)",
        )
    year = int(match["year"])
    month_text, day_text = match["month"], match["day"]
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PartialDateError(field, value, f"has a year outside {MIN_YEAR}–{MAX_YEAR}")
    if month_text in _UNKNOWN:
        if day_text not in _UNKNOWN:
            raise PartialDateError(field, value, "has a day but no month")
        return PartialDate(year)
    month = int(month_text)
    if not 1 <= month <= 12:
        raise PartialDateError(field, value, "has a month outside 01–12")
    if day_text in _UNKNOWN:
        return PartialDate(year, month)
    day = int(day_text)
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise PartialDateError(field, value, "has a day that does not exist in its month")
    return PartialDate(year, month, day)
