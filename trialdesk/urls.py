"""URL map: pages, the admin (data managers only), the API, language switching."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from trialdesk.api.v1 import api
from trialdesk.web import admin as web_admin
from trialdesk.web import views, views_epro

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("healthz", views.healthz, name="healthz"),
    path("studies/<slug:study>/", include("trialdesk.web.urls_screening")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_randomization")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_capture")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_safety")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_reports")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_epro")),
    path("studies/<slug:study>/", include("trialdesk.web.urls_samples")),
    path("p/<str:token>/", views_epro.patient_page, name="epro_patient"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", web_admin.site.urls),
    path("api/v1/", api.urls),
]
