"""Screening pages, under ``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_screening as views

app_name = "screening"

urlpatterns = [
    path("screening/", views.screening_log, name="log"),
    path("screening/new/", views.screen_person, name="screen"),
    path("consent-documents/", views.consent_documents, name="documents"),
    path("subjects/<str:subject_id>/", views.subject_detail, name="subject"),
    path("subjects/<str:subject_id>/assess/", views.reassess, name="reassess"),
    path(
        "subjects/<str:subject_id>/assessments/<int:pk>/",
        views.assessment_detail,
        name="assessment",
    ),
    path("subjects/<str:subject_id>/consent/", views.record_consent, name="consent"),
    path("subjects/<str:subject_id>/consent/withdraw/", views.withdraw_consent, name="withdraw"),
    path("subjects/<str:subject_id>/screen-failure/", views.screen_failure, name="failure"),
]
