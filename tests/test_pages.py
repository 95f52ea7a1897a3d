import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.models import Page
from wagtail.test.utils import WagtailPageTestCase

from base.models import HomePage
from courses.models import BundlePage, CourseIndexPage, CoursePage, LessonPage, ModulePage
from tests.helpers import make_course


class PagePlacementTests(WagtailPageTestCase):
    def test_home_page_sits_under_the_root_only(self):
        self.assertAllowedParentPageTypes(HomePage, {Page})

    def test_catalog_sits_under_the_home_page(self):
        self.assertAllowedParentPageTypes(CourseIndexPage, {HomePage})
        self.assertAllowedSubpageTypes(CourseIndexPage, {CoursePage, BundlePage})

    def test_bundle_sits_in_the_catalog_and_holds_nothing(self):
        self.assertAllowedParentPageTypes(BundlePage, {CourseIndexPage})
        self.assertAllowedSubpageTypes(BundlePage, set())

    def test_course_sits_in_the_catalog_and_holds_modules(self):
        self.assertAllowedParentPageTypes(CoursePage, {CourseIndexPage})
        self.assertAllowedSubpageTypes(CoursePage, {ModulePage})

    def test_module_holds_lessons_only(self):
        self.assertAllowedParentPageTypes(ModulePage, {CoursePage})
        self.assertAllowedSubpageTypes(ModulePage, {LessonPage})

    def test_lesson_is_a_leaf(self):
        self.assertAllowedParentPageTypes(LessonPage, {ModulePage})
        self.assertAllowedSubpageTypes(LessonPage, set())

    def test_a_lesson_cannot_be_created_directly_under_a_course(self):
        self.assertCanNotCreateAt(CoursePage, LessonPage)


def test_catalog_shows_only_published_courses(client, catalog):
    make_course(catalog, slug="live-course")
    draft = make_course(catalog, slug="draft-course")
    draft.unpublish()
    response = client.get(catalog.url)
    assert b"Live-Course" in response.content
    assert b"Draft-Course" not in response.content


def count_queries(client, url):
    client.get(url)  # warm per-process caches (site root paths) so only the page is counted
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_catalog_query_count_does_not_grow_with_courses(client, catalog):
    make_course(catalog, slug="c0", lessons=1)
    few = count_queries(client, catalog.url)
    for i in range(1, 9):
        make_course(catalog, slug=f"c{i}", lessons=1)
    many = count_queries(client, catalog.url)
    assert many == few


def test_catalog_is_paginated(client, catalog):
    for i in range(CourseIndexPage.per_page + 1):
        publish_course = make_course(catalog, slug=f"p{i}", lessons=0)
        assert publish_course.live
    first = client.get(catalog.url)
    second = client.get(catalog.url + "?page=2")
    assert b"Page 1 of 2" in first.content
    assert b"Page 2 of 2" in second.content


def test_course_page_shows_curriculum_with_preview_badges(client, course):
    response = client.get(course.url)
    assert response.status_code == 200
    assert b"Lesson 1" in response.content and b"Lesson 2" in response.content
    assert response.content.count(b"Free preview") == 1
    assert b"$49.00" in response.content


def test_course_page_query_count_does_not_grow_with_lessons(client, catalog):
    small = make_course(catalog, slug="small", lessons=1)
    large = make_course(catalog, slug="large", lessons=8)
    assert count_queries(client, small.url) == count_queries(client, large.url)


def test_search_finds_lesson_titles_and_summaries_but_never_bodies(catalog):
    make_course(catalog, indexed=True)
    assert LessonPage.objects.live().search("Summary").count() == 2
    assert LessonPage.objects.live().search("Secret").count() == 0


def test_healthz_answers_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


