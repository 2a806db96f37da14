"""Analysis: builds analysis datasets from capture, runs the SAP with :mod:`trialdesk.stats`.

Its command group ``trialdesk simulate`` (:mod:`trialdesk.analysis.commands`) simulates whole
trials for power and design questions.
"""
