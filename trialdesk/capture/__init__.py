"""capture: visits and windows, case report forms, edit checks, queries, SDV, signatures, locks.

``schedule`` plans and records visits; ``records.save_form`` is the one path every form write
takes (page, API, job); ``queries``, ``verification``, ``signatures`` and ``locks`` are the data
management; ``cohort`` enrols observational-cohort subjects; ``signals.form_saved`` tells the
apps built on capture (safety) that a form was saved.
"""
