"""Settings for the test suite: the real settings with test-only speed-ups."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-" + "k8Jq2vX7pLm3Nw9RtY4bZc6Hd1Fg5Ks0Ae" * 2)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")
os.environ.setdefault("STRIPE_SECRET_KEY", "sk_test_emulator")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = BASE_DIR / ".test-media"  # noqa: F405
PRIVATE_MEDIA_ROOT = BASE_DIR / ".test-media" / "private"  # noqa: F405
STORAGES["private"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": "/downloads/unavailable/"},
}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# One process runs the suite; the database cache that production uses without Redis is
# proven by tests/test_security_http.py against a real table.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Suites buy hundreds of courses from 127.0.0.1; the limit itself is tested with its own rate.
CHECKOUT_RATE = "100000/h"
