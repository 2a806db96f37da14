"""Partial dates of adverse events (``2025-03``, ``2025-UN-UN``): see
:mod:`trialdesk.lib.partial_dates`, where the pure parser lives so that the study file's
``partial: true`` date items read the same shapes."""

from __future__ import annotations

from trialdesk.lib.partial_dates import PartialDate, PartialDateError, parse_partial_date

__all__ = ["PartialDate", "PartialDateError", "parse_partial_date"]
