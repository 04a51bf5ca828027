"""Settings of the interop project: a Kolibri-like deployment of Python Morango 0.8.15 on SQLite or PostgreSQL.

INTEROP_DB: the SQLite file, or a PostgreSQL URL `postgres://user@host:port/name` (required). INTEROP_ASYNC, INTEROP_FSIC_V2, INTEROP_GZIP: "0" turns the capability off
(ASYNC_OPERATIONS, FSIC_V2_FORMAT, GZIP_BUFFER_POST); it is on otherwise.
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(os.path.dirname(BASE_DIR))


def _flag(name):
    return os.environ.get(name, "1") != "0"


SECRET_KEY = "interop-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "mptt",
    "morango",
    "school",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "interop_project.urls"
WSGI_APPLICATION = "interop_project.wsgi.application"

if not os.environ.get("INTEROP_DB"):
    raise RuntimeError("set INTEROP_DB to the SQLite database file or a PostgreSQL URL")

if os.environ["INTEROP_DB"].startswith(("postgres://", "postgresql://")):
    from urllib.parse import urlparse

    _url = urlparse(os.environ["INTEROP_DB"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "postgres",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["INTEROP_DB"],
            "OPTIONS": {"timeout": 30},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

AUTH_USER_MODEL = "school.User"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Morango loads its scope definitions from the fixture "scopedefinitions": the repository's own.
FIXTURE_DIRS = [os.path.join(REPO_DIR, "fixtures")]

# Morango's capabilities (read once, when morango.utils is imported).
MORANGO_DISALLOW_ASYNC_OPERATIONS = not _flag("INTEROP_ASYNC")
MORANGO_DISABLE_FSIC_V2_FORMAT = not _flag("INTEROP_FSIC_V2")
# Morango has no setting for GZIP_BUFFER_POST (it is on whenever `gzip` imports); school.apps removes it.
INTEROP_GZIP_BUFFER_POST = _flag("INTEROP_GZIP")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
        "django.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "morango": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
