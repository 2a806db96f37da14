"""Sample pages under ``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_samples as views

app_name = "samples"

urlpatterns = [
    path("samples/", views.sample_list, name="list"),
    path("samples/<str:sample_id>/label/", views.label, name="label"),
]
