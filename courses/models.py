from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from modelcluster.fields import ParentalKey
from wagtail import blocks
from wagtail.admin.panels import FieldPanel, InlinePanel, MultiFieldPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Orderable, Page, Site
from wagtail.search import index

from base import caching
from base.models import CachedViewRestrictions
from base.money import format_money
from courses.blocks import CourseDescriptionBlock, LessonBodyBlock
from courses.forms import BundlePageForm

CURRENCIES = [
    (code, code.upper())
    for code in ("usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "sek", "nok", "dkk", "jpy")
]


@dataclass(frozen=True)
class OutlineLesson:
    """A lesson as the outline and the course page list it. Immutable, as everything cached
    is: one request's readers share it (base.caching)."""

    pk: int
    title: str
    url: str
    is_free_preview: bool
    estimated_minutes: int
    # Its release rule with its module's folded in (ReleaseRule.combine): when it opens.
    release_after_days: int | None = None
    release_on: date | None = None


@dataclass(frozen=True)
class ReleaseRule:
    """When a lesson opens for a learner: some days after their access began, on a date, or
    both (the later wins). Empty: open as soon as the learner may open the course."""

    after_days: int | None = None
    on: date | None = None

    def __bool__(self):
        return self.after_days is not None or self.on is not None

    def combine(self, other: "ReleaseRule") -> "ReleaseRule":
        """A lesson in a released-later module opens no earlier than its module."""
        days = [d for d in (self.after_days, other.after_days) if d is not None]
        dates = [d for d in (self.on, other.on) if d is not None]
        return ReleaseRule(max(days) if days else None, max(dates) if dates else None)


@dataclass(frozen=True)
class OutlineModule:
    pk: int
    title: str
    lesson_list: tuple[OutlineLesson, ...] = ()


def default_currency():
    """New courses are priced in DEFAULT_CURRENCY (read when a course is created)."""
    from django.conf import settings

    return settings.DEFAULT_CURRENCY


class CourseIndexPage(CachedViewRestrictions, Page):
    """The catalog: every published course below it, paginated."""

    intro = RichTextField(blank=True)
    per_page = 12

    content_panels = Page.content_panels + [FieldPanel("intro")]
    parent_page_types = ["config.HomePage"]
    subpage_types = ["courses.CoursePage", "courses.BundlePage"]

    def courses(self):
        return (
            CoursePage.objects.child_of(self)
            .live()
            .public()
            .select_related("cover_image")
            .prefetch_related("cover_image__renditions")
            .order_by("path")
        )

    def bundles(self):
        return (
            BundlePage.objects.child_of(self)
            .live()
            .public()
            .select_related("cover_image")
            .prefetch_related("cover_image__renditions")
            .order_by("path")
        )

    def get_context(self, request, *args, **kwargs):
        """The listing itself is a cached fragment (see the template): only its size and the
        page asked for are worked out here, without a query once cached."""
        context = super().get_context(request, *args, **kwargs)
        size = caching.cached(
            "catalog-size", self.pk, build=lambda: self.courses().count(), request=request
        )
        pages = max(1, -(-size // self.per_page))
        asked = request.GET.get("page", "1")
        # As Paginator.get_page: not a number → the first page, past the end → the last.
        number = min(int(asked), pages) if asked.isdigit() and int(asked) > 0 else 1
        context.update(page_number=number, num_pages=pages, has_courses=size > 0)
        return context


class CoursePage(CachedViewRestrictions, Page):
    LEVELS = [
        ("beginner", "Beginner"),
        ("intermediate", "Intermediate"),
        ("advanced", "Advanced"),
    ]

    summary = models.CharField(max_length=300, help_text="One or two sentences for listings.")
    description = StreamField(CourseDescriptionBlock(), blank=True)
    cover_image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    level = models.CharField(max_length=20, choices=LEVELS, default="beginner")
    estimated_hours = models.PositiveSmallIntegerField(
        default=1, help_text="Rough time to finish the course, in hours."
    )
    price_amount = models.PositiveIntegerField(
        default=0, help_text="In minor units (cents): 4900 is 49.00. Zero makes the course free."
    )
    price_currency = models.CharField(
        max_length=3,
        choices=CURRENCIES,
        default=default_currency,
        validators=[RegexValidator(r"^[a-z]{3}$", "Use a lower-case ISO 4217 code.")],
    )
    outcomes = StreamField(
        [("outcome", blocks.CharBlock())],
        blank=True,
        verbose_name="What you will learn",
    )

    content_panels = Page.content_panels + [
        FieldPanel("summary"),
        FieldPanel("cover_image"),
        MultiFieldPanel(
            [FieldPanel("level"), FieldPanel("estimated_hours")], heading="Level and length"
        ),
        MultiFieldPanel(
            [FieldPanel("price_amount"), FieldPanel("price_currency")], heading="Price"
        ),
        FieldPanel("outcomes"),
        FieldPanel("description"),
    ]
    search_fields = Page.search_fields + [index.SearchField("summary")]
    parent_page_types = ["courses.CourseIndexPage"]
    subpage_types = ["courses.ModulePage"]

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_currency__regex=r"^[a-z]{3}$"),
                name="course_price_currency_iso",
            )
        ]

    @property
    def is_free(self):
        return self.price_amount == 0

    @property
    def price_display(self):
        return "Free" if self.is_free else format_money(self.price_amount, self.price_currency)

    def curriculum(self, request=None) -> tuple["OutlineModule", ...]:
        """Modules with their live, public lessons in page order: plain values (never a lesson
        body), the same for every visitor, so built once per content change (base.caching)
        and then read without a query."""
        site = Site.find_for_request(request) if request is not None else None
        return caching.cached(
            "curriculum",
            site.pk if site else "-",
            self.pk,
            build=lambda: self._build_curriculum(request),
            request=request,
        )

    def _build_curriculum(self, request):
        modules = list(
            ModulePage.objects.child_of(self)
            .live()
            .public()
            .only("title", "path", "release_after_days", "release_on")
            .order_by("path")
        )
        module_rules = {m.path: m.own_release for m in modules}
        lessons = (
            LessonPage.objects.descendant_of(self)
            .live()
            .public()
            .only(
                "title",
                "path",
                "url_path",
                "depth",
                "is_free_preview",
                "estimated_minutes",
                "release_after_days",
                "release_on",
            )
            .order_by("path")
        )
        by_module = {}
        for lesson in lessons:
            parent = lesson.path[: -Page.steplen]
            rule = lesson.own_release.combine(module_rules.get(parent, ReleaseRule()))
            by_module.setdefault(parent, []).append(
                OutlineLesson(
                    pk=lesson.pk,
                    title=lesson.title,
                    url=lesson.get_url(request),
                    is_free_preview=lesson.is_free_preview,
                    estimated_minutes=lesson.estimated_minutes,
                    release_after_days=rule.after_days,
                    release_on=rule.on,
                )
            )
        return tuple(
            OutlineModule(pk=m.pk, title=m.title, lesson_list=tuple(by_module.get(m.path, ())))
            for m in modules
        )

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["curriculum"] = self.curriculum(request)
        return context

    def lessons(self):
        return LessonPage.objects.descendant_of(self).live().order_by("path")

    def first_lesson(self, request=None):
        return next((lesson for m in self.curriculum(request) for lesson in m.lesson_list), None)


