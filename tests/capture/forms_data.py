"""Valid values for every item of a form, generated from the study file (no per-form code).

Numbers take their minimum (or 1), booleans False, choices their first code, dates the visit's
date, texts a short word: values that pass the types, ranges and hard checks of both studies.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

#: Candidate texts for items with a pattern (codes, sample ids, initials).
TEXTS = ("ok", "ABC", "AB12-34", "B-0001")


def item_value(definition: Any, item: Any, on: dt.date) -> Any:
    """One valid raw value (as JSON) for ``item``; ``None`` for a computed item."""
    if item.computed is not None:
        return None
    kind = item.data_type
    if kind == "integer":
        return int(item.min) if item.min is not None else 1
    if kind == "decimal":
        return float(item.min) if item.min is not None else 1.5
    if kind == "boolean":
        return False
    if kind == "choice":
        return definition.codelist(item.codelist).codes[0]
    if kind == "date":
        return on.isoformat()
    if kind == "datetime":
        return f"{on.isoformat()}T10:00:00"
    if item.pattern:
        return next(text for text in TEXTS if re.fullmatch(item.pattern, text))
    return "ok"


def form_values(definition: Any, form: Any, on: dt.date) -> dict[str, Any]:
    """Valid raw values of every entered (non-computed) item of ``form``."""
    return {
        item.code: item_value(definition, item, on) for item in form.items if item.computed is None
    }
