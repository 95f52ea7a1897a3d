"""The buyer's world: progress, the library, and claiming a guest purchase."""

import re
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.core import mail, signing
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commerce.access.claims import SALT, make_claim_url
from commerce.models import ClaimToken, Entitlement, Order
from learner.models import CourseCompletion, LessonProgress
from tests.helpers import deliver, events, make_course, start


@pytest.fixture
def learner(django_user_model):
    user = django_user_model.objects.create_user("learner", "learner@example.com", "pw")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def grant(user, course):
    return Entitlement.objects.create(
        user=user, email=user.email, course=course, source=Entitlement.Source.ADMIN
    )


# --- progress ------------------------------------------------------------------------------


def test_opening_a_lesson_marks_it_in_progress(client, course, learner):
    grant(learner, course)
    client.force_login(learner)
    lesson = course.lessons().last()
    client.get(lesson.url)
    progress = LessonProgress.objects.get()
    assert (progress.lesson_id, progress.status) == (lesson.pk, "in_progress")


def test_marking_complete_is_idempotent(client, course, learner):
    grant(learner, course)
    client.force_login(learner)
    lesson = course.lessons().first()
    url = reverse("complete_lesson", args=[lesson.pk])
    assert client.post(url).status_code == 302
    first = LessonProgress.objects.get().completed_at
    client.post(url)
    assert LessonProgress.objects.get().completed_at == first
    client.get(lesson.url)
    assert LessonProgress.objects.get().status == "completed"


def test_completing_every_lesson_completes_the_course(client, course, learner):
    grant(learner, course)
    client.force_login(learner)
    for lesson in course.lessons():
        client.post(reverse("complete_lesson", args=[lesson.pk]))
    assert CourseCompletion.objects.filter(user=learner, course=course).exists()


def test_completing_needs_access(client, course, learner):
    client.force_login(learner)
    paid = course.lessons().filter(is_free_preview=False).first()
    assert client.post(reverse("complete_lesson", args=[paid.pk])).status_code == 403
    assert not LessonProgress.objects.exists()


def test_completing_needs_a_login_and_a_post(client, course):
    lesson = course.lessons().first()
    url = reverse("complete_lesson", args=[lesson.pk])
    assert client.post(url).status_code == 302
    assert client.get(url).status_code == 405
    assert not LessonProgress.objects.exists()


def test_completing_needs_a_csrf_token(course, learner):
    grant(learner, course)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner)
    lesson = course.lessons().first()
    assert strict.post(reverse("complete_lesson", args=[lesson.pk])).status_code == 403


def test_an_anonymous_preview_reader_records_nothing(client, course):
    client.get(course.lessons().filter(is_free_preview=True).first().url)
    assert not LessonProgress.objects.exists()


# --- my courses ----------------------------------------------------------------------------


def test_my_courses_needs_a_login(client, db):
    assert client.get(reverse("my_courses")).status_code == 302


def test_my_courses_lists_owned_courses_with_progress_and_resume(client, course, catalog, learner):
    other = make_course(catalog, slug="unowned")
    grant(learner, course)
    client.force_login(learner)
    first = course.lessons().first()
    client.post(reverse("complete_lesson", args=[first.pk]))
    response = client.get(reverse("my_courses"))
    assert course.title.encode() in response.content
    assert other.title.encode() not in response.content
    assert b"1 of 2 lessons complete" in response.content
    assert b"Resume: Lesson 2" in response.content or b"Resume: Lesson 1" in response.content


def library_queries(client):
    client.get(reverse("my_courses"))
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("my_courses")).status_code == 200
    return len(ctx.captured_queries)


def test_my_courses_query_count_is_the_same_for_1_and_50_courses(client, catalog, learner):
    client.force_login(learner)
    grant(learner, make_course(catalog, slug="c0", lessons=2))
    one = library_queries(client)
    for i in range(1, 50):
        grant(learner, make_course(catalog, slug=f"c{i}", lessons=1))
    fifty = library_queries(client)
    assert fifty == one


# --- claim ---------------------------------------------------------------------------------


def claim_link(outbox_message):
    return re.search(r"(http://\S+/claim/\S+/)", outbox_message.body).group(1)


def guest_purchase(client, course, emulator, email="guest@example.com"):
    order = start(client, course, email)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    return order


