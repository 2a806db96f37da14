"""The exceptions of the randomization app.

Every exception derives from :class:`RandomizationError` and carries ``field``, the input or the
state that is at fault, so that pages and the API can show ``field: message``. Messages name the
subject, kit or file and the offending value, and never an arm.
"""

from __future__ import annotations


class RandomizationError(ValueError):
    """A randomization, supply or unblinding request that cannot be carried out."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ListImportError(RandomizationError):
    """A randomization or kit list file that cannot be imported (file, line, column, value)."""


class SealError(RandomizationError):
    """A list import that would break the seal (another list once someone is allocated)."""


class NotAllowed(RandomizationError):
    """The acting user may not do this for this subject, site or study."""


class BlindingError(NotAllowed):
    """The acting user may not see an allocation."""


class AllocationRefused(RandomizationError):
    """A subject that cannot be randomized now (already randomized, not eligible, no consent)."""


class StratumExhausted(AllocationRefused):
    """The subject's stratum has no free row left in the sealed list."""


class SupplyError(RandomizationError):
    """A kit request that cannot be served (no kit, wrong status, not a dosing visit…)."""


class UnblindingRefused(RandomizationError):
    """An emergency unblinding request that is refused (wrong password, no reason, role)."""
