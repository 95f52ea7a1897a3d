"""Property-based fuzzing of every endpoint that takes input: never a 500, never a change
without a valid signature or a valid form."""

import json
from datetime import timedelta
from urllib.parse import quote

import hypothesis
import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.models import Entitlement, Order, StripeEvent
from learner.models import LessonProgress
from tests.helpers import post_event, sign

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

HANDLED = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "other.type",
]


def nothing_changed():
    return (StripeEvent.objects.count(), Order.objects.count(), Entitlement.objects.count()) == (
        0,
        0,
        0,
    )


@FUZZ
@given(body=st.binary(max_size=4096), header=st.text(max_size=300))
def test_unsigned_bodies_and_headers_are_refused_with_400(db, body, header):
    client = Client()
    response = client.generic(
        "POST",
        "/webhooks/stripe/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header.encode("utf-8", "ignore").decode("latin-1"),
    )
    assert response.status_code == 400
    assert nothing_changed()


@FUZZ
@given(
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
    body=st.text(max_size=2000),
)
def test_content_types_and_encodings_never_break_the_webhook(db, content_type, body):
    response = Client().generic(
        "POST",
        "/webhooks/stripe/",
        body.encode("utf-16"),
        content_type=content_type,
        HTTP_STRIPE_SIGNATURE=sign(body),
    )
    assert response.status_code == 400
    assert nothing_changed()


def strict(payload):
    """Whether Stripe could have sent it: JSON without Infinity or NaN."""

    def refuse(constant):
        raise ValueError(constant)

    try:
        json.loads(payload, parse_constant=refuse)
    except ValueError:
        return False
    return True


# Half the ids look like Stripe's (and reach the ledger and the handlers), half do not.
event_ids = st.from_regex(r"evt_[A-Za-z0-9_]{1,40}", fullmatch=True) | st.text(
    min_size=1, max_size=40
)


@FUZZ
@given(type_=st.sampled_from(HANDLED), obj=json_values, event_id=event_ids)
def test_signed_events_of_any_shape_never_500(db, emulator, type_, obj, event_id):
    from commerce.payments.ledger import EVENT_ID

    event = {
        "id": event_id,
        "object": "event",
        "type": type_,
        "livemode": False,
        "data": {"object": obj if isinstance(obj, dict) else {"value": obj}},
    }
    response = post_event(event)
    assert response.status_code in (200, 400)
    assert Order.objects.count() == 0 and Entitlement.objects.count() == 0
    payload = json.dumps(event)
    reached = bool(EVENT_ID.match(event_id)) and "\\u0000" not in payload and strict(payload)
    hypothesis.event("reached the ledger" if reached else "refused before the ledger")
    recorded = list(StripeEvent.objects.values_list("event_id", flat=True))
    assert recorded == ([event_id] if reached else [])
    assert response.status_code == (200 if reached else 400)
    assert not StripeEvent.objects.filter(status__in=["received", "failed"]).exists()
    StripeEvent.objects.all().delete()


@FUZZ
@given(
    obj=st.fixed_dictionaries(
        {
            "id": st.text(max_size=10),
            "metadata": json_values,
            "client_reference_id": json_values,
            "status": json_values,
            "payment_status": json_values,
            "amount_total": json_values,
            "currency": json_values,
            "total_details": json_values,
            "payment_intent": json_values,
            "refunds": json_values,
            "amount_refunded": json_values,
            "charge": json_values,
        }
    ),
    type_=st.sampled_from(HANDLED[:-1]),
)
def test_signed_stripe_shaped_events_with_wrong_types_never_500(db, obj, type_):
    response = post_event(
        {"id": "evt_fuzz", "type": type_, "livemode": False, "data": {"object": obj}}
    )
    assert response.status_code in (200, 400)
    assert not StripeEvent.objects.filter(status__in=["received", "failed"]).exists()
    StripeEvent.objects.all().delete()


def test_a_huge_payload_is_refused(db):
    body = json.dumps({"id": "evt_big", "type": "x", "data": {"object": {"pad": "x" * 3_000_000}}})
    assert post_event(body).status_code == 400
    assert nothing_changed()


def test_an_empty_payload_is_refused(db):
    assert post_event("").status_code == 400
    assert nothing_changed()


