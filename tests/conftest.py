"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# One definition of the browser fixtures for every folder (Playwright allows one sync session).
pytest_plugins = ["tests.browser_support"]


@pytest.fixture(scope="session", autouse=True)
def _compiled_translations():
    """Compile the French catalogs as `trialdesk setup` does, so a fresh clone tests in French."""
    from django.conf import settings

    from trialdesk.web.i18n import compile_catalogs

    compile_catalogs(list(settings.LOCALE_PATHS))


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """The test client speaks plain HTTP; production keeps the HTTPS redirect and secure cookies."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture(scope="session")
def refdata_dir() -> Path:
    """The project's reference data (``../shared/refdata`` beside the repository by default)."""
    path = Path(os.environ.get("TRIALDESK_REFDATA", REPO.parent / "shared" / "refdata"))
    if not path.is_dir():
        pytest.fail(f"reference data not found at {path}; set TRIALDESK_REFDATA")
    return path


@pytest.fixture(scope="session")
def studies_dir() -> Path:
    return REPO / "studies"


# --- database personas (style.md): who may see what is the first thing every view is tested for.

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def studies(db):
    """NS-DUPI and the observational cohort, loaded through the real loader."""
    from trialdesk.protocol.services import load_study_into_db

    return {
        code: load_study_into_db(REPO / "studies" / code).study for code in ("ns-dupi", "ns-cohort")
    }


@pytest.fixture
def ns_dupi(studies):
    return studies["ns-dupi"]


def _persona(studies, username, role, site_code=None, first_name="", last_name=""):
    from trialdesk.accounts.services import create_user, grant_role

    user = create_user(username, PASSWORD, first_name=first_name, last_name=last_name)
    for study in studies.values():
        site = study.sites.get(code=site_code) if site_code else None
        grant_role(user, study, role, site=site, by=None)
    return user


@pytest.fixture
def claire(studies):
    """Blinded coordinator (research nurse) at Toulouse."""
    return _persona(studies, "claire", "coordinator", "TLS", "Claire", "Dubois")


@pytest.fixture
def paul(studies):
    """Coordinator at Paris-Necker: must see nothing of Toulouse."""
    return _persona(studies, "paul", "coordinator", "NCK", "Paul", "Moreau")


@pytest.fixture
def ines(studies):
    """Investigator at Toulouse."""
    return _persona(studies, "ines", "investigator", "TLS", "Inès", "Martin")


@pytest.fixture
def manon(studies):
    """Blinded monitor for Toulouse."""
    return _persona(studies, "manon", "monitor", "TLS", "Manon", "Girard")


@pytest.fixture
def pierre(studies):
    """Unblinded pharmacist at Toulouse."""
    return _persona(studies, "pierre", "pharmacist", "TLS", "Pierre", "Lefèvre")


@pytest.fixture
def ugo(studies):
    """Unblinded statistician."""
    return _persona(studies, "ugo", "unblinded_statistician", None, "Ugo", "Petit")


@pytest.fixture
def simon(studies):
    """Blinded statistician."""
    return _persona(studies, "simon", "statistician", None, "Simon", "Bernard")


@pytest.fixture
def diane(studies):
    """Data manager."""
    return _persona(studies, "diane", "data_manager", None, "Diane", "Roux")


@pytest.fixture
def sophie(studies):
    """Sponsor viewer."""
    return _persona(studies, "sophie", "sponsor", None, "Sophie", "Garnier")
