"""A small NS-DUPI trial for the analysis tests, entered through the capture services.

Subjects are randomized from the hand-written list of ``tests/randomization/trial_world.py``
(Toulouse: DUPI, PBO, DUPI, PBO, DUPI, DUPI; Paris: PBO, DUPI, DUPI) with day 0 two hundred and
ten days ago, so that every visit up to W28 can be recorded as done.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

#: Days before today of every subject's day 0.
D0_AGO = 210


def d0_date() -> dt.date:
    return timezone.localdate() - dt.timedelta(days=D0_AGO)


def randomized(new_subject, site_code: str, by):
    """A subject screened, consented and randomized at ``site_code`` on :func:`d0_date`."""
    from trialdesk.randomization.allocation import randomize

    subject = new_subject(site_code)
    randomize(subject, by=by, on=d0_date())
    return subject


def visit_done(subject, code: str, by, *, shift: int = 0):
    """Record a visit done on its planned date (``shift`` days later)."""
    from trialdesk.capture.models import Visit
    from trialdesk.capture.schedule import record_visit

    planned = Visit.objects.get(subject=subject, code=code).planned_date
    return record_visit(subject, code, planned + dt.timedelta(days=shift), by=by)


def nasa(subject, code: str, value: int, by, *, reason: str = "") -> None:
    from trialdesk.capture.records import save_form

    data = {"nasa_total": value, "nasa_assessor": "AB"}
    save_form(subject, "NASA", data, by=by, visit_code=code, reason=reason)


def itch_pain(subject, code: str, pruritus: float, pain: float, by) -> None:
    from trialdesk.capture.records import save_form

    data = {"pruritus_score": pruritus, "pain_score": pain}
    save_form(subject, "ITCH_PAIN", data, by=by, visit_code=code)


def infections(subject, code: str, count: int, by) -> None:
    from trialdesk.capture.records import save_form

    data = {"any_new_infection": count > 0, "infection_count": count if count else None}
    save_form(subject, "INFECT", data, by=by, visit_code=code)


def tcs(subject, code: str, grams: float, by) -> None:
    from trialdesk.capture.records import save_form

    if grams:
        data = {
            "tcs_used": True,
            "tcs_potency": "moderate",
            "tubes_used": grams / 30,
            "grams_per_tube": 30,
        }
    else:
        data = {"tcs_used": False}
    save_form(subject, "TCS", data, by=by, visit_code=code)


def dose(subject, code: str, by) -> None:
    """One DRUG record (one syringe) at a dosing visit, on its date (done, else planned)."""
    from trialdesk.capture.models import Visit
    from trialdesk.capture.records import save_form

    visit = Visit.objects.get(subject=subject, code=code)
    on = visit.done_on or visit.planned_date
    data = {
        "administered_at": f"{on.isoformat()}T10:00:00",
        "kit_number": "K12345",
        "injection_site": "abdomen",
        "given_by": "nurse",
        "full_dose": True,
    }
    save_form(subject, "DRUG", data, by=by, visit_code=code)


def marker(subject, code: str, marker_code: str, value: float, by) -> None:
    """One marker result (a repeating MARKERS record) reported at a visit."""
    from trialdesk.capture.records import save_form

    data = {
        "marker_sample_id": f"S-{subject.subject_id}-{code}",
        "marker": marker_code,
        "marker_method": "qpcr",
        "marker_value": value,
        "marker_unit": "fold",
    }
    save_form(subject, "MARKERS", data, by=by, visit_code=code)
