"""Who may open a lesson or a lesson's document, and how everyone else is answered."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from wagtail.documents.models import Document

from courses.models import LessonPage
from tests.helpers import entitle, make_course, publish


def test_an_anonymous_visitor_gets_the_locked_page_offering_the_course(client, paid_lesson):
    response = client.get(paid_lesson.url)
    assert response.status_code == 403
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    content = response.content.decode()
    assert paid_lesson.title in content and paid_lesson.summary in content
    assert "$49.00" in content and 'type="submit"' in content
    assert "Secret body" not in content


def test_the_locked_page_offers_a_log_in_that_returns_to_the_lesson(client, paid_lesson):
    from urllib.parse import quote

    content = client.get(paid_lesson.url).content.decode()
    assert "Already bought it?" in content
    assert f"/accounts/login/?next={quote(paid_lesson.url, safe='')}" in content


def test_a_learner_without_access_gets_a_locked_page_offering_the_course(
    client, paid_lesson, learner
):
    client.force_login(learner)
    response = client.get(paid_lesson.url)
    assert response.status_code == 403
    assert b"Locked" in response.content and b"Buy for $49.00" in response.content
    assert b"Secret body" not in response.content
    assert "no-store" in response["Cache-Control"]


def test_an_entitled_learner_reads_the_lesson(client, course, paid_lesson, learner):
    entitle(learner, course)
    client.force_login(learner)
    response = client.get(paid_lesson.url)
    assert response.status_code == 200 and b"Secret body" in response.content


def test_staff_read_every_lesson(client, paid_lesson, django_user_model):
    staff = django_user_model.objects.create_user("staff", "s@example.com", "pw", is_staff=True)
    client.force_login(staff)
    assert client.get(paid_lesson.url).status_code == 200


def test_a_free_preview_is_open_to_anyone(client, preview_lesson):
    response = client.get(preview_lesson.url)
    assert response.status_code == 200 and b"Secret body" in response.content


def test_every_lesson_of_a_free_course_is_open(client, free_course):
    for lesson in free_course.lessons():
        assert client.get(lesson.url).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_at": timezone.now() - timedelta(days=1)},
        {"status": "revoked", "reason": "refunded in full"},
        {"status": "suspended", "reason": "payment disputed"},
    ],
)
def test_expired_revoked_or_suspended_access_is_locked(
    client, course, paid_lesson, learner, fields
):
    entitle(learner, course, **fields)
    client.force_login(learner)
    assert client.get(paid_lesson.url).status_code == 403


def test_access_to_one_course_opens_nothing_of_another(client, catalog, course, learner):
    other = make_course(catalog, slug="other")
    entitle(learner, course)
    client.force_login(learner)
    lesson = other.lessons().filter(is_free_preview=False).first()
    assert client.get(lesson.url).status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "entitled"])
def test_every_lesson_response_is_private_and_never_stored(
    client, course, paid_lesson, preview_lesson, learner, who
):
    if who == "entitled":
        entitle(learner, course)
        client.force_login(learner)
    for lesson in (paid_lesson, preview_lesson):
        assert "no-store" in client.get(lesson.url)["Cache-Control"]
        assert "private" in client.get(lesson.url)["Cache-Control"]


def test_the_lesson_outline_marks_locked_lessons(client, course, learner):
    client.force_login(learner)
    preview = course.lessons().filter(is_free_preview=True).first()
    response = client.get(preview.url)
    assert b"badge-locked" in response.content


@pytest.fixture
def paid_document(course, paid_lesson):
    document = Document.objects.create(
        title="Slides", file=ContentFile(b"%PDF-1.4 paid", name="slides.pdf")
    )
    paid_lesson.body = [
        {"type": "attachment", "value": {"document": document.pk, "description": "The slides"}}
    ]
    paid_lesson.save_revision().publish()
    return document


def test_a_document_of_a_paid_lesson_is_refused_to_visitors_without_access(
    client, paid_document, learner
):
    url = paid_document.url
    assert client.get(url).status_code == 302
    client.force_login(learner)
    response = client.get(url)
    assert response.status_code == 403 and b"%PDF" not in response.content


def test_a_document_of_a_paid_lesson_is_served_to_an_entitled_learner(
    client, course, paid_document, learner
):
    entitle(learner, course)
    client.force_login(learner)
    response = client.get(paid_document.url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 paid"


def test_uploaded_documents_are_never_served_from_the_media_url(client, paid_document, settings):
    response = client.get("/media/" + paid_document.file.name)
    assert response.status_code == 404


def test_a_draft_lesson_is_not_served_to_the_public(client, course):
    module = course.get_children().first()
    draft = LessonPage(title="Draft", slug="draft", live=False)
    module.add_child(instance=draft)
    assert client.get(f"{course.url}{module.slug}/draft/").status_code == 404


def test_a_lesson_body_never_appears_in_the_course_page(client, course):
    assert b"Secret body" not in client.get(course.url).content


def test_publish_helper_keeps_tree_valid(course):
    module = course.get_children().first()
    lesson = publish(module, LessonPage(title="Extra", slug="extra"))
    assert lesson.live and lesson.course().pk == course.pk


@pytest.fixture
def private_lesson(course, paid_lesson, learner, client):
    """A lesson the learner bought but an editor made private to a group they are not in."""
    from django.contrib.auth.models import Group
    from wagtail.models import PageViewRestriction

    from tests.helpers import entitle

    entitle(learner, course)
    restriction = PageViewRestriction.objects.create(
        page=paid_lesson, restriction_type=PageViewRestriction.GROUPS
    )
    restriction.groups.add(Group.objects.create(name="Insiders"))
    client.force_login(learner)
    return paid_lesson


def test_a_lesson_made_private_cannot_be_completed(client, private_lesson, learner):
    from django.urls import reverse

    response = client.post(reverse("complete_lesson", args=[private_lesson.pk]))
    assert response.status_code == 403
    assert not learner.lesson_progress.exists()


def test_files_of_a_lesson_made_private_cannot_be_downloaded(client, private_lesson):
    from django.urls import reverse

    from courses.models import LessonResource

    resource = LessonResource.objects.create(
        lesson=private_lesson, title="Slides", file="lesson-resources/slides.pdf"
    )
    response = client.get(reverse("download", args=[resource.pk]))
    assert response.status_code == 403 and "Location" not in response