class BundlePage(CachedViewRestrictions, Page):
    """Several courses sold together at one price. Past orders keep what they bought: the
    order snapshots one item per course, so editing the bundle later changes nothing for them."""

    summary = models.CharField(max_length=300, help_text="One or two sentences for listings.")
    description = StreamField(CourseDescriptionBlock(), blank=True)
    cover_image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    price_amount = models.PositiveIntegerField(
        validators=[MinValueValidator(1, "A bundle has a price; free courses need no bundle.")],
        help_text="The bundle price in minor units (cents): 9900 is 99.00.",
    )
    price_currency = models.CharField(
        max_length=3,
        choices=CURRENCIES,
        default=default_currency,
        validators=[RegexValidator(r"^[a-z]{3}$", "Use a lower-case ISO 4217 code.")],
        help_text="Every course in the bundle must be priced in this currency.",
    )

    content_panels = Page.content_panels + [
        FieldPanel("summary"),
        FieldPanel("cover_image"),
        MultiFieldPanel(
            [FieldPanel("price_amount"), FieldPanel("price_currency")], heading="Bundle price"
        ),
        InlinePanel("bundle_courses", heading="Courses", label="Course", min_num=1),
        FieldPanel("description"),
    ]
    search_fields = Page.search_fields + [index.SearchField("summary")]
    parent_page_types = ["courses.CourseIndexPage"]
    subpage_types = []
    base_form_class = BundlePageForm

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_currency__regex=r"^[a-z]{3}$"),
                name="bundle_price_currency_iso",
            ),
            models.CheckConstraint(
                condition=models.Q(price_amount__gt=0), name="bundle_price_positive"
            ),
        ]

    def clean(self):
        super().clean()
        courses = [row.course for row in self.bundle_courses.all() if row.course_id]
        if len({c.pk for c in courses}) != len(courses):
            raise ValidationError("A course appears twice in this bundle.")
        other = sorted({c.title for c in courses if c.price_currency != self.price_currency})
        if other:
            raise ValidationError(
                f"Priced in another currency than the bundle's: {', '.join(other)}."
            )

    def courses(self):
        """The courses on sale in this bundle, in the editor's order: live ones only."""
        rows = (
            self.bundle_courses.filter(course__live=True)
            .select_related("course", "course__cover_image")
            .prefetch_related("course__cover_image__renditions")
        )
        return [row.course for row in rows.order_by("sort_order", "pk")]

    @property
    def is_free(self):
        return False

    @property
    def price_display(self):
        return format_money(self.price_amount, self.price_currency)

    def list_total(self, courses=None):
        courses = self.courses() if courses is None else courses
        return sum(c.price_amount for c in courses)

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        courses = self.courses()
        total = self.list_total(courses)
        context.update(
            courses=courses,
            list_total=format_money(total, self.price_currency),
            saving=format_money(total - self.price_amount, self.price_currency)
            if total > self.price_amount
            else "",
        )
        return context


