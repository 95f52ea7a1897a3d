"""Found by review (issue 15): previews, several sites, transactions and the caches."""

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client, RequestFactory
from wagtail.models import Site

from base import caching
from courses.models import LessonResource
from tests.helpers import entitle


def preview(page, editor_client):
    """What the admin's preview does: serve_preview through the middleware chain."""
    request = RequestFactory().get("/admin/")
    request.user = editor_client.user
    request.session = editor_client.session
    return page.make_preview_request(request, page.default_preview_mode)


def test_a_home_page_preview_never_shows_its_draft_to_the_public(
    client, editor_client, home, catalog
):
    home.headline = "DRAFT HEADLINE NOT PUBLISHED"
    home.save_revision()
    caching.bump()  # any publish elsewhere: fragments are cold
    draft = home.get_latest_revision_as_object()
    r = preview(draft, editor_client)
    r.render() if hasattr(r, "render") else None
    assert b"DRAFT HEADLINE" in r.content
    public = Client().get(home.url)
    assert public.status_code == 200
    assert b"DRAFT HEADLINE" not in public.content, "draft headline served to the public"


def test_a_home_page_preview_shows_the_draft_not_the_cached_page(
    client, editor_client, home, catalog
):
    Client().get(home.url)  # fragment cached from the live page
    home.headline = "MY NEW DRAFT"
    home.save_revision()
    draft = home.get_latest_revision_as_object()
    r = preview(draft, editor_client)
    r.render() if hasattr(r, "render") else None
    assert b"MY NEW DRAFT" in r.content, "preview shows the cached live fragment"


def test_a_lesson_preview_with_a_new_file_leaves_the_public_lesson_alone(
    client, editor_client, learner, course, paid_lesson
):
    res = LessonResource(lesson=paid_lesson, title="Live slides")
    res.file.save("live.pdf", ContentFile(b"%PDF"), save=True)
    entitle(learner, course)
    caching.bump()
    lesson = paid_lesson.__class__.objects.get(pk=paid_lesson.pk)
    new = LessonResource(title="Draft slides NEW", description="draft")
    new.file.save("draft.pdf", ContentFile(b"%PDF"), save=False)
    lesson.resources.add(new)
    lesson.save_revision()
    draft = lesson.get_latest_revision_as_object()
    try:
        r = preview(draft, editor_client)
        print("preview status", r.status_code)
    except Exception as exc:  # noqa
        print("preview raised", type(exc), exc)
    reader = Client()
    reader.force_login(learner)
    public = reader.get(paid_lesson.url)
    print("public status", public.status_code)
    assert public.status_code == 200
    assert b"Draft slides NEW" not in public.content


def test_cached_listings_link_relative_to_their_own_site(catalog, course, settings):
    settings.ALLOWED_HOSTS = ["*"]
    # a second site whose root is the catalog (e.g. learn.example.com)
    Site.objects.create(hostname="learn.testserver", port=80, root_page=catalog)
    a = Client(HTTP_HOST="localhost").get("/courses/")
    assert a.status_code == 200
    assert b'href="/courses/python/"' in a.content
    b = Client(HTTP_HOST="learn.testserver").get("/")
    assert b.status_code == 200
    assert b'href="/python/"' in b.content, "site A's links served on site B"


def test_the_compiled_access_rule_refills_only_the_user_course_and_time(db):
    from commerce.access import ACCESS_RULE

    _, _, slots = ACCESS_RULE.compile()
    named = [slot for slot, _ in slots if slot is not None]
    assert sorted(set(named)) == ["course", "now", "user"]
    assert named.count("user") >= 2 and named.count("course") >= 2


@pytest.mark.django_db(transaction=True)
def test_a_delete_inside_a_transaction_moves_the_generation_on_at_commit(course):
    """Wagtail's delete view (and every bulk action, and any request under ATOMIC_REQUESTS)
    runs in a transaction: the generation moves on before the rows are gone."""
    first, second = course.lessons().specific()
    with transaction.atomic():
        second.delete()
        during = caching.generation()
        # a concurrent request here still sees the lesson (uncommitted delete) and caches the
        # outline under `during`:
        caching.cached("curriculum", "-", course.pk, build=lambda: ["STALE: Lesson 2"])
    assert caching.generation() != during, "nothing moves the generation on at commit"


# --- one request reads each cached value once -------------------------------------------------


@pytest.fixture
def in_a_request(db):
    caching.begin_request()
    yield
    caching.end_request()


