"""The audit trail: an append-only, hash-chained log of every change, written in the same
transaction as the change it records.

Call :func:`trialdesk.audit.services.record` inside the ``transaction.atomic()`` block that makes
the change. ``trialdesk audit verify`` recomputes the chain. Database triggers reject UPDATE and
DELETE on the event table (see the migrations), on SQLite and on PostgreSQL.
"""
