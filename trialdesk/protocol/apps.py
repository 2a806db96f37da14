from __future__ import annotations

from django.apps import AppConfig


class ProtocolConfig(AppConfig):
    name = "trialdesk.protocol"
    label = "protocol"
    verbose_name = "Studies and protocol versions"
