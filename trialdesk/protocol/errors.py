"""The exceptions of the protocol package and the :class:`Problem` a study file is refused with.

Every exception derives from :class:`ProtocolError`, so callers that only want to know "is this
study usable?" catch one class. Messages name the offending field and value.
"""

from __future__ import annotations

from dataclasses import dataclass


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`trialdesk.protocol`."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a study file.

    Parameters
    ----------
    file : str
        The file, as the path it was read from (``studies/ns-dupi/study.yaml``).
    line : int or None
        The 1-based line of the offending node, ``None`` when the file could not be read at all.
    name : str
        The offending name: an identifier (item, visit, function, code) when the problem is about
        one, otherwise the dotted key path of the offending node (``visits.W4.window_before``).
    message : str
        What is wrong, in words an author of the study file understands.
    """

    file: str
    line: int | None
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.name}: {self.message}"


class StudyFileError(ProtocolError):
    """A study file that cannot be used; :attr:`problems` lists every problem found.

    Parameters
    ----------
    problems : list of Problem
        All the problems, in file and line order.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(str(problem) for problem in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the study file:\n{lines}")


class UnknownCodeError(ProtocolError, KeyError):
    """A lookup (``study.form("X")``…) of a code the study does not declare."""

    def __init__(self, kind: str, code: str) -> None:
        self.kind = kind
        self.code = code
        super().__init__(f"{kind} {code!r} is not declared in the study")

    def __str__(self) -> str:
        return str(self.args[0])


class ItemValueError(ProtocolError, ValueError):
    """A value that an item does not accept (wrong type, malformed date, out of range…).

    Parameters
    ----------
    item : str
        The item code.
    value : object
        The offending value, as received.
    reason : str
        Why it is refused.
    """

    def __init__(self, item: str, value: object, reason: str) -> None:
        self.item = item
        self.value = value
        self.reason = reason
        super().__init__(f"{item}: {value!r} {reason}")
