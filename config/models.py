from django.contrib.auth.models import AbstractUser
from django.db import models
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField
from wagtail.models import Page


class User(AbstractUser):
    """Custom from the first migration so the account model can grow without a rewrite."""

    class Meta:
        db_table = "auth_user_custom"


class HomePage(Page):
    """The site root: an introduction and the featured courses."""

    headline = models.CharField(max_length=200, default="Learn something worth knowing")
    intro = RichTextField(blank=True)

    content_panels = Page.content_panels + [FieldPanel("headline"), FieldPanel("intro")]

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["courses.CourseIndexPage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        from courses.models import CourseIndexPage, CoursePage

        context = super().get_context(request, *args, **kwargs)
        context["catalog"] = CourseIndexPage.objects.child_of(self).live().first()
        context["featured_courses"] = (
            CoursePage.objects.descendant_of(self)
            .live()
            .public()
            .select_related("cover_image")
            .prefetch_related("cover_image__renditions")
            .order_by("path")[:3]
        )
        return context


@register_setting(icon="site")
class SiteSettings(BaseSiteSetting):
    support_email = models.EmailField(blank=True, help_text="Shown to learners who need help.")
    footer_text = models.CharField(max_length=255, blank=True)

    panels = [FieldPanel("support_email"), FieldPanel("footer_text")]
