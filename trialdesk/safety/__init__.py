"""Safety: adverse events, SAE reporting clocks, skin infections, laboratory results and alerts.

Everything is derived from the case report forms (:mod:`trialdesk.safety.services`, connected
to :data:`trialdesk.capture.signals.form_saved`); pure helpers: :mod:`~trialdesk.safety.ctcae`
(grading), :mod:`~trialdesk.safety.units` (conversion), :mod:`~trialdesk.safety.partial_dates`,
:mod:`~trialdesk.safety.aesi`. No row of this app holds a treatment arm.
"""
