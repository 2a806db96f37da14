"""Signals the randomization app sends, for the apps above it (capture) to act on.

``subject_randomized`` is sent inside the randomization's transaction with ``allocation`` and
``by``; a receiver that writes does so in the same transaction, so that the allocation and what
follows from it (the visit schedule) commit or roll back together. Receivers are connected
explicitly in their app's ``ready()``.
"""

from __future__ import annotations

from django.dispatch import Signal

subject_randomized = Signal()
