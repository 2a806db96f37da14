"""Site-facing pages (server-rendered) and the operational commands ``setup`` and ``serve``.

Site staff work here; the Django admin (``trialdesk.web.admin``) is for data managers only.
"""
