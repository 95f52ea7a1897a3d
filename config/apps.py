from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Site-wide pieces: the custom user, the home page and site settings."""

    name = "config"
    label = "config"
    verbose_name = "Site"
