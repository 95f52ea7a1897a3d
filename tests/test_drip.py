"""Drip release: a lesson opens some days after the learner's access began or on a date; until
then its page, files and completion are closed, and the learner is told once when it opens."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from commerce.access import release
from commerce.models import Membership, MembershipPlan, Notification
from courses.models import LessonPage, LessonResource, ModulePage
from tests.helpers import entitle, make_course

BOUGHT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def lesson_of(course, number):
    return course.lessons().specific().get(slug=f"lesson-{number}")


def set_rule(page, **rule):
    """Publish a release rule on a module or lesson, as an editor would."""
    for name, value in rule.items():
        setattr(page, name, value)
    page.save_revision().publish()
    return page


def member(user, **when):
    """An all-courses membership open for a year from BOUGHT."""
    plan = MembershipPlan.objects.create(name="All", all_courses=True)
    return Membership.objects.create(
        user=user,
        plan=plan,
        interval="month",
        amount=1000,
        currency="usd",
        status="active",
        access_until=BOUGHT + timedelta(days=365),
        **when,
    )


@pytest.fixture
def dripped(catalog):
    """Lesson 1 is a free preview; lesson 2 opens 7 days after access began; lesson 3 at once."""
    course = make_course(catalog, slug="drip", lessons=3)
    set_rule(lesson_of(course, 2), release_after_days=7)
    return course


@pytest.fixture
def bought(dripped, learner, client):
    entitle(learner, dripped, granted_at=BOUGHT)
    client.force_login(learner)
    return client


def test_a_lesson_is_closed_until_its_days_after_purchase_have_passed(dripped, bought):
    lesson = lesson_of(dripped, 2)
    with time_machine.travel(BOUGHT + timedelta(days=7, seconds=-1), tick=False):
        assert bought.get(lesson.url).status_code == 403
    with time_machine.travel(BOUGHT + timedelta(days=7), tick=False):
        response = bought.get(lesson.url)
    assert response.status_code == 200 and b"Secret body drip 2" in response.content


def test_the_closed_page_says_when_the_lesson_opens_and_shows_nothing_of_it(dripped, bought):
    lesson = lesson_of(dripped, 2)
    LessonResource.objects.create(lesson=lesson, title="Slides", file="lesson-resources/slides.pdf")
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        response = bought.get(lesson.url)
    content = response.content.decode()
    assert response.status_code == 403
    assert "opens on" in content and "8 March 2026" in content
    assert "Secret body" not in content and "Slides" not in content
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_files_of_a_closed_lesson_cannot_be_downloaded(dripped, bought):
    lesson = lesson_of(dripped, 2)
    resource = LessonResource.objects.create(
        lesson=lesson, title="Slides", file="lesson-resources/slides.pdf"
    )
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        response = bought.get(reverse("download", args=[resource.pk]))
    assert response.status_code == 403
    assert "Location" not in response


def test_a_closed_lesson_cannot_be_marked_complete(dripped, bought, learner):
    lesson = lesson_of(dripped, 2)
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        response = bought.post(reverse("complete_lesson", args=[lesson.pk]))
    assert response.status_code == 403
    assert not learner.lesson_progress.exists()


def test_lessons_without_a_rule_and_free_previews_open_at_once(dripped, bought):
    with time_machine.travel(BOUGHT + timedelta(minutes=1), tick=False):
        assert bought.get(lesson_of(dripped, 3).url).status_code == 200
        set_rule(lesson_of(dripped, 1), release_after_days=30)
        assert bought.get(lesson_of(dripped, 1).url).status_code == 200


def test_a_date_opens_the_lesson_at_midnight_in_the_site_time_zone(dripped, bought):
    set_rule(lesson_of(dripped, 3), release_on=date(2026, 4, 1))
    lesson = lesson_of(dripped, 3)
    with time_machine.travel(datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC), tick=False):
        assert bought.get(lesson.url).status_code == 403
    with time_machine.travel(datetime(2026, 4, 1, 0, 0, tzinfo=UTC), tick=False):
        assert bought.get(lesson.url).status_code == 200


def test_a_lesson_opens_no_earlier_than_its_module(dripped, bought):
    module = ModulePage.objects.descendant_of(dripped).get()
    set_rule(module, release_after_days=10)
    lesson = lesson_of(dripped, 2)  # 7 days of its own
    with time_machine.travel(BOUGHT + timedelta(days=9), tick=False):
        assert bought.get(lesson.url).status_code == 403
    with time_machine.travel(BOUGHT + timedelta(days=10), tick=False):
        assert bought.get(lesson.url).status_code == 200


def test_days_count_from_the_earliest_access_still_active(dripped, learner, client):
    entitle(learner, dripped, granted_at=BOUGHT - timedelta(days=30), status="revoked")
    entitle(learner, dripped, granted_at=BOUGHT)
    assert release.access_began(learner.pk, dripped.pk) == BOUGHT


def test_a_membership_counts_from_when_it_began(dripped, learner, client):
    member(learner, created_at=BOUGHT)
    client.force_login(learner)
    lesson = lesson_of(dripped, 2)
    with time_machine.travel(BOUGHT + timedelta(days=6), tick=False):
        assert client.get(lesson.url).status_code == 403
    with time_machine.travel(BOUGHT + timedelta(days=7), tick=False):
        assert client.get(lesson.url).status_code == 200


def test_staff_read_closed_lessons(dripped, superuser_client):
    lesson = lesson_of(dripped, 2)
    set_rule(lesson, release_on=date(2099, 1, 1))
    assert superuser_client.get(lesson.url).status_code == 200


def test_an_editor_with_the_course_reads_closed_lessons(dripped, editor_client):
    entitle(editor_client.user, dripped)
    lesson = lesson_of(dripped, 2)
    set_rule(lesson, release_on=date(2099, 1, 1))
    assert editor_client.get(lesson.url).status_code == 200


def test_a_free_course_keeps_its_dates_and_ignores_days(catalog, learner, client):
    free = make_course(catalog, slug="gratis", price=0, lessons=3)
    set_rule(lesson_of(free, 2), release_after_days=7)
    set_rule(lesson_of(free, 3), release_on=date(2099, 1, 1))
    client.force_login(learner)
    assert client.get(lesson_of(free, 2).url).status_code == 200
    assert client.get(lesson_of(free, 3).url).status_code == 403


def test_the_outline_says_when_a_closed_lesson_opens(dripped, bought):
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        content = bought.get(lesson_of(dripped, 3).url).content.decode()
    assert "Opens on 8 Mar" in content


def test_the_course_page_lists_each_lessons_release(dripped, client):
    content = client.get(dripped.url).content.decode()
    assert "opens 7 days after you start" in content


def test_a_closed_lesson_costs_one_query_more_at_most(
    dripped, bought, django_assert_max_num_queries
):
    lesson = lesson_of(dripped, 3)
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        bought.get(lesson.url)
        with django_assert_max_num_queries(10):
            assert bought.get(lesson.url).status_code == 200


# --- the e-mail when lessons open ----------------------------------------------------------


def announce(moment):
    with time_machine.travel(moment, tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        return release.announce_opened()


def test_the_learner_is_told_once_when_a_lesson_opens(dripped, learner, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    entitle(learner, dripped, granted_at=BOUGHT)
    assert announce(BOUGHT + timedelta(days=6)) == 0
    assert announce(BOUGHT + timedelta(days=7, hours=1)) == 1
    assert announce(BOUGHT + timedelta(days=7, hours=2)) == 0
    sent = [m for m in mail.outbox if m.subject == "New lessons are open"]
    assert len(sent) == 1 and sent[0].to == [learner.email]
    assert "Lesson 2" in sent[0].body and lesson_of(dripped, 2).url in sent[0].body
    assert Notification.objects.get(kind="lessons_opened").sent_at is not None


def test_lessons_already_open_when_access_began_are_not_announced(dripped, learner):
    set_rule(lesson_of(dripped, 3), release_on=date(2026, 2, 1))
    entitle(learner, dripped, granted_at=BOUGHT)
    assert announce(BOUGHT + timedelta(hours=1)) == 0


def test_a_lesson_that_opened_long_ago_is_not_announced_late(dripped, learner):
    entitle(learner, dripped, granted_at=BOUGHT)
    assert announce(BOUGHT + timedelta(days=30)) == 0


def test_revoked_learners_are_not_told(dripped, learner):
    entitle(learner, dripped, granted_at=BOUGHT, status="revoked")
    assert announce(BOUGHT + timedelta(days=7, hours=1)) == 0


def test_the_release_rule_of_a_lesson_outside_the_outline_is_read_from_its_module(dripped):
    module = ModulePage.objects.descendant_of(dripped).get()
    set_rule(module, release_after_days=3)
    lesson = LessonPage.objects.get(pk=lesson_of(dripped, 3).pk)
    lesson.save_revision()  # a draft, as a preview sees it
    assert lesson.release_rule().after_days == 3


def test_days_count_from_when_a_guest_purchase_was_claimed(dripped, learner, client):
    from commerce.access import claims
    from commerce.models import Entitlement

    Entitlement.objects.create(
        user=None,
        email=learner.email,
        course=dripped,
        source=Entitlement.Source.ADMIN,
        granted_at=BOUGHT - timedelta(days=60),
    )
    with time_machine.travel(BOUGHT, tick=False):
        claims.attach_guest_purchases(learner, learner.email, proof="test")
    client.force_login(learner)
    with time_machine.travel(BOUGHT + timedelta(days=6), tick=False):
        assert client.get(lesson_of(dripped, 2).url).status_code == 403
    with time_machine.travel(BOUGHT + timedelta(days=7), tick=False):
        assert client.get(lesson_of(dripped, 2).url).status_code == 200


def test_a_membership_counts_from_when_it_first_opened_not_from_its_checkout(dripped, learner):
    member(learner, created_at=BOUGHT - timedelta(days=1), started_at=BOUGHT)
    assert release.access_began(learner.pk, dripped.pk, now=BOUGHT) == BOUGHT


def test_actions_on_a_closed_lesson_say_when_it_opens(dripped, bought):
    lesson = lesson_of(dripped, 2)
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        response = bought.post(reverse("complete_lesson", args=[lesson.pk]))
    assert response.status_code == 403 and "opens on" in response.content.decode()
    assert "Buy" not in response.content.decode()


def test_completing_the_lesson_before_a_closed_one_stays_and_says_when_it_opens(dripped, bought):
    with time_machine.travel(BOUGHT + timedelta(days=2), tick=False):
        response = bought.post(reverse("complete_lesson", args=[lesson_of(dripped, 1).pk]))
        page = bought.get(response["Location"]).content.decode()
    assert response["Location"] == lesson_of(dripped, 1).url
    assert "Next: Lesson 2, which opens on 8 March 2026." in page


def test_a_free_course_closed_lesson_promises_no_e_mail(catalog, learner, client):
    free = make_course(catalog, slug="gratis", price=0, lessons=2)
    set_rule(lesson_of(free, 2), release_on=date(2099, 1, 1))
    client.force_login(learner)
    content = client.get(lesson_of(free, 2).url).content.decode()
    assert "opens on" in content and "e-mail you" not in content
