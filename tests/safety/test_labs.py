"""Laboratory results through the real path: LAB form save → lab rows → units, flag, grade,
baseline, reference ranges and alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from tests.safety.safety_data import lab_data
from trialdesk.audit.models import AuditEvent
from trialdesk.capture.records import save_form
from trialdesk.safety import services
from trialdesk.safety.models import LabAlert, LabResult, RangeSource

#: D0: normal results, except eosinophils already high (as Netherton patients often are).
D0_VALUES = {
    "ALT": (30, "U/L", None, 40),
    "AST": (0.4, "ukat/L", None, 0.5),
    "BILI": (0.8, "mg/dL", None, 1.2),
    "ALP": (100, "U/L", None, 120),
    "GGT": (40, "U/L", None, 60),
    "CREAT": (0.8, "mg/dL", 0.6, 1.2),
    "HGB": (140, "g/L", 130, 170),
    "WBC": (6000, "/mm3", 4000, 10000),
    "NEUT": (3, "10^9/L", 1.8, 7.5),
    "LYMPH": (2, "10^9/L", 1.0, 4.0),
    "EOS": (1.2, "10^9/L", 0, 0.5),
    "PLAT": (250000, "/mm3", 150000, 400000),
    "SODIUM": (140, "mmol/L", 135, 145),
}

#: W4 result → (value in standard unit, flag, grade): one row per test, the rule in the comment.
W4_VALUES = {
    "ALT": ((130, "U/L", None, 40), "130", "H", 2),  # 3.25 × ULN
    "AST": ((1, "ukat/L", None, 0.5), "60", "H", 1),  # 2 × ULN, in µkat/L
    "BILI": ((2, "mg/dL", None, 1.2), "34.2", "H", 2),  # 1.67 × ULN
    "ALP": ((600, "U/L", None, 120), "600", "H", 2),  # exactly 5 × ULN: strict, not grade 3
    "GGT": ((700, "U/L", None, 60), "700", "H", 3),  # 11.7 × ULN
    "CREAT": ((1.5, "mg/dL", 0.6, 1.2), "132.63", "H", 2),  # 1.25 × ULN but 1.875 × D0
    "HGB": ((95, "g/L", 130, 170), "9.5", "L", 2),  # < 10 g/dL
    "WBC": ((2500, "/mm3", 4000, 10000), "2.5", "L", 2),  # < 3.0
    "NEUT": ((0.9, "10^9/L", 1.8, 7.5), "0.9", "L", 3),  # < 1.0
    "LYMPH": ((0.7, "10^9/L", 1.0, 4.0), "0.7", "L", 2),  # < 0.8
    "EOS": ((0.9, "10^9/L", 0, 0.5), "0.9", "H", 0),  # > ULN but not above the D0 value 1.2
    "PLAT": ((140000, "/mm3", 150000, 400000), "140", "L", 1),  # < LLN
    "SODIUM": ((128, "mmol/L", 135, 145), "128", "L", 2),  # < 130
}


@pytest.fixture
def ines_mail(ines, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ines.email = "ines.martin@chu-toulouse.example"
    ines.save()
    return ines.email


def _save_lab(subject, by, visit, on, values, reason=""):
    return save_form(
        subject, "LAB", lab_data(on, **values), by=by, visit_code=visit, reason=reason
    ).record


def _results(subject, visit):
    return {r.test: r for r in LabResult.objects.filter(subject=subject, visit_code=visit)}


def test_every_test_is_converted_flagged_and_graded_against_d0(
    subject, claire, d0, ines_mail, django_capture_on_commit_callbacks
):
    _save_lab(subject, claire, "D0", d0, D0_VALUES)
    baseline = _results(subject, "D0")
    assert {t: (r.flag, r.grade) for t, r in baseline.items()} == {
        **{t: ("N", 0) for t in D0_VALUES},
        "EOS": ("H", 0),  # the baseline sample is graded against itself
    }
    with django_capture_on_commit_callbacks(execute=True):
        _save_lab(
            subject,
            claire,
            "W4",
            d0 + dt.timedelta(days=28),
            {test: row[0] for test, row in W4_VALUES.items()},
        )
    w4 = _results(subject, "W4")
    got = {t: (r.value_std.normalize(), r.flag, r.grade) for t, r in w4.items()}
    expected = {t: (Decimal(v).normalize(), f, g) for t, (_, v, f, g) in W4_VALUES.items()}
    assert got == expected
    assert w4["CREAT"].baseline == Decimal("70.736")  # 0.8 mg/dL
    assert w4["CREAT"].standard_unit == "umol/L" and w4["CREAT"].unit == "mg/dL"
    assert w4["CREAT"].range_source == RangeSource.FORM
    alerts = LabAlert.objects.order_by("lab_result__test")
    assert [(a.lab_result.test, a.grade) for a in alerts] == [("GGT", 3), ("NEUT", 3)]
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == [
        "[trialdesk] Grade 3 GGT",
        "[trialdesk] Grade 3 NEUT",
    ]
    assert all(m.to == [ines_mail] for m in mail.outbox)
    assert AuditEvent.objects.filter(action="safety.lab.alert").count() == 2


def test_liver_multiples_apply_to_an_abnormal_baseline(subject, claire, d0):
    _save_lab(subject, claire, "D0", d0, {"ALT": (80, "U/L", None, 40)})
    _save_lab(subject, claire, "W4", d0 + dt.timedelta(days=28), {"ALT": (130, "U/L", None, 40)})
    alt = _results(subject, "W4")["ALT"]
    assert alt.baseline == 80 and alt.grade == 1  # 1.625 × BL, whereas 3.25 × ULN is grade 2


def test_without_a_d0_value_the_baseline_is_missing(subject, claire, d0):
    _save_lab(subject, claire, "W4", d0 + dt.timedelta(days=28), {"EOS": (0.9, "10^9/L", 0, 0.5)})
    eos = _results(subject, "W4")["EOS"]
    assert eos.baseline is None and eos.grade is None and eos.flag == "H"
    assert "not gradable" in eos.grade_note


def test_a_corrected_d0_value_regrades_the_later_visits(subject, claire, d0, ines_mail):
    _save_lab(subject, claire, "D0", d0, {"EOS": (1.2, "10^9/L", 0, 0.5)})
    _save_lab(subject, claire, "W4", d0 + dt.timedelta(days=28), {"EOS": (0.9, "10^9/L", 0, 0.5)})
    assert _results(subject, "W4")["EOS"].grade == 0
    save_form(subject, "LAB", {"eos_value": 0.4}, by=claire, visit_code="D0", reason="misread")
    eos = _results(subject, "W4")["EOS"]
    assert eos.baseline == Decimal("0.4") and eos.grade == 1
    assert AuditEvent.objects.filter(action="safety.lab.regrade").count() == 1


def test_the_creatinine_baseline_can_raise_an_alert_on_regrade(subject, claire, d0, ines_mail):
    _save_lab(subject, claire, "D0", d0, {"CREAT": (80, "umol/L", None, 110)})
    _save_lab(
        subject, claire, "W4", d0 + dt.timedelta(days=28), {"CREAT": (100, "umol/L", None, 110)}
    )
    assert _results(subject, "W4")["CREAT"].grade == 0
    save_form(subject, "LAB", {"creat_value": 30}, by=claire, visit_code="D0", reason="misread")
    assert _results(subject, "W4")["CREAT"].grade == 3  # > 3 × BL
    assert LabAlert.objects.get().grade == 3


def test_the_site_reference_range_is_used_when_the_form_gives_none(subject, claire, diane, d0):
    site = subject.site
    common = {"lab_name": "chu", "test": "HGB", "unit": "g/dL", "by": diane}
    services.add_reference_range(
        site, lln=Decimal("12.0"), uln=Decimal("16"), valid_from=dt.date(2020, 1, 1), **common
    )
    male = services.add_reference_range(
        site,
        lln=Decimal("13.0"),
        uln=Decimal("17"),
        valid_from=dt.date(2020, 1, 1),
        sex="M",
        **common,
    )
    services.add_reference_range(
        site,
        lln=Decimal("14.0"),
        uln=Decimal("18"),
        valid_from=d0 + dt.timedelta(days=1),
        sex="M",
        **common,
    )
    _save_lab(subject, claire, "D0", d0, {"HGB": (125, "g/L", None, None)})
    hgb = _results(subject, "D0")["HGB"]
    assert hgb.range_source == RangeSource.REFERENCE and hgb.reference_range == male
    assert (hgb.lln_std, hgb.uln_std) == (Decimal("13.0"), Decimal("17"))
    assert hgb.flag == "L" and hgb.grade == 1


def test_reference_ranges_are_for_data_managers_and_checked(subject, claire, diane):
    site = subject.site
    args = {"lab_name": "CHU", "test": "HGB", "valid_from": dt.date(2020, 1, 1)}
    with pytest.raises(services.SafetyNotAllowed):
        services.add_reference_range(site, unit="g/dL", lln=1, uln=2, by=claire, **args)
    with pytest.raises(services.SafetyError, match="unit: HGB: unit='mg/dL'"):
        services.add_reference_range(site, unit="mg/dL", lln=1, uln=2, by=diane, **args)
    with pytest.raises(services.SafetyError, match="lln: 3 is above uln=2"):
        services.add_reference_range(site, unit="g/dL", lln=3, uln=2, by=diane, **args)


def test_an_alert_is_acknowledged_once_by_an_investigator_of_the_site(subject, claire, ines, d0):
    _save_lab(subject, claire, "D0", d0, {"NEUT": (0.4, "10^9/L", 1.8, 7.5)})
    alert = LabAlert.objects.get()
    assert alert.grade == 4
    with pytest.raises(services.SafetyNotAllowed):
        services.acknowledge_alert(alert, by=claire)
    services.acknowledge_alert(alert, by=ines)
    assert LabAlert.objects.get().acknowledged_by == ines
    assert list(services.lab_alerts(ines, subject.study)) == []
    with pytest.raises(services.SafetyError, match="already acknowledged"):
        services.acknowledge_alert(alert, by=ines)


def test_a_removed_value_leaves_an_ungraded_row(subject, claire, d0):
    _save_lab(subject, claire, "D0", d0, {"ALT": (30, "U/L", None, 40)})
    save_form(
        subject,
        "LAB",
        {"alt_value": {"state": "not_done", "reason": "haemolysed"}},
        by=claire,
        visit_code="D0",
        reason="haemolysed sample",
    )
    alt = _results(subject, "D0")["ALT"]
    assert alt.value is None and alt.grade is None and alt.flag == ""


def test_a_rolled_back_lab_save_raises_no_alert_and_mails_nobody(
    subject, claire, d0, ines_mail, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            _save_lab(subject, claire, "D0", d0, {"NEUT": (0.4, "10^9/L", 1.8, 7.5)})
            assert LabAlert.objects.count() == 1
            raise RuntimeError("the page failed after the save")
    assert callbacks == [] and mail.outbox == []
    assert not LabAlert.objects.exists() and not LabResult.objects.exists()
