"""Signals sent by capture for the apps built on it (safety connects to them).

``form_saved(sender, record, by, created, changes)`` is sent inside the save's transaction, after
the record and its values are written and audited: ``sender`` is
:class:`~trialdesk.capture.models.FormRecord`, ``record`` the saved record (read its typed values
with :func:`trialdesk.capture.records.values_of`), ``by`` the acting user, ``created`` whether
this was the first save, ``changes`` the ``{item: [old, new]}`` of this save. A receiver that
raises rolls the save back.
"""

from __future__ import annotations

from django.dispatch import Signal

form_saved = Signal()
