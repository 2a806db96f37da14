"""Django settings for trialdesk: one file, environment variables read here and only here.

Defaults make a fresh checkout work on an embedded SQLite database; production sets
``TRIALDESK_SECRET_KEY``, ``DATABASE_URL``, ``TRIALDESK_ALLOWED_HOSTS`` and keeps
``TRIALDESK_HTTPS`` on (the default).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


#: Where runtime files live: the SQLite database, the generated secret key, collected static files.
VAR_DIR = Path(env_str("TRIALDESK_VAR_DIR", str(BASE_DIR / "var")))
#: Where study files are found by id (``studies/<id>/study.yaml``).
STUDIES_DIR = Path(env_str("TRIALDESK_STUDIES_DIR", str(BASE_DIR / "studies")))

DEBUG = env_bool("TRIALDESK_DEBUG", False)


def _secret_key() -> str:
    if key := env_str("TRIALDESK_SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    # `trialdesk setup` writes var/secret_key; this placeholder is flagged by `check --deploy`.
    return "django-insecure-trialdesk-placeholder-run-trialdesk-setup"


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [
    h for h in env_str("TRIALDESK_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("TRIALDESK_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "trialdesk.audit",
    "trialdesk.protocol",
    "trialdesk.accounts",
    "trialdesk.screening",
    "trialdesk.randomization",
    "trialdesk.capture",
    "trialdesk.safety",
    "trialdesk.analysis",
    "trialdesk.reports",
    "trialdesk.demo",
    "trialdesk.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "trialdesk.urls"
WSGI_APPLICATION = "trialdesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trialdesk.demo.context.synthetic_banner",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
_SQLITE_DEFAULT = f"sqlite:///{VAR_DIR / 'trialdesk.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", _SQLITE_DEFAULT))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend, with writing transactions queued on a blocking file lock next to
    # the database (woken as soon as the previous writer commits) rather than in SQLite's busy
    # handler, which retries after sleeps of up to 100 ms (trialdesk/db/sqlite3/base.py).
    # TRIALDESK_SQLITE_WRITE_LOCK=0 leaves the queueing to SQLite (a filesystem without flock).
    if env_bool("TRIALDESK_SQLITE_WRITE_LOCK", True):
        DATABASES["default"]["ENGINE"] = "trialdesk.db.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # that two writers queue instead of failing halfway; foreign keys are on in Django.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("TRIALDESK_TEST_SQLITE", "") or None}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("TRIALDESK_CONN_MAX_AGE", 60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- accounts and security ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Lockout after repeated failures (django-axes): per username, five tries, 30 minutes.
AXES_FAILURE_LIMIT = env_int("TRIALDESK_LOCKOUT_FAILURES", 5)
AXES_COOLOFF_TIME = 0.5
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"
AXES_VERBOSE = False
# Hospitals put many users behind one address: locking by IP would lock a whole site out after
# five typos by different people, so the lockout is per username and axes' advice is silenced.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

HTTPS = env_bool("TRIALDESK_HTTPS", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("TRIALDESK_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_SSL_REDIRECT = HTTPS and env_bool("TRIALDESK_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "trialdesk" / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- mail (notifications: SAE clock, emergency unblinding) --------------------------------
EMAIL_BACKEND = env_str("TRIALDESK_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("TRIALDESK_FROM_EMAIL", "trialdesk@localhost")
#: The sponsor's unblinded contact(s), e-mailed at every emergency unblinding (comma-separated).
UNBLINDING_NOTIFY_EMAILS = [
    a.strip() for a in env_str("TRIALDESK_UNBLINDING_EMAIL", "").split(",") if a.strip()
]

#: The sponsor's safety contact(s), e-mailed when a serious adverse event starts its 24-hour
#: reporting clock (comma-separated).
SAFETY_NOTIFY_EMAILS = [
    a.strip() for a in env_str("TRIALDESK_SAFETY_EMAIL", "").split(",") if a.strip()
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("TRIALDESK_LOG_LEVEL", "WARNING")},
}