class BundleCourse(Orderable):
    """One course of a bundle, in the editor's order."""

    page = ParentalKey(BundlePage, on_delete=models.CASCADE, related_name="bundle_courses")
    course = models.ForeignKey(CoursePage, on_delete=models.CASCADE, related_name="+")

    panels = [FieldPanel("course")]

    class Meta(Orderable.Meta):
        constraints = [
            models.UniqueConstraint(fields=["page", "course"], name="bundle_course_once")
        ]

    def __str__(self):
        return f"{self.course} in {self.page}"


class Released(models.Model):
    """Drip release: a module or a lesson opens some days after the learner's access began
    (bought or by membership), or on a date. Free previews and free courses ignore the days."""

    release_after_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(3650)],
        verbose_name="Opens days after access",
        help_text="Days after the learner bought the course (or joined). Empty: at once.",
    )
    release_on = models.DateField(
        null=True,
        blank=True,
        verbose_name="Opens on",
        help_text="A date (the site's time zone) before which nobody but staff can open it.",
    )

    release_panel = MultiFieldPanel(
        [FieldPanel("release_after_days"), FieldPanel("release_on")],
        heading="Release",
        classname="collapsed",
    )

    class Meta:
        abstract = True

    @property
    def own_release(self) -> ReleaseRule:
        return ReleaseRule(self.release_after_days, self.release_on)