def test_a_request_reads_the_generation_from_the_cache_once(in_a_request, monkeypatch):
    first = caching.generation()
    monkeypatch.setattr(caching.cache, "get", lambda *a, **k: pytest.fail("read again"))
    assert caching.generation() == first


def test_a_request_reads_a_cached_value_once(in_a_request):
    assert caching.cached("answer", 1, build=lambda: ("first",)) == ("first",)
    key = f"answer:{caching.generation()}:1"
    caching.cache.set(key, ("changed elsewhere",))
    assert caching.cached("answer", 1, build=lambda: ("rebuilt",)) == ("first",)


def test_a_change_during_a_request_is_read_by_the_rest_of_it(in_a_request):
    before = caching.generation()
    assert caching.cached("answer", 1, build=lambda: ("old",)) == ("old",)
    caching.bump()
    assert caching.generation() != before
    assert caching.cached("answer", 1, build=lambda: ("new",)) == ("new",)


def test_outside_a_request_every_read_goes_to_the_cache(db):
    caching.end_request()
    assert caching.cached("answer", 1, build=lambda: ("first",)) == ("first",)
    caching.cache.set(f"answer:{caching.generation()}:1", ("changed elsewhere",))
    assert caching.cached("answer", 1, build=lambda: ("rebuilt",)) == ("changed elsewhere",)


def test_the_next_request_starts_with_nothing_remembered(db):
    caching.begin_request()
    caching.cached("answer", 1, build=lambda: ("first",))
    caching.end_request()
    caching.cache.set(f"answer:{caching.generation()}:1", ("changed elsewhere",))
    caching.begin_request()
    try:
        assert caching.cached("answer", 1, build=lambda: ("x",)) == ("changed elsewhere",)
    finally:
        caching.end_request()


def test_what_a_request_shares_cannot_be_changed_by_one_reader(course):
    from dataclasses import FrozenInstanceError

    module = course.specific.curriculum()[0]
    assert isinstance(module.lesson_list, tuple)
    with pytest.raises(FrozenInstanceError):
        module.lesson_list[0].title = "changed"


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_changed_content_caches_nothing_until_it_ends(course):
    with transaction.atomic():
        assert caching.cached("answer", 1, build=lambda: ("kept",)) == ("kept",)
        caching.bump()
        assert caching.changed_in_this_transaction()
        assert caching.cached("answer", 2, build=lambda: ("uncommitted",)) == ("uncommitted",)
        assert caching.cached("answer", 2, build=lambda: ("built again",)) == ("built again",)
    assert not caching.changed_in_this_transaction()
    assert caching.cached("answer", 2, build=lambda: ("committed",)) == ("committed",)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_no_longer_counts_once_its_transaction_ends(course):
    with pytest.raises(RuntimeError), transaction.atomic():
        caching.bump()
        raise RuntimeError
    assert not caching.changed_in_this_transaction()
    with transaction.atomic():  # a later transaction that changes nothing caches as usual
        assert not caching.changed_in_this_transaction()


@pytest.mark.django_db(transaction=True)
def test_a_transaction_without_an_atomic_block_counts_as_changing(course):
    transaction.set_autocommit(False)
    try:
        assert caching.changed_in_this_transaction()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)


def test_an_editors_autosave_leaves_the_caches_alone(course):
    """Wagtail saves a revision at every pause in typing; only what visitors see moves the
    generation on."""
    before = caching.generation()
    course.specific.save_revision()
    assert caching.generation() == before
    course.specific.save_revision().publish()
    assert caching.generation() != before


def test_models_other_than_pages_keep_djangos_fast_delete(db):
    from django.contrib.sessions.models import Session
    from django.db.models.deletion import Collector

    assert Collector(using="default").can_fast_delete(Session.objects.all())


def test_a_bump_while_the_cache_fails_open_starts_a_fresh_generation(db, monkeypatch):
    before = caching.generation()
    monkeypatch.setattr(caching.cache, "incr", lambda *a, **k: 1)  # base.cache, Redis down
    caching.bump()
    assert caching.generation() not in (before, 1)


def test_a_generation_that_cannot_move_on_is_logged(db, monkeypatch, caplog):
    caching.generation()
    monkeypatch.setattr(caching.cache, "incr", lambda *a, **k: 1)
    monkeypatch.setattr(caching.cache, "set", lambda *a, **k: None)
    caching.bump()
    assert "content generation not moved on" in caplog.text
