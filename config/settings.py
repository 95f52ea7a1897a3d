"""Settings for the course site, read from the environment.

Local development runs on embedded defaults (SQLite, local files, console e-mail, the ORM
task broker) with ``DEBUG=1``. With DEBUG off the site refuses to start on an unsafe
configuration. Every variable is documented in docs/configuration.md.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.storage import r2_private_storage

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-local-development-only-never-use-in-production"
SECRET_KEY = env("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and (
    not SECRET_KEY
    or SECRET_KEY.startswith("django-insecure")
    or len(set(SECRET_KEY)) < 5
    or len(SECRET_KEY) < 50
):
    raise ImproperlyConfigured(
        "Refusing to start with DEBUG off and an unsafe SECRET_KEY: set SECRET_KEY to a random "
        "string of at least 50 characters (or set DEBUG=1 for local development)."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "base",
    "courses",
    "commerce",
    "learner",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    "allauth",
    "allauth.account",
    "axes",
    "django_q",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Stripe's webhook is answered here, past the learner site's middleware below.
    "commerce.middleware.StripeWebhookMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "base.middleware.CachedSiteMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = env_bool("ATOMIC_REQUESTS", False)
transaction_pooling = env_bool("DB_TRANSACTION_POOLING", False)  # PgBouncer, transaction mode
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Wagtail's PostgreSQL search index uses its fields and indexes (Django 6 checks it).
    INSTALLED_APPS.append("django.contrib.postgres")
    if not transaction_pooling:
        # No JIT: every query here is short, and a cost estimate that drifts past
        # jit_above_cost (the webhook's items query sits near it) costs tens of milliseconds
        # of compiling. PgBouncer refuses this startup option: set it on the role there
        # (docs/operations.md).
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
        # psycopg may prepare statements (any threshold allows it; None forbids it):
        # base.db.statement_cursor has it prepare the webhook's and the lesson gate's on
        # their first run on a connection, so PostgreSQL stops parsing and planning them
        # anew; Django's own queries bind on the client and are never prepared. A
        # transaction-mode pooler cannot keep prepared statements: left off (None) there.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
# Behind PgBouncer in transaction mode a server-side cursor cannot outlive its transaction.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = transaction_pooling
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite has no row locks: take the write lock when a transaction starts and wait for it,
    # so the webhook, the success page and the worker queue up instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

AUTH_USER_MODEL = "config.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses every login form (Wagtail admin, allauth) while an address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/my-courses/"

# django-allauth: the e-mail address is the login identifier and must be verified.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlsplit(SITE_URL).scheme or "https"
ACCOUNT_ADAPTER = "learner.accounts.AccountAdapter"

# django-axes: failed logins on every form are counted in the database (shared by every
# process and node) per account and client address; the account unlocks after a cool-off.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_CLIENT_IP_CALLABLE = "base.ratelimit.client_ip"
AXES_USERNAME_CALLABLE = "base.ratelimit.login_identifier"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
# Public images from local storage (documents never: they are gated by Wagtail's serve view).
SERVE_MEDIA = env_bool("SERVE_MEDIA", DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Private lesson files: a storage of their own, never public. Local files by default;
# Cloudflare R2 (or any S3-compatible store) when a bucket is configured. No custom domain on
# this storage: it would make URLs unsigned.
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", str(BASE_DIR / "private-media")))
SIGNED_URL_TTL = min(env_int("SIGNED_URL_TTL", 300), 3600)
DOWNLOAD_RATE = env("DOWNLOAD_RATE", "30/h")
QUIZ_RATE = env("QUIZ_RATE", "60/h")
CERTIFICATE_FONT = env("CERTIFICATE_FONT")  # a .ttf; empty: DejaVu Sans where installed
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["private"] = r2_private_storage(
        bucket=AWS_STORAGE_BUCKET_NAME,
        endpoint_url=env("AWS_S3_ENDPOINT_URL"),
        access_key=env("AWS_ACCESS_KEY_ID"),
        secret_key=env("AWS_SECRET_ACCESS_KEY"),
        ttl=SIGNED_URL_TTL,
        region=env("AWS_S3_REGION_NAME", "auto"),
        addressing_style=env("AWS_S3_ADDRESSING_STYLE", "path"),
    )
else:
    STORAGES["private"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": "/downloads/unavailable/"},
    }

# Cloudflare Stream signed playback (optional): the signing key's id and its PEM (or the
# base64 of it, as Cloudflare returns it).
STREAM_SIGNING_KEY_ID = env("STREAM_SIGNING_KEY_ID")
STREAM_SIGNING_KEY_PEM = env("STREAM_SIGNING_KEY_PEM")
STREAM_CUSTOMER_CODE = env("STREAM_CUSTOMER_CODE")
STREAM_TOKEN_TTL = env_int("STREAM_TOKEN_TTL", 3600)
# Offline demos only: a video file (URL) played in place of every Stream video when no Stream
# customer code is set. Never real content: it is a public file.
STREAM_LOCAL_VIDEO = env("STREAM_LOCAL_VIDEO")
VIDEO_COMPLETE_PERCENT = env_int("VIDEO_COMPLETE_PERCENT", 90)

REDIS_URL = env("REDIS_URL")
# Rate limits and allauth's throttles live in the cache, so every process must share it:
# Redis when configured; otherwise, with DEBUG off, a database table (created by migrate).
# Per-process memory is for local development only.
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, failing open while Redis restarts (base.cache).
            "BACKEND": "base.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
        }
    }
elif not DEBUG:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2: the ORM broker needs nothing extra; Redis when REDIS_URL is set.
Q_CLUSTER = {
    "name": "coursesite",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 60,
    "retry": 120,
    "max_attempts": 3,
    "catch_up": False,
    "sync": env_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH") or None  # the file-based back-end's folder
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Receipts and notifications are sent while their row is locked: never wait long on SMTP.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Courses <courses@localhost>")

# Stripe. STRIPE_API_BASE points the SDK at a local Stripe-compatible server.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env("STRIPE_API_BASE")
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)
STRIPE_TIMEOUT = env_int("STRIPE_TIMEOUT", 20)
ORDER_TTL_MINUTES = env_int("ORDER_TTL_MINUTES", 60)
PARTIAL_REFUND_REVOKES = env_bool("PARTIAL_REFUND_REVOKES", False)
# Days a membership whose renewal failed (Stripe: past_due) keeps its courses open.
MEMBERSHIP_GRACE_DAYS = env_int("MEMBERSHIP_GRACE_DAYS", 7)
DEFAULT_CURRENCY = env("DEFAULT_CURRENCY", "usd").lower()
CLAIM_LINK_HOURS = env_int("CLAIM_LINK_HOURS", 72)
RECONCILE_DAYS = env_int("RECONCILE_DAYS", 3)
FIND_PURCHASES_RATE = env("FIND_PURCHASES_RATE", "5/h")
CHECKOUT_RATE = env("CHECKOUT_RATE", "20/h")
# How many reverse proxies in front of the site append to X-Forwarded-For (0: trust none and
# use the connection's address). Rate limits and login lockouts key on the result.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# A production-mode (DEBUG off) run against a Stripe-compatible test server (the local
# emulator, stripe-mock) for staging. Refused unless set, and only with a test-mode key.
STRIPE_ALLOW_TEST_SERVER = env_bool("STRIPE_ALLOW_TEST_SERVER", False)

# Security: on by default when DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# One year once DEBUG is off (browsers only honour it over HTTPS); raise the stakes with the
# subdomain and preload flags only when every subdomain serves HTTPS.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "SAMEORIGIN"

SITE_NAME = env("SITE_NAME", "Courses")
WAGTAIL_SITE_NAME = SITE_NAME
WAGTAILADMIN_BASE_URL = SITE_URL
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "docx", "key", "odt", "pdf", "pptx", "rtf", "txt", "xlsx", "zip"]
WAGTAILDOCS_SERVE_METHOD = "serve_view"
WAGTAIL_I18N_ENABLED = False
# The responsive wrapper is an inline style, which the Content-Security-Policy forbids; the
# stylesheet sizes embeds instead.
WAGTAILEMBEDS_RESPONSIVE_HTML = False


def _origin(url):
    bits = urlsplit(url)
    return f"{bits.scheme}://{bits.netloc}" if bits.scheme and bits.netloc else None


# Content-Security-Policy (django-csp) on every page but Wagtail's admin, whose own scripts
# are inline. The site itself needs no inline script or style. Checkout forms redirect to
# Stripe's hosted page (or the local emulator's), so form-action names it.
_STRIPE_PAGES = ["https://checkout.stripe.com", "https://billing.stripe.com"]
if STRIPE_API_BASE and _origin(STRIPE_API_BASE):
    _STRIPE_PAGES.append(_origin(STRIPE_API_BASE))
_VIDEO_FRAMES = [
    "https://www.youtube.com",
    "https://www.youtube-nocookie.com",
    "https://player.vimeo.com",
    "https://iframe.videodelivery.net",
    "https://*.cloudflarestream.com",
]
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        # Cloudflare Stream's player SDK, for playback progress (static/js/video-progress.js).
        "script-src": ["'self'", "https://embed.cloudflarestream.com"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"] + env_list("CSP_IMG_SRC"),
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "media-src": ["'self'"],
        "frame-src": _VIDEO_FRAMES,
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"] + _STRIPE_PAGES,
    },
}

# LOG_FORMAT=json: one JSON object per line, money lines with order_id / membership_id /
# event_id fields of their own (base.observability.MoneyIds).
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"money_ids": {"()": "base.observability.MoneyIds"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["money_ids"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Wagtail runs its search and reference-index updates as django-tasks tasks.
        "django_tasks": {"level": "WARNING"},
        "wagtail": {"level": "WARNING"},
    },
}

# Error reporting, only when SENTRY_DSN is set: no personal data, request bodies, cookies or
# card-like numbers leave the process (base.observability.scrub).
SENTRY_DSN = env("SENTRY_DSN")
if SENTRY_DSN:
    from base.observability import init_sentry

    init_sentry(
        SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT"),
        release=env("SENTRY_RELEASE"),
        traces_sample_rate=float(env("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
    )

# /metrics (Prometheus text format) answers only with this bearer token; unset, it is off.
METRICS_TOKEN = env("METRICS_TOKEN")
