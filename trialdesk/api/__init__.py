"""The machine interface, ``/api/v1/`` (django-ninja, OpenAPI at ``/api/v1/docs``).

Authentication: a personal API token (``Authorization: Bearer td_...``) or the browser session.
Each app contributes a router from its own ``api.py``, mounted explicitly in :mod:`.v1`.
"""
