"""Safety pages under ``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_safety as views

app_name = "safety"

urlpatterns = [
    path("safety/", views.worklist, name="worklist"),
    path("safety/alerts/", views.alerts, name="alerts"),
    path("safety/reference-ranges/", views.reference_ranges, name="reference_ranges"),
    path("safety/sae/<int:pk>/reported/", views.sae_reported, name="sae_reported"),
    path("safety/alerts/<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("subjects/<str:subject_id>/adverse-events/", views.adverse_events, name="adverse_events"),
    path("subjects/<str:subject_id>/labs/", views.labs, name="labs"),
]
