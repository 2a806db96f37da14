"""Canonical JSON and SHA-256, the two primitives of every hash in trialdesk.

Canonical JSON here means: keys sorted, no insignificant white space, UTF-8 kept as is,
datetimes as ISO 8601 in UTC with microseconds, dates as ``YYYY-MM-DD``, decimals as strings.
Two equal payloads always give the same bytes, whatever the database returned them as.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value!r} cannot be hashed; use an aware UTC datetime"
            )
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"value {value!r} of type {type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    """Serialise ``value`` to canonical JSON text.

    >>> canonical_json({"b": 1, "a": [True, None]})
    '{"a":[true,null],"b":1}'
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of text (UTF-8) or bytes, as 64 lowercase hex digits.

    >>> sha256_hex("")[:16]
    'e3b0c44298fc1c14'
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()