@FUZZ
@given(
    email=st.emails() | st.text(max_size=300),
    extra=st.dictionaries(st.text(max_size=10), st.text(max_size=50), max_size=3),
)
def test_the_checkout_form_never_500s_or_orders_without_a_valid_address(
    course, emulator, email, extra
):
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    before = Order.objects.count()
    response = Client().post(f"/checkout/{course.pk}/", {**extra, "email": email})
    try:
        validate_email(email.strip())
        valid = len(email.strip()) <= 254
    except ValidationError:
        valid = False
    hypothesis.event("valid address" if valid else "invalid address")
    if valid:  # the form accepted it: an order and a Checkout Session were made
        assert response.status_code == 303
        assert Order.objects.count() == before + 1
    else:
        assert response.status_code == 400
        assert Order.objects.count() == before


def gift_input_is_valid(recipient, name, message, day):
    """The rule GiftForm states, written out independently."""
    import re

    from django import forms
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(recipient.strip())
        when = forms.DateField(required=False).clean(day)  # Django's own date parsing
    except ValidationError:
        return False
    today = timezone.localdate()
    when = when or today
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
    return (
        len(recipient.strip()) <= 254
        and len(name.strip()) <= 100
        and not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", name.strip())
        and len(message.strip()) <= 500
        and not control.search(message.strip())
        and today <= when <= today + timedelta(days=365)
    )


days_around_today = st.integers(min_value=-30, max_value=400).map(
    lambda n: (timezone.localdate() + timedelta(days=n)).isoformat()
)


@FUZZ
@given(
    recipient=st.emails() | st.text(max_size=60),
    name=st.text(max_size=120),
    message=st.text(max_size=40) | st.text(min_size=490, max_size=520),
    day=days_around_today | st.just("") | st.text(max_size=12),
)
def test_the_gift_form_orders_exactly_when_its_input_is_valid(
    course, emulator, recipient, name, message, day
):
    from commerce.models import Gift

    before = Order.objects.count()
    data = {
        "gift": "1",
        "email": "buyer@example.com",
        "recipient_email": recipient,
        "recipient_name": name,
        "gift_message": message,
        "deliver_on": day,
    }
    response = Client().post(f"/checkout/{course.pk}/", data)
    valid = gift_input_is_valid(recipient, name, message, day)
    hypothesis.event("valid gift" if valid else "invalid gift")
    if valid:
        assert response.status_code == 303
        assert Order.objects.count() == before + 1 == Gift.objects.count()
    else:
        assert response.status_code == 400
        assert Order.objects.count() == before


@FUZZ
@given(interval=st.text(max_size=20), plan_id=st.integers(min_value=-(2**31), max_value=2**31))
def test_membership_checkout_of_any_plan_and_interval_never_500s(
    course, emulator, django_user_model, interval, plan_id
):
    from commerce.models import Membership, MembershipPlan, PlanPrice

    plan, _ = MembershipPlan.objects.get_or_create(name="Fuzz")
    PlanPrice.objects.get_or_create(plan=plan, interval="month", defaults={"amount": 500})
    user, _ = django_user_model.objects.get_or_create(username="fuzzer", email="f@example.com")
    client = Client()
    client.force_login(user)
    target = plan.pk if plan_id % 2 else plan_id
    before = Membership.objects.count()
    response = client.post(f"/membership/{target}/checkout/", {"interval": interval})
    if target != plan.pk:
        assert response.status_code == 404
    elif interval == "month":
        assert response.status_code == 303
    else:
        assert response.status_code == 400
        assert Membership.objects.count() == before


@FUZZ
@given(course_id=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_checkout_of_any_course_id_never_500s(db, course_id):
    path = f"/checkout/{course_id}/"
    response = Client().post(path, {"email": "a@example.com"})
    assert response.status_code in (404, 303, 400, 503)
    assert Order.objects.count() == 0


@FUZZ
@given(value=st.text(max_size=400))
def test_the_success_page_never_500s(db, value):
    response = Client().get("/checkout/success/", {"session_id": value})
    assert response.status_code in (400, 404)


@FUZZ
@given(value=st.text(min_size=1, max_size=200))
def test_order_status_and_cancel_never_500(db, value):
    client = Client()
    assert client.get(f"/checkout/orders/{quote(value, safe='')}/status/").status_code == 404
    assert client.get("/checkout/cancel/", {"order": value}).status_code == 200


@FUZZ
@given(token=st.text(min_size=1, max_size=300))
def test_claim_links_of_any_shape_are_refused(db, token):
    response = Client().get(f"/claim/{quote(token, safe='')}/")
    assert response.status_code in (400, 404)


@FUZZ
@given(email=st.text(max_size=300))
def test_find_my_purchases_never_500s(db, email):
    from django.core.cache import cache

    cache.clear()
    response = Client().post("/claim/find/", {"email": email})
    assert response.status_code in (200, 400, 429)


@FUZZ
@given(lesson_id=st.integers(min_value=0, max_value=2**63 - 1))
def test_completing_any_lesson_id_never_500s(course, django_user_model, lesson_id):
    user, _ = django_user_model.objects.get_or_create(username="fuzz", email="f@example.com")
    client = Client()
    client.force_login(user)
    response = client.post(f"/learn/lessons/{lesson_id}/complete/")
    assert response.status_code in (302, 403, 404)
    paid_ids = set(course.lessons().filter(is_free_preview=False).values_list("pk", flat=True))
    assert not LessonProgress.objects.filter(lesson_id__in=paid_ids).exists()


@pytest.mark.parametrize("path", ["/", "/courses/", "/healthz", "/my-courses/", "/claim/find/"])
@FUZZ
@given(query=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3))
def test_pages_ignore_arbitrary_query_strings(catalog, path, query):
    assert Client().get(path, query).status_code in (200, 302, 404)


