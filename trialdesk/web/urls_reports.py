"""Report pages under ``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_reports as views

app_name = "reports"

urlpatterns = [
    path("enrolment/", views.dashboard, name="dashboard"),
    path("reports/<slug:kind>.<slug:fmt>", views.download, name="download"),
]
