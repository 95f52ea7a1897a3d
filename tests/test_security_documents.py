"""Finding 1: Wagtail documents are private by default and follow the lessons that used them.

Each case was served anonymously (200 with the file) before documents were private by default.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from wagtail.documents.models import Document

from commerce.models import LessonDocument
from tests.helpers import entitle, make_course

FILE = b"%PDF-1.4 paid slides"


def attachment(document):
    return {"type": "attachment", "value": {"document": document.pk, "description": "Slides"}}


@pytest.fixture
def document(db):
    return Document.objects.create(title="Slides", file=ContentFile(FILE, name="slides.pdf"))


def body_of(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def served(response):
    return response.status_code == 200 and body_of(response) == FILE


def refused(response):
    return response.status_code in (302, 403) and FILE not in body_of(response)


@pytest.fixture
def draft_lesson(course, document):
    """A paid lesson that was never published and uses the document."""
    from courses.models import LessonPage

    module = course.get_children().first()
    lesson = LessonPage(title="Draft lesson", slug="draft-lesson", live=False)
    module.add_child(instance=lesson)
    lesson.body = [attachment(document)]
    lesson.save_revision()
    return lesson


def test_a_document_used_only_by_a_draft_lesson_is_refused_to_a_visitor(
    client, draft_lesson, document
):
    response = client.get(document.url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_document_used_only_by_a_draft_lesson_is_refused_to_a_learner_without_access(
    client, draft_lesson, document, learner
):
    client.force_login(learner)
    assert client.get(document.url).status_code == 403


def test_a_document_used_only_by_a_draft_lesson_is_served_to_a_buyer_of_its_course(
    client, course, draft_lesson, document, learner
):
    entitle(learner, course)
    client.force_login(learner)
    assert served(client.get(document.url))


def test_a_document_in_an_unpublished_revision_of_a_live_paid_lesson_is_private(
    client, course, paid_lesson, document, learner
):
    paid_lesson.body = [attachment(document)]
    paid_lesson.save_revision()  # a draft on top of the live lesson, not published
    assert refused(client.get(document.url))
    client.force_login(learner)
    assert client.get(document.url).status_code == 403
    entitle(learner, course)
    assert served(client.get(document.url))


def test_a_document_stays_private_after_a_later_revision_drops_it(
    client, course, paid_lesson, document
):
    paid_lesson.body = [attachment(document)]
    paid_lesson.save_revision().publish()
    paid_lesson.body = []
    paid_lesson.save_revision().publish()
    assert LessonDocument.objects.filter(document=document, lesson=paid_lesson).exists()
    assert refused(client.get(document.url))


def test_a_document_of_an_unpublished_lesson_is_private(
    client, course, paid_lesson, document, learner
):
    paid_lesson.body = [attachment(document)]
    paid_lesson.save_revision().publish()
    paid_lesson.unpublish()
    assert refused(client.get(document.url))
    client.force_login(learner)
    assert client.get(document.url).status_code == 403
    entitle(learner, course)
    assert served(client.get(document.url))


def test_a_document_used_by_two_courses_opens_for_a_buyer_of_either(
    client, catalog, course, paid_lesson, document, django_user_model
):
    other = make_course(catalog, slug="sql", price=2900)
    other_lesson = other.lessons().filter(is_free_preview=False).specific().first()
    for lesson in (paid_lesson, other_lesson):
        lesson.body = [attachment(document)]
        lesson.save_revision().publish()
    buyer_of_sql = django_user_model.objects.create_user("sqlfan", "sql@example.com", "pw")
    entitle(buyer_of_sql, other)
    stranger = django_user_model.objects.create_user("stranger", "x@example.com", "pw")

    client.force_login(stranger)
    assert client.get(document.url).status_code == 403
    client.force_login(buyer_of_sql)
    assert served(client.get(document.url))


def test_a_document_no_page_uses_is_not_public(client, document):
    assert refused(client.get(document.url))


def test_a_document_of_a_free_preview_lesson_is_public(client, preview_lesson, document):
    preview_lesson.body = [attachment(document)]
    preview_lesson.save_revision().publish()
    assert served(client.get(document.url))


def test_a_document_of_a_free_course_is_public(client, free_course, document):
    lesson = free_course.lessons().filter(is_free_preview=False).specific().first()
    lesson.body = [attachment(document)]
    lesson.save_revision().publish()
    assert served(client.get(document.url))


def test_a_document_linked_from_a_live_non_lesson_page_is_public(client, catalog, document):
    catalog.intro = f'<p><a linktype="document" id="{document.pk}">Brochure</a></p>'
    catalog.save_revision().publish()
    assert served(client.get(document.url))


def test_a_document_linked_from_a_draft_non_lesson_page_is_not_public(client, catalog, document):
    catalog.intro = f'<p><a linktype="document" id="{document.pk}">Brochure</a></p>'
    catalog.save_revision()  # draft only
    assert refused(client.get(document.url))


def test_a_paid_document_is_still_private_when_a_draft_free_preview_uses_it(
    client, course, paid_lesson, preview_lesson, document
):
    paid_lesson.body = [attachment(document)]
    paid_lesson.save_revision().publish()
    preview_lesson.body = [attachment(document)]
    preview_lesson.save_revision()  # not published: the live preview does not show it
    assert refused(client.get(document.url))


def test_an_editor_with_admin_access_may_fetch_any_document(
    client, draft_lesson, document, django_user_model
):
    editor = django_user_model.objects.create_user("editor", "editor@example.com", "pw")
    editors = Group.objects.create(name="Course editors")
    editors.permissions.add(Permission.objects.get(codename="access_admin"))
    editor.groups.add(editors)
    client.force_login(editor)
    assert served(client.get(document.url))


def test_the_backfill_finds_documents_in_revisions_saved_before_the_index(
    course, paid_lesson, document
):
    from commerce.access.documents import record_all_revisions

    paid_lesson.body = [attachment(document)]
    paid_lesson.save_revision()
    LessonDocument.objects.all().delete()
    record_all_revisions()
    assert LessonDocument.objects.filter(document=document, lesson=paid_lesson).exists()


def test_a_document_of_a_free_course_lesson_not_yet_open_is_private(client, free_course, document):
    from datetime import date

    lesson = free_course.lessons().filter(is_free_preview=False).specific().first()
    lesson.body = [attachment(document)]
    lesson.release_on = date(2099, 1, 1)
    lesson.save_revision().publish()
    assert refused(client.get(document.url))


def test_a_document_of_a_lesson_not_yet_open_is_refused_to_its_buyer(
    client, course, paid_lesson, learner, document
):
    from datetime import date

    from tests.helpers import entitle

    paid_lesson.body = [attachment(document)]
    paid_lesson.release_on = date(2099, 1, 1)
    paid_lesson.save_revision().publish()
    entitle(learner, course)
    client.force_login(learner)
    assert refused(client.get(document.url))
