from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Below every other app: the custom user, the home page, site settings, rate limiting and
    /healthz. The label stays "config" (where these models were born), so tables, migrations
    and AUTH_USER_MODEL = "config.User" are unchanged."""

    name = "base"
    label = "config"
    verbose_name = "Site"

    def ready(self):
        from django.urls import register_converter

        from base import caching
        from base.converters import RowId

        register_converter(RowId, "id")
        from base.templatetags import base_tags  # noqa: F401 - connects remember_editor

        caching.connect()
