from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.db import models
from django.db.models.functions import Upper
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField
from wagtail.models import Page


class User(AbstractUser):
    """Custom from the first migration so the account model can grow without a rewrite."""

    class Meta:
        db_table = "auth_user_custom"
        indexes = [
            # Addresses are compared without case (log-in, claims, "does an account own this
            # course?" on every guest payment): an index for that comparison.
            models.Index(Upper("email"), name="user_email_upper"),
        ]


class HomePage(Page):
    """The site root: an introduction and the featured courses."""

    headline = models.CharField(max_length=200, default="Learn something worth knowing")
    intro = RichTextField(blank=True)

    content_panels = Page.content_panels + [FieldPanel("headline"), FieldPanel("intro")]

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["courses.CourseIndexPage"]
    max_count = 1
    # The catalog and featured courses come from courses' template tags: base knows no app
    # above it.


@register_setting(icon="site")
class SiteSettings(BaseSiteSetting):
    support_email = models.EmailField(blank=True, help_text="Shown to learners who need help.")
    footer_text = models.CharField(max_length=255, blank=True)

    panels = [FieldPanel("support_email"), FieldPanel("footer_text")]

    # Every page's header and footer read these: from the cache, not a query per page view.
    CACHE_TTL = 300

    @classmethod
    def for_site(cls, site):
        if site is None:
            return super().for_site(site)
        key = f"site-settings:{site.pk}"
        instance = cache.get(key)
        if instance is None:
            instance = super().for_site(site)
            cache.set(key, instance, cls.CACHE_TTL)
        return instance

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        cache.delete(f"site-settings:{self.site_id}")