@FUZZ
@given(value=st.text(min_size=1, max_size=100))
def test_receipt_pages_never_500(django_user_model, value):
    user, _ = django_user_model.objects.get_or_create(username="r", email="r@example.com")
    client = Client()
    client.force_login(user)
    assert client.get(f"/my-courses/orders/{quote(value, safe='')}/").status_code == 404


# --- learning: quizzes, video progress, certificates ----------------------------------------


@pytest.fixture
def enrolled(course, django_user_model):
    from tests.helpers import entitle

    user, _ = django_user_model.objects.get_or_create(username="fuzz", email="f@example.com")
    entitle(user, course)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def quiz_lesson(paid_lesson):
    from courses.models import LessonPage
    from tests.test_quizzes import QUIZ

    paid_lesson.body = [
        {"type": "quiz", "value": QUIZ},
        {"type": "stream_video", "value": {"video_uid": "a" * 32, "caption": ""}},
    ]
    paid_lesson.save_revision().publish()
    return LessonPage.objects.get(pk=paid_lesson.pk)


@FUZZ
@given(data=st.data())
def test_quiz_answers_of_any_shape_never_500_and_store_only_a_graded_attempt(
    enrolled, quiz_lesson, data
):
    from learner import quizzes
    from learner.models import QuizAttempt

    quiz = quizzes.quizzes_in(quiz_lesson)[0]
    questions = [f"q-{q.id}" for q in quiz.questions]
    choices = [c.id for q in quiz.questions for c in q.choices]
    keys = st.sampled_from(questions) | st.text(max_size=12) | st.just("token")
    values = st.sampled_from(choices) | st.text(max_size=40)
    form = data.draw(st.dictionaries(keys, st.lists(values, max_size=3), max_size=6))
    before = QuizAttempt.objects.count()
    response = enrolled.post(f"/learn/lessons/{quiz_lesson.pk}/quizzes/{quiz.id}/", form)
    assert response.status_code in (302, 400, 409, 429)
    assert QuizAttempt.objects.count() == before + (response.status_code == 302)


number = st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=12)


@FUZZ
@given(position=number, furthest=number, duration=number, video=st.text(max_size=40))
def test_video_reports_of_any_shape_never_500_and_stay_within_the_video(
    enrolled, quiz_lesson, position, furthest, duration, video
):
    from learner.models import VideoProgress

    response = enrolled.post(
        f"/learn/lessons/{quiz_lesson.pk}/video/",
        {
            "video": video if video else "a" * 32,
            "position": str(position),
            "furthest": str(furthest),
            "duration": str(duration),
        },
    )
    assert response.status_code in (200, 400, 429)
    for row in VideoProgress.objects.all():
        assert 0 <= row.position <= row.duration and 0 <= row.furthest <= row.duration


@FUZZ
@given(code=st.text(min_size=1, max_size=60))
def test_certificate_pages_of_any_code_never_500(db, code):
    assert Client().get(f"/certificates/{quote(code, safe='')}/").status_code in (200, 404)


@FUZZ
@given(name=st.text(max_size=200))
def test_a_certificate_name_of_any_text_is_saved_clean_or_refused(course, django_user_model, name):
    from learner.models import Certificate

    user, _ = django_user_model.objects.get_or_create(username="named", email="n@example.com")
    certificate, _ = Certificate.objects.get_or_create(
        user=user,
        course=course,
        defaults={"code": "AAAA-BBBB-CCCC", "name": "Ada", "course_title": "C"},
    )
    client = Client()
    client.force_login(user)
    response = client.post(f"/my-courses/certificates/{certificate.code}/name/", {"name": name})
    assert response.status_code in (302, 400)
    certificate.refresh_from_db()
    assert 2 <= len(certificate.name) <= 150
    assert not any(ord(c) < 32 for c in certificate.name)