def test_a_guest_claims_a_purchase_into_a_new_account_and_studies(
    client, course, emulator, django_user_model
):
    guest_purchase(client, course, emulator)
    receipt = mail.outbox[-1]
    link = claim_link(receipt)
    path = link.split("testserver", 1)[-1]
    landing = client.get(path)
    assert b"Sign up" in landing.content

    user = django_user_model.objects.create_user("new", "someone-else@example.com", "pw")
    client.force_login(user)
    assert b"Add them to my library" in client.get(path).content
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == course.first_lesson().url
    entitlement = Entitlement.objects.get()
    assert entitlement.user == user
    assert Order.objects.get().user == user
    assert EmailAddress.objects.get(user=user, email="guest@example.com").verified
    paid = course.lessons().filter(is_free_preview=False).first()
    assert client.get(paid.url).status_code == 200
    assert client.post(reverse("complete_lesson", args=[paid.pk])).status_code == 302


def test_signing_up_from_a_claim_link_needs_no_second_verification(client, course, emulator):
    guest_purchase(client, course, emulator)
    path = urlsplit(claim_link(mail.outbox[-1])).path
    mail.outbox.clear()
    browser = Client()
    assert b"Sign up" in browser.get(path).content
    response = browser.post(
        reverse("account_signup") + f"?next={path}",
        {
            "email": "guest@example.com",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
            "next": path,
        },
    )
    assert response.status_code == 302 and response["Location"] == path
    assert not [m for m in mail.outbox if "confirm-email" in m.body]
    user = Entitlement.objects.get().user
    assert user is not None and user.email == "guest@example.com"
    landed = browser.post(path)
    assert landed["Location"] == course.first_lesson().url
    paid = course.lessons().filter(is_free_preview=False).first()
    assert browser.get(paid.url).status_code == 200


