"""One demo user per role, for a newcomer's first look and for the browser tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from trialdesk.accounts.models import Role, User
from trialdesk.accounts.services import create_user, grant_role
from trialdesk.protocol.models import Study


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role
    site: str | None  # site code for site roles


DEMO_USERS = [
    DemoUser("investigator.tls", "Inès", "Martin", Role.INVESTIGATOR, "TLS"),
    DemoUser("coordinator.tls", "Claire", "Dubois", Role.COORDINATOR, "TLS"),
    DemoUser("coordinator.nck", "Paul", "Moreau", Role.COORDINATOR, "NCK"),
    DemoUser("pharmacist.tls", "Pierre", "Lefèvre", Role.PHARMACIST, "TLS"),
    DemoUser("monitor", "Manon", "Girard", Role.MONITOR, "TLS"),
    DemoUser("datamanager", "Diane", "Roux", Role.DATA_MANAGER, None),
    DemoUser("statistician", "Simon", "Bernard", Role.STATISTICIAN, None),
    DemoUser("unblinded.statistician", "Ugo", "Petit", Role.UNBLINDED_STATISTICIAN, None),
    DemoUser("dsmb", "Denise", "Blanc", Role.DSMB, None),
    DemoUser("sponsor", "Sophie", "Garnier", Role.SPONSOR, None),
]
#: The monitor covers both sites.
EXTRA_SITES = {"monitor": ["NCK"]}


def create_demo_users(password: str | None = None) -> list[tuple[str, str, str]]:
    """Create the demo users that do not exist yet, with roles in every loaded study.

    Returns ``(username, password, role)`` for each user created now (passwords are random
    unless one is given, and are never stored in clear).
    """
    created = []
    studies = list(Study.objects.all())
    for demo in DEMO_USERS:
        user = User.objects.filter(username=demo.username).first()
        if user is None:
            pw = password or secrets.token_urlsafe(12)
            user = create_user(
                demo.username,
                pw,
                first_name=demo.first_name,
                last_name=demo.last_name,
                check_password=password is None,
            )
            created.append((demo.username, pw, demo.role.label))
        for study in studies:
            for code in [demo.site, *EXTRA_SITES.get(demo.username, [])] if demo.site else [None]:
                site = study.sites.filter(code=code).first() if code else None
                if code and site is None:
                    continue
                grant_role(user, study, demo.role, site=site, by=None)
    return created
