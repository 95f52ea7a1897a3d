from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.db import models
from django.db.models.functions import Upper
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField
from wagtail.models import Page, PageViewRestriction

from base import caching


class User(AbstractUser):
    """Custom from the first migration so the account model can grow without a rewrite."""

    class Meta:
        db_table = "auth_user_custom"
        indexes = [
            # Addresses are compared without case (log-in, claims, "does an account own this
            # course?" on every guest payment): an index for that comparison.
            models.Index(Upper("email"), name="user_email_upper"),
        ]


class CachedViewRestrictions:
    """Wagtail asks for a page's view restrictions on every request it serves: two queries,
    its ancestors, then their restrictions. Which restrictions apply changes only when a
    restriction, a page or the tree does, and each of those moves the content generation on
    (base.caching), so the ids are kept under it; a page with none answers without a query.
    Whether a request passes one (password, login, group) is still decided per request.

    The key holds what the answer is built from (the page's place in the tree, the page it
    is an alias of), so an instance loaded before a move cannot store an answer for the old
    place under the new generation. A transaction that changed content builds the answer
    from the database and stores nothing (``caching.cached``), and a restriction deleted
    since its id was cached matches no row, so the page opens at once.
    """

    def get_view_restrictions(self):
        if self.pk is None:  # a page not saved yet has no key of its own
            return Page.get_view_restrictions(self)
        ids = caching.cached(
            "view-restrictions",
            self.pk,
            self.path,
            self.alias_of_id or "-",
            build=lambda: tuple(Page.get_view_restrictions(self).values_list("pk", flat=True)),
        )
        if not ids:
            return PageViewRestriction.objects.none()
        return PageViewRestriction.objects.filter(pk__in=ids)


class HomePage(CachedViewRestrictions, Page):
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
