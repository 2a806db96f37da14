"""Randomization, treatment, unblinding, schedule, worklist and pharmacy pages, under
``studies/<study>/`` (included from :mod:`trialdesk.urls`)."""

from __future__ import annotations

from django.urls import path

from . import views_randomization as views

app_name = "randomization"

urlpatterns = [
    path("subjects/<str:subject_id>/randomize/", views.randomize, name="randomize"),
    path("subjects/<str:subject_id>/treatment/", views.treatment, name="treatment"),
    path("subjects/<str:subject_id>/unblind/", views.unblind, name="unblind"),
    path("subjects/<str:subject_id>/schedule/", views.schedule_page, name="schedule"),
    path("worklist/", views.worklist, name="worklist"),
    path("pharmacy/", views.pharmacy, name="pharmacy"),
    path("unblinding/", views.unblindings, name="unblindings"),
]