class ModulePage(CachedViewRestrictions, Released, Page):  # noqa: DJ008 - Page gives __str__
    intro = RichTextField(blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro"), Released.release_panel]
    search_fields = Page.search_fields
    parent_page_types = ["courses.CoursePage"]
    subpage_types = ["courses.LessonPage"]

    def course(self):
        return CoursePage.objects.parent_of(self).first()

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["course"] = self.course()
        context["lessons"] = LessonPage.objects.child_of(self).live().public().order_by("path")
        return context


def private_storage():
    """Lesson files live on the private storage: never a stable public address."""
    from django.core.files.storage import storages

    return storages["private"]


RESOURCE_EXTENSIONS = [
    "pdf",
    "zip",
    "pptx",
    "key",
    "odp",
    "txt",
    "md",
    "py",
    "ipynb",
    "csv",
    "xlsx",
    "docx",
    "epub",
    "mp3",
]


class LessonResource(Orderable):
    """A downloadable file attached to a lesson (slides, PDF, source code)."""

    lesson = ParentalKey("courses.LessonPage", on_delete=models.CASCADE, related_name="resources")
    title = models.CharField(max_length=200)
    description = models.CharField(max_length=300, blank=True)
    file = models.FileField(
        upload_to="lesson-resources/%Y/%m/",
        storage=private_storage,
        max_length=300,
        validators=[FileExtensionValidator(RESOURCE_EXTENSIONS)],
    )

    panels = [FieldPanel("title"), FieldPanel("description"), FieldPanel("file")]

    def __str__(self):
        return self.title

    @property
    def filename(self):
        return self.file.name.rsplit("/", 1)[-1]

    @property
    def extension(self):
        return self.filename.rsplit(".", 1)[-1].upper() if "." in self.filename else ""


# What a lesson's page and gate read of its course (LessonPage.course).
COURSE_HEADER_FIELDS = (
    "title",
    "slug",
    "path",
    "depth",
    "url_path",
    "live",
    "price_amount",
    "price_currency",
    "locale_id",
)


class LessonPage(CachedViewRestrictions, Released, Page):  # noqa: DJ008 - Page gives __str__
    summary = models.CharField(max_length=300, blank=True)
    body = StreamField(LessonBodyBlock(), blank=True)
    estimated_minutes = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(600, "A lesson longer than 10 hours? Split it.")],
    )
    is_free_preview = models.BooleanField(
        default=False, help_text="Anyone may read this lesson, bought or not."
    )

    content_panels = Page.content_panels + [
        FieldPanel("summary"),
        MultiFieldPanel(
            [FieldPanel("estimated_minutes"), FieldPanel("is_free_preview")], heading="Access"
        ),
        Released.release_panel,
        FieldPanel("body"),
        InlinePanel("resources", heading="Downloads", label="File"),
    ]
    # Titles and summaries only: a lesson body is paid content and never searchable.
    search_fields = Page.search_fields + [index.SearchField("summary")]
    parent_page_types = ["courses.ModulePage"]
    subpage_types = []

    def course(self):
        """The course this lesson belongs to: the fields a gate and a page header read, which
        change only when the course is published, so cached under the content generation."""
        if not hasattr(self, "_course"):
            # Two levels up (course → module → lesson, as parent_page_types require): one
            # lookup by path.
            path = self.path[: (self.depth - 2) * Page.steplen]
            self._course = caching.cached(
                "lesson-course",
                path,
                build=lambda: (
                    CoursePage.objects.filter(path=path).only(*COURSE_HEADER_FIELDS).first()
                ),
            )
        return self._course

    def clean(self):
        super().clean()
        # Quiz answers name questions and choices by id. Reading every block gives list items
        # stored without one (content written by code) their ids before they are saved;
        # otherwise each read of the page would make new ones.
        list(self.body)

    def release_rule(self, request=None) -> ReleaseRule:
        """This lesson's rule with its module's, from the cached outline (no query) or, for a
        lesson the outline does not list (private, a draft being previewed), the database."""
        course = self.course()
        if course is not None:
            for module in course.curriculum(request):
                for item in module.lesson_list:
                    if item.pk == self.pk:
                        return ReleaseRule(item.release_after_days, item.release_on)
        module = (
            ModulePage.objects.filter(path=self.path[: -Page.steplen])
            .only("release_after_days", "release_on")
            .first()
        )
        return self.own_release.combine(module.own_release if module else ReleaseRule())

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        course = self.course()
        context["course"] = course
        # The outline (cached) gives the module and the neighbours: no query of their own.
        modules = course.curriculum(request) if course else []
        siblings = [lesson for module in modules for lesson in module.lesson_list]
        index_of = next((i for i, lesson in enumerate(siblings) if lesson.pk == self.pk), None)
        if index_of is not None:
            context["previous_lesson"] = siblings[index_of - 1] if index_of > 0 else None
            context["next_lesson"] = (
                siblings[index_of + 1] if index_of + 1 < len(siblings) else None
            )
        context["module"] = next(
            (m for m in modules if any(lesson.pk == self.pk for lesson in m.lesson_list)), None
        )
        return context