class EditorAuthoringTests(WagtailPageTestCase):
    """An editor creates and publishes a course tree through the admin's own forms."""

    def setUp(self):
        from tests.helpers import publish

        # force_login: django-axes (rightly) refuses authenticate() calls without a request.
        self.client.force_login(self.create_superuser("admin", "admin@example.com", "password"))
        root = Page.get_first_root_node()
        self.home = publish(root, HomePage(title="Home", slug="home-admin"))
        self.catalog = publish(self.home, CourseIndexPage(title="Courses", slug="courses"))

    def test_an_editor_creates_a_course_module_and_lessons_in_the_admin(self):
        from wagtail.test.utils.form_data import (
            inline_formset,
            nested_form_data,
            rich_text,
            streamfield,
        )

        self.assertCanCreate(
            self.catalog,
            CoursePage,
            nested_form_data(
                {
                    "title": "Authoring 101",
                    "slug": "authoring-101",
                    "summary": "Write courses.",
                    "level": "beginner",
                    "estimated_hours": 2,
                    "price_amount": 1900,
                    "price_currency": "usd",
                    "outcomes": streamfield([("outcome", "Publish a course")]),
                    "description": streamfield([]),
                    "comments": inline_formset([]),
                }
            ),
        )
        course = CoursePage.objects.get(slug="authoring-101")
        self.assertCanCreate(
            course,
            ModulePage,
            nested_form_data(
                {
                    "title": "Basics",
                    "slug": "basics",
                    "intro": rich_text("<p>Start</p>"),
                    "comments": inline_formset([]),
                }
            ),
        )
        module = ModulePage.objects.get(slug="basics")
        for slug, preview in (("free-one", True), ("paid-one", False)):
            data = {
                "title": slug,
                "slug": slug,
                "summary": "s",
                "estimated_minutes": 5,
                "body": streamfield([("text", rich_text("<p>Hello</p>"))]),
                "resources": inline_formset([]),
                "comments": inline_formset([]),
            }
            if preview:
                data["is_free_preview"] = "on"
            self.assertCanCreate(module, LessonPage, nested_form_data(data))
        self.assertEqual(course.lessons().count(), 2)
        self.assertTrue(LessonPage.objects.get(slug="free-one").is_free_preview)

    def test_an_editor_previews_and_publishes_a_course(self):
        from django.urls import reverse

        course = CoursePage(title="Draft course", slug="draft-course", summary="s", live=False)
        self.catalog.add_child(instance=course)
        course.save_revision()
        preview = self.client.get(reverse("wagtailadmin_pages:view_draft", args=[course.pk]))
        self.assertEqual(preview.status_code, 200)
        self.assertContains(preview, "Draft course")
        course.get_latest_revision().publish()
        course.refresh_from_db()
        self.assertTrue(course.live)


def test_the_lesson_editor_renders_every_block_type(superuser_client, course):
    module = course.get_children().first()
    response = superuser_client.get(f"/admin/pages/add/courses/lessonpage/{module.pk}/")
    assert response.status_code == 200
    assert b"Stream video" in response.content


def test_a_lesson_longer_than_ten_hours_is_refused(course):
    from django.core.exceptions import ValidationError

    lesson = course.lessons().first().specific
    lesson.estimated_minutes = 601
    with pytest.raises(ValidationError) as refused:
        lesson.full_clean()
    assert "Split it" in str(refused.value.message_dict["estimated_minutes"])


def test_old_image_blocks_keep_their_alt_text_in_wagtails_image_block():
    import importlib

    migration = importlib.import_module("courses.migrations.0006_image_block_alt_text")
    stream = [
        {
            "type": "image",
            "id": "a",
            "value": {"image": 7, "caption": "A chart", "alt_text": "Sales"},
        },
        {"type": "text", "id": "b", "value": "<p>x</p>"},
    ]
    assert migration._convert(stream)
    assert stream[0]["value"] == {
        "image": {"image": 7, "alt_text": "Sales", "decorative": False},
        "caption": "A chart",
    }
    assert not migration._convert(stream)  # already converted: nothing to do


def test_an_image_block_renders_its_alt_text(client, course, tmp_path):
    from django.core.files.images import ImageFile
    from PIL import Image as PILImage
    from wagtail.images.models import Image

    path = tmp_path / "chart.png"
    PILImage.new("RGB", (40, 20), "navy").save(path)
    with path.open("rb") as fh:
        image = Image.objects.create(title="chart", file=ImageFile(fh, name="chart.png"))
    lesson = course.lessons().filter(is_free_preview=True).first().specific
    lesson.body = [
        {
            "type": "image",
            "value": {
                "image": {"image": image.pk, "alt_text": "Sales by month", "decorative": False},
                "caption": "A chart",
            },
        }
    ]
    lesson.save_revision().publish()
    html = client.get(lesson.url).content.decode()
    assert 'alt="Sales by month"' in html and "A chart" in html
