"""Case report form pages under ``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_capture as views

app_name = "capture"

urlpatterns = [
    path("subjects/<str:subject_id>/casebook/", views.casebook, name="casebook"),
    path("subjects/<str:subject_id>/enrolment/", views.screening_form, name="enrolment"),
    path(
        "subjects/<str:subject_id>/visits/<str:visit>/forms/<str:form>/",
        views.visit_form,
        name="form",
    ),
    path(
        "subjects/<str:subject_id>/records/<str:form>/new/",
        views.repeating_record,
        name="new_record",
    ),
    path(
        "subjects/<str:subject_id>/records/<str:form>/<int:number>/",
        views.repeating_record,
        name="record",
    ),
    path("subjects/<str:subject_id>/sign/", views.sign, name="sign"),
    path("data-management/", views.data_management, name="data_management"),
    path("enrol/", views.enrol, name="enrol"),
]
