"""Screening: the per-site screening log, pseudonymous subjects, site-only identity records,
the eligibility engine (:mod:`.eligibility`, pure, three-valued), consent documents and records.

Everything that writes goes through :mod:`.services` and is audited in its transaction; the web
form, the API (:mod:`.api`) and ``trialdesk screen`` (:mod:`.commands`) share one engine.
"""
