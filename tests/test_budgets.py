"""Query budgets (issue 15) and the caches that keep them: a regression fails here, and no cache
may ever show a learner more than the database says they may see."""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.models import PageViewRestriction

from commerce.models import Entitlement, Order, OrderItem
from courses.models import CoursePage, LessonPage, ModulePage
from devtools.stripe_emulator import example
from learner.models import LessonProgress
from tests.helpers import entitle, make_course, post_event, publish, without_index_updates

LESSON_BUDGET = 10
PAGE_BUDGET = 8  # course page, catalog, home
WEBHOOK_BUDGET = 10  # database round trips of a first delivery, BEGIN and COMMIT included


def queries(client, url, expect=200):
    client.get(url)  # warm the caches: budgets are for the page as a busy site serves it
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == expect
    return len(ctx.captured_queries)


def big_course(catalog, slug="big", modules=3, lessons=5):
    course = make_course(catalog, slug=slug, lessons=lessons)
    with without_index_updates():
        for m in range(2, modules + 1):
            module = publish(course, ModulePage(title=f"Module {m}", slug=f"module-{m}"))
            for i in range(lessons):
                publish(
                    module,
                    LessonPage(title=f"M{m} lesson {i}", slug=f"lesson-{i}", summary="s", body=[]),
                )
    return course


def paid(course):
    return course.lessons().filter(is_free_preview=False).specific().first()


@pytest.fixture
def reader(client, learner):
    client.force_login(learner)
    return client


# --- the budgets ---------------------------------------------------------------------------


def test_an_entitled_lesson_page_stays_within_its_budget(reader, learner, course):
    entitle(learner, course)
    assert queries(reader, paid(course).url) <= LESSON_BUDGET


def test_the_lesson_budget_does_not_grow_with_lessons_and_modules(reader, learner, catalog):
    small, large = make_course(catalog, slug="small"), big_course(catalog)
    entitle(learner, small)
    entitle(learner, large)
    assert queries(reader, paid(small).url) == queries(reader, paid(large).url)


def test_a_free_preview_lesson_stays_within_the_lesson_budget(reader, course):
    preview = course.lessons().filter(is_free_preview=True).first()
    assert queries(reader, preview.url) <= LESSON_BUDGET


def test_course_catalog_and_home_pages_stay_within_their_budget(reader, learner, home, catalog):
    course = big_course(catalog)
    entitle(learner, course)
    for url in (course.url, catalog.url, home.url):
        assert queries(reader, url) <= PAGE_BUDGET, url


def test_course_page_queries_do_not_grow_with_modules(reader, catalog):
    small, large = make_course(catalog, slug="small"), big_course(catalog)
    assert queries(reader, small.url) == queries(reader, large.url)


