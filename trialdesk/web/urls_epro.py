"""The coordinator's patient-questionnaire page under ``studies/<study>/``."""

from __future__ import annotations

from django.urls import path

from . import views_epro as views

app_name = "epro"

urlpatterns = [
    path("subjects/<str:subject_id>/patient-link/", views.issue, name="issue"),
]
