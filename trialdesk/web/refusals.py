"""Refusals of the capture services, worded in the page's language.

The services (:mod:`trialdesk.capture` and the item parsing of the study file) word their
refusals in English, for the API, the logs and the command line: ``"nasa_total: '15' is above
the maximum 12"``. A page shows them in its own language, still naming the item (its label in
that language and its code) and the value as entered. A refusal this table does not know is
shown as the service worded it.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, pgettext_lazy

from trialdesk.capture.records import CaptureError, HardCheckFailed
from trialdesk.protocol.schema import Form

#: (pattern of the English message, its translatable wording); the groups fill the wording.
_WORDINGS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"(?P<value>.+) is below the minimum (?P<limit>\S+)"),
        gettext_noop("%(value)s is below the minimum %(limit)s"),
    ),
    (
        re.compile(r"(?P<value>.+) is above the maximum (?P<limit>\S+)"),
        gettext_noop("%(value)s is above the maximum %(limit)s"),
    ),
    (re.compile(r"(?P<value>.+) is not an integer"), gettext_noop("%(value)s is not an integer")),
    (re.compile(r"(?P<value>.+) is not a number"), gettext_noop("%(value)s is not a number")),
    (
        re.compile(r"(?P<value>.+) has more than (?P<limit>\d+) decimal\(s\)"),
        gettext_noop("%(value)s has more than %(limit)s decimal(s)"),
    ),
    (
        re.compile(r"(?P<value>.+) is longer than (?P<limit>\d+) characters"),
        gettext_noop("%(value)s is longer than %(limit)s characters"),
    ),
    (
        re.compile(r"(?P<value>.+) does not match the pattern (?P<pattern>.+)"),
        gettext_noop("%(value)s does not match the pattern %(pattern)s"),
    ),
    (
        re.compile(r"(?P<value>.+) is not a date and time \(YYYY-MM-DDTHH:MM\)"),
        gettext_noop("%(value)s is not a date and time (YYYY-MM-DDTHH:MM)"),
    ),
    (
        re.compile(r"(?P<value>.+) is not a date \((?P<expected>.+)\)"),
        gettext_noop("%(value)s is not a date (%(expected)s)"),
    ),
    (
        re.compile(r"(?P<value>.+) is not true or false"),
        gettext_noop("%(value)s is not true or false"),
    ),
    (
        re.compile(r"(?P<value>.+) is not one of the codes \((?P<codes>.+)\)"),
        gettext_noop("%(value)s is not one of the codes (%(codes)s)"),
    ),
    (
        re.compile(
            r"is required to complete (?P<form>\S+) \(missing: (?P<missing>.+)\); "
            r"enter it or mark it not done or unknown with a reason"
        ),
        gettext_noop(
            "is required to complete %(form)s (missing: %(missing)s); "
            "enter it or mark it not done or unknown with a reason"
        ),
    ),
    (
        re.compile(r"a reason is required to mark it (?P<state>\S+)"),
        gettext_noop("a reason is required to mark it %(state)s"),
    ),
    (
        re.compile(r"a reason for change is required to change (?P<item>\S+) of (?P<record>.+)"),
        gettext_noop("a reason for change is required to change %(item)s of %(record)s"),
    ),
    (
        re.compile(r"(?P<record>.+) is locked; a data manager must unlock it first"),
        gettext_noop("%(record)s is locked; a data manager must unlock it first"),
    ),
    (
        re.compile(r"(?P<subject>\S+) is locked; no record can be added"),
        gettext_noop("%(subject)s is locked; no record can be added"),
    ),
    (
        re.compile(r"(?P<value>.+) refused by check (?P<check>\S+): (?P<message>.+)"),
        gettext_noop("%(value)s refused by check %(check)s: %(message)s"),
    ),
    (
        re.compile(r"the password is not correct; the signature is refused"),
        gettext_noop("the password is not correct; the signature is refused"),
    ),
    (
        re.compile(r"(?P<record>.+) is in progress; complete it before signing"),
        gettext_noop("%(record)s is in progress; complete it before signing"),
    ),
    (
        re.compile(
            r"(?P<count>\d+) wrong passwords in a row: signing is blocked until (?P<until>\S+)"
        ),
        gettext_noop("%(count)s wrong passwords in a row: signing is blocked until %(until)s"),
    ),
]

#: The fields of refusals that are not items of a form, by the name the services give them.
_FIELDS: dict[str, Any] = {
    "record": pgettext_lazy("refused field", "Record"),
    "reason": pgettext_lazy("refused field", "Reason for change"),
    "password": pgettext_lazy("refused field", "Password"),
    "role": pgettext_lazy("refused field", "Role"),
    "visit": pgettext_lazy("refused field", "Visit"),
    "subject": pgettext_lazy("refused field", "Subject"),
}


def refusal(error: CaptureError, form: Form | None = None) -> str:
    """``error`` in the active language: ``<label> (<code>): <reason>`` for an item of
    ``form``, ``<field>: <reason>`` otherwise. A hard check's own message is taken in the
    page's language from the study file."""
    language = "fr" if (translation.get_language() or "en").startswith("fr") else "en"
    reason = error.message
    if isinstance(error, HardCheckFailed):
        reason = error.in_language(language).removeprefix(f"{error.field}: ")
    for pattern, wording in _WORDINGS:
        match = pattern.fullmatch(reason)
        if match:
            reason = _(wording) % match.groupdict()
            break
    label = _label(error.field, form, language)
    if label:
        named = f"{label} ({error.field})"
    else:
        named = str(_FIELDS.get(error.field, error.field))
    return _("%(field)s: %(reason)s") % {"field": named, "reason": reason}


def _label(code: str, form: Form | None, language: str) -> str:
    item: Any = None
    if form is not None:
        item = next((item for item in form.items if item.code == code), None)
    return item.label.get(language) if item is not None else ""