def pending_order(course, n=1):
    order = Order.objects.create(
        email=f"buyer{n}@example.com",
        currency="usd",
        amount_subtotal=course.price_amount,
        stripe_session_id=f"cs_test_budget_{n}",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    OrderItem.objects.create(
        order=order,
        course=course,
        title=course.title,
        unit_amount=course.price_amount,
        currency="usd",
    )
    return order


def completed(order):
    session = example(
        "checkout.session",
        id=order.stripe_session_id,
        client_reference_id=order.public_id,
        metadata={"order_id": order.public_id},
        status="complete",
        payment_status="paid",
        amount_subtotal=order.amount_subtotal,
        amount_total=order.amount_subtotal,
        currency="usd",
        payment_intent=f"pi_test_{order.pk}",
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        customer_email=order.email,
    )
    return example(
        "event",
        id=f"evt_test_budget_{order.pk}",
        type="checkout.session.completed",
        data={"object": session},
        created=int(time.time()),
        livemode=False,
    )


def round_trips(event):
    """The delivery's own transaction, BEGIN to COMMIT (the receipt task runs after it)."""
    with CaptureQueriesContext(connection) as ctx:
        response = post_event(json.dumps(event))
    assert response.status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    return sql[: sql.index("COMMIT") + 1]


@pytest.mark.django_db(transaction=True)
def test_a_first_webhook_delivery_stays_within_its_round_trips(course, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    first = round_trips(completed(pending_order(course)))
    assert len(first) <= WEBHOOK_BUDGET, first
    assert not any(q.startswith(("SAVEPOINT", "RELEASE")) for q in first)
    assert Entitlement.objects.filter(status="active").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_first_delivery_writes_only_what_it_changed_on_the_order(course, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    first = round_trips(completed(pending_order(course)))
    [update] = [q for q in first if q.startswith('UPDATE "commerce_order"')]
    assert '"status"' in update and '"paid_at"' in update and '"updated_at"' in update
    assert '"email"' not in update and '"public_id"' not in update
    assert Order.objects.get().status == Order.Status.PAID


@pytest.mark.django_db
def test_an_order_saved_then_changed_back_is_seen_as_changed(course):
    """Settling one instance twice: the second change must be written even when it restores
    what was first read."""
    order = Order.objects.get(pk=pending_order(course).pk)
    order.status = Order.Status.PAID
    order.save(update_fields=order.changed_fields())
    assert order.changed_fields() == []
    order.status = Order.Status.PENDING
    assert order.changed_fields() == ["status", "updated_at"]
    order.save(update_fields=order.changed_fields())
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


@pytest.mark.django_db
def test_an_order_refreshed_then_changed_back_is_seen_as_changed(course):
    order = Order.objects.get(pk=pending_order(course).pk)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)  # another writer
    order.refresh_from_db()
    order.status = Order.Status.PENDING
    assert order.changed_fields() == ["status", "updated_at"]


def test_every_order_field_holds_an_immutable_value():
    """Order.changed_fields compares what was read with what is there now: a field whose
    value can change in place (JSON, arrays) would never look changed."""
    from django.db.models import JSONField

    mutable = [f.name for f in Order._meta.concrete_fields if isinstance(f, JSONField)]
    mutable += [
        f.name for f in Order._meta.concrete_fields if f.get_internal_type() == "ArrayField"
    ]
    assert mutable == []


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivery_costs_less_than_a_first(course, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    event = completed(pending_order(course))
    first, duplicate = round_trips(event), round_trips(event)
    assert len(duplicate) < len(first)
    assert Entitlement.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_bundle_delivery_grants_every_course_in_the_same_round_trips(catalog, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    courses = [make_course(catalog, slug=f"b{i}") for i in range(3)]
    order = pending_order(courses[0])
    for course in courses[1:]:
        OrderItem.objects.create(
            order=order,
            course=course,
            title=course.title,
            unit_amount=course.price_amount,
            currency="usd",
        )
    Order.objects.filter(pk=order.pk).update(amount_subtotal=3 * courses[0].price_amount)
    order.refresh_from_db()
    assert len(round_trips(completed(order))) <= WEBHOOK_BUDGET
    assert Entitlement.objects.filter(status="active").count() == 3


def many_orders(course, n):
    orders = Order.objects.bulk_create(
        [
            Order(
                email=f"history{i}@example.com",
                currency="usd",
                status="paid",
                amount_subtotal=4900,
                amount_total=4900,
                paid_at=timezone.now(),
                expires_at=timezone.now(),
            )
            for i in range(n)
        ]
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(order=o, course=course, title=course.title, unit_amount=4900, currency="usd")
            for o in orders
        ]
    )
    return orders


def test_the_admin_order_list_costs_the_same_queries_for_few_and_many_orders(
    superuser_client, course
):
    url = reverse("commerce_order:index")
    many_orders(course, 2)
    few = queries(superuser_client, url)
    many_orders(course, 60)
    assert queries(superuser_client, url) == few


def test_the_admin_order_page_costs_the_same_queries_for_one_item_and_many(
    superuser_client, catalog
):
    one = pending_order(make_course(catalog, slug="one"), n=1)
    several = pending_order(make_course(catalog, slug="two"), n=2)
    for i in range(4):
        course = make_course(catalog, slug=f"more{i}")
        OrderItem.objects.create(
            order=several, course=course, title=course.title, unit_amount=1, currency="usd"
        )
    inspect = "commerce_order:inspect"
    assert queries(superuser_client, reverse(inspect, args=[one.pk])) == queries(
        superuser_client, reverse(inspect, args=[several.pk])
    )


# --- the caches never show more than the database allows --------------------------------------


def test_revoked_access_shows_on_the_very_next_request(reader, learner, course):
    grant = entitle(learner, course)
    lesson = paid(course)
    assert reader.get(lesson.url).status_code == 200
    grant.status = Entitlement.Status.REVOKED
    grant.save()
    response = reader.get(lesson.url)
    assert response.status_code == 403
    assert b"Secret body" not in response.content


def test_a_lesson_published_later_appears_in_the_outline_at_once(reader, learner, course):
    entitle(learner, course)
    lesson = paid(course)
    reader.get(lesson.url)  # the outline is cached now
    with without_index_updates():
        publish(lesson.get_parent(), LessonPage(title="Brand new lesson", slug="new", body=[]))
    assert b"Brand new lesson" in reader.get(lesson.url).content
    assert b"Brand new lesson" in reader.get(course.url).content


def test_an_unpublished_lesson_leaves_the_outline_and_its_address(reader, learner, course):
    entitle(learner, course)
    first, second = course.lessons().specific()
    reader.get(first.url)
    second.unpublish()
    assert b"Lesson 2" not in reader.get(first.url).content
    assert reader.get(second.url).status_code == 404


def test_a_moved_lesson_is_served_at_its_new_address_and_redirected_from_the_old(
    reader, learner, catalog
):
    course = big_course(catalog, modules=2, lessons=2)
    entitle(learner, course)
    lesson = paid(course)
    old_url = lesson.url
    assert reader.get(old_url).status_code == 200
    target = ModulePage.objects.child_of(course).get(slug="module-2")
    lesson.move(target, pos="last-child")
    lesson.refresh_from_db()
    old = reader.get(old_url)
    assert (old.status_code, old["Location"]) == (301, lesson.url)  # Wagtail's redirect
    assert b"Secret body" not in old.content
    assert reader.get(lesson.url).status_code == 200


def test_a_deleted_lesson_is_gone_from_outline_and_address(reader, learner, course):
    entitle(learner, course)
    first, second = course.lessons().specific()
    reader.get(second.url)
    url = second.url
    second.delete()
    assert reader.get(url).status_code == 404
    assert b"Lesson 2" not in reader.get(first.url).content


def test_a_course_made_private_leaves_the_cached_catalog(client, catalog):
    course = make_course(catalog, slug="secretive")
    assert b"Secretive" in client.get(catalog.url).content
    PageViewRestriction.objects.create(page=course, restriction_type="login")
    assert b"Secretive" not in client.get(catalog.url).content


def test_an_unrestricted_page_asks_nothing_about_view_restrictions(reader, learner, course):
    """Which restrictions apply to a page is cached with the content; whether a request passes
    one is not (the tests below)."""
    entitle(learner, course)
    for url in (paid(course).url, course.url):
        reader.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert reader.get(url).status_code == 200
        assert not [q for q in ctx.captured_queries if "pageviewrestriction" in q["sql"]], url


def test_a_lesson_made_private_asks_for_the_password_on_the_very_next_request(client, course):
    lesson = course.lessons().filter(is_free_preview=True).first()
    assert client.get(lesson.url).status_code == 200  # cached: no restriction
    PageViewRestriction.objects.create(page=lesson, restriction_type="password", password="pw")
    response = client.get(lesson.url)
    assert b"Secret body" not in response.content
    assert b'name="password"' in response.content


def test_a_course_made_private_refuses_its_lessons_on_the_very_next_request(client, course):
    lesson = course.lessons().filter(is_free_preview=True).first()
    assert client.get(lesson.url).status_code == 200
    PageViewRestriction.objects.create(page=course, restriction_type="login")
    response = client.get(lesson.url)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_restriction_removed_opens_the_page_on_the_very_next_request(client, course):
    lesson = course.lessons().filter(is_free_preview=True).first()
    restriction = PageViewRestriction.objects.create(page=course, restriction_type="login")
    assert client.get(lesson.url).status_code == 302
    restriction.delete()
    assert client.get(lesson.url).status_code == 200


def test_a_lesson_moved_under_a_private_course_is_refused_at_its_new_address(client, catalog):
    public = make_course(catalog, slug="public")
    private = make_course(catalog, slug="private", lessons=0)
    PageViewRestriction.objects.create(page=private, restriction_type="login")
    lesson = public.lessons().filter(is_free_preview=True).specific().first()
    assert client.get(lesson.url).status_code == 200
    lesson.move(ModulePage.objects.child_of(private).get(), pos="last-child")
    lesson.refresh_from_db()
    assert client.get(lesson.url).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_restriction_deleted_then_rolled_back_still_holds(client, course):
    """Read inside the transaction that deletes it (as the admin's privacy view may), the
    answer comes from the database and is not kept: the rollback leaves it standing."""
    lesson = course.lessons().filter(is_free_preview=True).first()
    restriction = PageViewRestriction.objects.create(page=course, restriction_type="login")
    assert client.get(lesson.url).status_code == 302
    with pytest.raises(RuntimeError), transaction.atomic():
        restriction.delete()
        assert not lesson.specific.get_view_restrictions().exists()
        raise RuntimeError("rolled back")
    assert client.get(lesson.url).status_code == 302


def test_a_lesson_moved_to_another_course_is_gated_by_its_new_course(reader, learner, catalog):
    owned, other = make_course(catalog, slug="owned"), make_course(catalog, slug="other", lessons=0)
    entitle(learner, owned)
    lesson = paid(owned)
    assert reader.get(lesson.url).status_code == 200  # its course is cached now
    lesson.move(ModulePage.objects.child_of(other).get(), pos="last-child")
    lesson.refresh_from_db()
    response = reader.get(lesson.url)
    assert response.status_code == 403
    assert b"Secret body" not in response.content


def test_a_courses_new_price_shows_on_its_locked_lessons_once_published(client, course):
    lesson = paid(course)
    assert b"$49.00" in client.get(lesson.url).content
    course.price_amount = 5900
    course.save_revision().publish()
    assert b"$59.00" in client.get(lesson.url).content


def test_a_price_saved_on_a_course_that_is_not_live_closes_its_lessons_at_once(client, catalog):
    """A page that is not live takes a draft's fields straight into its row, without a
    publish: the save alone moves the cached course on."""
    course = make_course(catalog, slug="draft", price=0)
    lesson = paid(course)
    assert b"Secret body" in client.get(lesson.url).content  # free, its course cached
    course = CoursePage.objects.get(pk=course.pk)
    course.unpublish()  # the course only; its lessons stay live
    assert b"Secret body" in client.get(lesson.url).content
    course.price_amount = 4900
    course.save()  # what the admin's "Save draft" does to a page that is not live
    response = client.get(lesson.url)
    assert response.status_code == 403 and b"Secret body" not in response.content


@pytest.mark.django_db(transaction=True)
def test_a_free_price_published_then_rolled_back_leaves_the_lessons_closed(client, catalog):
    course = make_course(catalog, slug="rolled", price=4900)
    lesson = paid(course)
    assert client.get(lesson.url).status_code == 403
    with pytest.raises(RuntimeError), transaction.atomic():
        changed = CoursePage.objects.get(pk=course.pk)
        changed.price_amount = 0
        changed.save_revision().publish()
        assert LessonPage.objects.get(pk=lesson.pk).course().price_amount == 0  # read, not kept
        raise RuntimeError("rolled back")
    response = client.get(lesson.url)
    assert response.status_code == 403 and b"Secret body" not in response.content


def test_a_page_loaded_before_a_move_cannot_cache_its_old_restrictions(client, catalog):
    public = make_course(catalog, slug="public")
    private = make_course(catalog, slug="private", lessons=0)
    PageViewRestriction.objects.create(page=private, restriction_type="login")
    lesson = public.lessons().filter(is_free_preview=True).specific().first()
    loaded_before = LessonPage.objects.get(pk=lesson.pk)
    lesson.move(ModulePage.objects.child_of(private).get(), pos="last-child")
    assert not loaded_before.get_view_restrictions().exists()  # its old place: public
    lesson.refresh_from_db()
    assert client.get(lesson.url).status_code == 302


def test_saving_converting_or_deleting_any_page_moves_the_generation_on(catalog):
    from wagtail.actions.convert_alias import ConvertAliasPageAction
    from wagtail.models import Page

    from base import caching

    course = make_course(catalog, slug="aliased")
    lesson = course.lessons().filter(is_free_preview=True).specific().first()
    seen = {caching.generation()}
    alias = lesson.create_alias(update_slug="lesson-alias")
    seen.add(caching.generation())
    ConvertAliasPageAction(Page.objects.get(pk=alias.pk).specific).execute()
    seen.add(caching.generation())
    draft = publish(course, ModulePage(title="Draft", slug="draft"))
    draft.unpublish()
    before_delete = caching.generation()
    Page.objects.get(pk=draft.pk).delete()  # not live: no unpublish signal
    assert len(seen) == 3 and caching.generation() != before_delete


def test_a_price_change_shows_on_the_catalog_once_published(client, catalog):
    course = make_course(catalog, slug="priced")
    assert b"$49.00" in client.get(catalog.url).content
    course.price_amount = 5900
    course.save_revision().publish()
    assert b"$59.00" in client.get(catalog.url).content


def test_catalog_pages_out_of_range_or_not_numbers_show_the_nearest_page(client, catalog):
    from courses.models import CourseIndexPage

    for i in range(CourseIndexPage.per_page + 1):
        make_course(catalog, slug=f"p{i}", lessons=0)
    assert b"Page 2 of 2" in client.get(catalog.url + "?page=99").content
    assert b"Page 1 of 2" in client.get(catalog.url + "?page=abc").content


def test_site_settings_edits_show_on_the_next_page(client, home):
    from base.models import SiteSettings

    settings_row = SiteSettings.for_site(home.get_site())
    client.get(home.url)
    settings_row.footer_text = "A brand new footer"
    settings_row.save()
    assert b"A brand new footer" in client.get(home.url).content


def test_wagtails_utility_views_are_not_shadowed_by_page_routing(client, db):
    assert client.get("/_util/login/").status_code == 200


# --- the userbar and the visit record ---------------------------------------------------------


def test_editors_get_the_userbar_and_learners_do_not(editor_client, client, learner, course):
    assert b"wagtail-userbar" in editor_client.get(course.url).content
    client.force_login(learner)
    assert b"wagtail-userbar" not in client.get(course.url).content


def test_a_lesson_visit_is_written_once_per_five_minutes(reader, learner, course):
    entitle(learner, course)
    lesson = paid(course)
    reader.get(lesson.url)
    row = LessonProgress.objects.get(user=learner, lesson=lesson)
    with CaptureQueriesContext(connection) as ctx:
        reader.get(lesson.url)
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
    earlier = timezone.now() - timedelta(minutes=6)
    LessonProgress.objects.filter(pk=row.pk).update(last_seen_at=earlier)
    reader.get(lesson.url)
    row.refresh_from_db()
    assert row.last_seen_at > earlier


def test_editing_a_site_or_a_plan_rebuilds_what_pages_cached(home, catalog):
    from base import caching
    from commerce.models import MembershipPlan

    before = caching.generation()
    site = home.get_site()
    site.site_name = "Renamed"
    site.save()
    after_site = caching.generation()
    MembershipPlan.objects.create(name="Everything", all_courses=True)
    assert before != after_site != caching.generation()


def test_a_lesson_with_a_video_a_quiz_and_lessons_not_yet_open_stays_within_budget(
    reader, learner, catalog
):
    from tests.test_quizzes import QUIZ

    course = make_course(catalog, slug="everything", lessons=3)
    entitle(learner, course)
    lesson = paid(course)
    lesson.body = [
        {"type": "stream_video", "value": {"video_uid": "a" * 32, "caption": ""}},
        {"type": "quiz", "value": QUIZ},
    ]
    lesson.save_revision().publish()
    later = course.lessons().specific().last()
    later.release_after_days = 30
    later.save_revision().publish()
    reader.post(
        reverse("video_progress", args=[lesson.pk]),
        {"video": "a" * 32, "position": 5, "furthest": 5, "duration": 60},
    )
    assert queries(reader, lesson.url) <= LESSON_BUDGET


def test_a_lesson_with_a_file_a_quiz_and_its_own_release_rule_stays_within_budget(
    reader, learner, catalog
):
    from django.core.files.base import ContentFile
    from wagtail.documents.models import Document

    from tests.test_quizzes import QUIZ

    course = make_course(catalog, slug="ruled", lessons=2)
    Entitlement.objects.create(
        user=learner,
        email=learner.email,
        course=course,
        source=Entitlement.Source.ADMIN,
        granted_at=timezone.now() - timedelta(days=10),
    )
    document = Document.objects.create(title="Notes", file=ContentFile(b"x", name="notes.pdf"))
    lesson = paid(course)
    lesson.release_after_days = 3
    lesson.body = [
        {"type": "attachment", "value": {"document": document.pk, "description": ""}},
        {"type": "quiz", "value": QUIZ},
    ]
    lesson.save_revision().publish()
    assert queries(reader, lesson.url) <= LESSON_BUDGET
