"""Production settings plus one bench-only view: the floor a webhook is measured against."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-" + "Zq8Lm2Wx7Vt4Kp9Rn3Bs6Hy1Jd5Fc0Ga" * 2)

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="No directory at")
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}  # noqa: F405
