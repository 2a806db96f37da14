from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "trialdesk.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from . import signals

        signals.connect()