def test_a_claim_link_does_not_vouch_for_a_different_address(client, course, emulator):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    mail.outbox.clear()
    browser = Client()
    browser.get(path)
    browser.post(
        reverse("account_signup"),
        {
            "email": "other@example.com",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert [m for m in mail.outbox if "confirm-email" in m.body]
    assert not EmailAddress.objects.get(email="other@example.com").verified
    assert not EmailAddress.objects.filter(email="guest@example.com").exists()
    assert Entitlement.objects.get().user is None


def test_a_used_link_opened_by_the_account_that_used_it_goes_to_my_courses(
    client, course, emulator, learner
):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    client.force_login(learner)
    client.post(path)
    again = client.get(path)
    assert again.status_code == 302 and again["Location"] == reverse("my_courses")


def test_a_claim_link_works_once(client, course, emulator, learner, django_user_model):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    client.force_login(learner)
    client.post(path)
    client.force_login(django_user_model.objects.create_user("late", "late@example.com", "pw"))
    again = client.post(path)
    assert again.status_code == 400 and b"already been used" in again.content


def test_a_forged_claim_link_is_refused(client, learner):
    client.force_login(learner)
    response = client.post(reverse("claim", args=["forged-token"]))
    assert response.status_code == 400 and b"not valid" in response.content


def test_a_claim_link_for_a_token_that_was_never_issued_is_refused(client, learner):
    client.force_login(learner)
    forged = signing.dumps(999999, salt=SALT)
    assert client.post(reverse("claim", args=[forged])).status_code == 400


def test_an_expired_claim_link_is_refused(client, course, emulator, learner, settings):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    ClaimToken.objects.update(expires_at=ClaimToken.objects.get().created_at)
    client.force_login(learner)
    response = client.post(path)
    assert response.status_code == 400 and b"expired" in response.content
    assert Entitlement.objects.get().user is None


def test_an_unverified_address_claims_nothing(client, course, emulator, django_user_model):
    guest_purchase(client, course, emulator)
    user = django_user_model.objects.create_user("u", "guest@example.com", "pw")
    EmailAddress.objects.create(user=user, email="guest@example.com", verified=False)
    client.force_login(user)  # logging in fires the claim of verified addresses only
    from learner.accounts import claim_verified_addresses

    claim_verified_addresses(user)
    assert Entitlement.objects.get().user is None
    paid = course.lessons().filter(is_free_preview=False).first()
    assert client.get(paid.url).status_code == 403


def test_verifying_the_address_claims_the_purchase(client, course, emulator, django_user_model):
    from allauth.account.signals import email_confirmed

    guest_purchase(client, course, emulator)
    user = django_user_model.objects.create_user("u", "guest@example.com", "pw")
    address = EmailAddress.objects.create(user=user, email="guest@example.com", verified=True)
    email_confirmed.send(sender=EmailAddress, request=None, email_address=address)
    assert Entitlement.objects.get().user == user


def test_find_my_purchases_answers_the_same_whether_or_not_purchases_exist(
    client, course, emulator
):
    guest_purchase(client, course, emulator)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        known = client.post(reverse("find_purchases"), {"email": "guest@example.com"})
        unknown = Client().post(reverse("find_purchases"), {"email": "nobody@example.com"})

    def strip(response):
        text = response.content.decode()
        return text.replace("guest@example.com", "X").replace("nobody@example.com", "X")

    assert known.status_code == unknown.status_code == 200
    assert strip(known) == strip(unknown)
    assert "we have sent a link" in strip(known)
    assert [m.to for m in mail.outbox] == [["guest@example.com"]]


def test_find_my_purchases_is_rate_limited(client, db, settings):
    from django.core.cache import cache

    cache.clear()
    settings.FIND_PURCHASES_RATE = "2/h"
    url = reverse("find_purchases")
    codes = [client.post(url, {"email": f"a{i}@example.com"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    cache.clear()


def test_find_my_purchases_rejects_a_bad_address(client, db):
    response = client.post(reverse("find_purchases"), {"email": "nope"})
    assert response.status_code == 400


def test_make_claim_url_is_signed_and_single_purpose(db):
    url = make_claim_url("Guest@Example.com")
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert signing.loads(token, salt=SALT) == ClaimToken.objects.get().pk
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt="another.purpose")
    assert ClaimToken.objects.get().email == "guest@example.com"


def test_signing_up_with_the_purchase_address_claims_it_once_verified(client, course, emulator):
    guest_purchase(client, course, emulator)
    mail.outbox.clear()
    browser = Client()
    response = browser.post(
        reverse("account_signup"),
        {
            "email": "guest@example.com",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert Entitlement.objects.get().user is None  # not proven yet
    confirm = re.search(r"(/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    assert browser.get(confirm).status_code == 200
    browser.post(confirm)
    entitlement = Entitlement.objects.get()
    assert entitlement.user is not None and entitlement.user.email == "guest@example.com"
    paid = course.lessons().filter(is_free_preview=False).first()
    assert browser.get(paid.url).status_code == 200


@pytest.mark.parametrize("name", ["account_login", "account_signup", "account_reset_password"])
def test_account_pages_use_the_site_layout(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b"Skip to content" in response.content and b"css/site.css" in response.content


def test_a_claim_link_for_an_address_of_another_account_attaches_nothing(
    client, course, emulator, learner, django_user_model
):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    owner = django_user_model.objects.create_user("owner", "guest@example.com", "pw")
    EmailAddress.objects.create(user=owner, email="guest@example.com", verified=True)
    client.force_login(learner)
    response = client.post(path)
    assert response.status_code == 409 and b"belongs to another account" in response.content
    assert Entitlement.objects.get().user is None
    assert ClaimToken.objects.get().used_at is None


def test_an_unproven_sign_up_with_the_buyers_address_does_not_block_the_claim(
    client, course, emulator, learner, django_user_model
):
    guest_purchase(client, course, emulator)
    path = claim_link(mail.outbox[-1]).split("testserver", 1)[-1]
    squatter = django_user_model.objects.create_user("squatter", "guest@example.com", "pw")
    EmailAddress.objects.create(user=squatter, email="guest@example.com", verified=False)
    client.force_login(learner)
    response = client.post(path)
    assert response.status_code == 302
    assert Entitlement.objects.get().user == learner


def test_an_expired_claim_link_no_longer_vouches_for_its_address(client, course, emulator):
    guest_purchase(client, course, emulator)
    path = urlsplit(claim_link(mail.outbox[-1])).path
    mail.outbox.clear()
    browser = Client()
    browser.get(path)
    ClaimToken.objects.update(expires_at=ClaimToken.objects.get().created_at)
    browser.post(
        reverse("account_signup"),
        {
            "email": "guest@example.com",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert not EmailAddress.objects.get(email="guest@example.com").verified
    assert Entitlement.objects.get().user is None
