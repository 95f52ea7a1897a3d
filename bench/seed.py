"""Data and requests for the benchmark (runs inside the bench process, Django set up)."""

import json
import os
import random
import secrets
import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import Locale, Page, Site

from base.db import statement_cursor
from base.models import HomePage
from commerce.access import has_course_access
from commerce.models import Entitlement, Order, OrderItem, StripeEvent
from courses.models import (
    BundleCourse,
    BundlePage,
    CourseIndexPage,
    CoursePage,
    LessonPage,
    ModulePage,
)
from devtools.stripe_emulator import example

LEARNERS = 5000
COURSES = 200
STATE = {}


def build():
    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Home", slug="bench-home", live=True))
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "127.0.0.1", "root_page": home}
    )
    catalog = home.add_child(instance=CourseIndexPage(title="Courses", slug="courses", live=True))
    courses = []
    for i in range(COURSES):
        course = catalog.add_child(
            instance=CoursePage(
                title=f"Course {i:03d}",
                slug=f"course-{i:03d}",
                summary="A benchmark course.",
                price_amount=4900,
                price_currency="usd",
                live=True,
            )
        )
        module = course.add_child(instance=ModulePage(title="Module", slug="module", live=True))
        for j, preview in enumerate((True, False)):
            module.add_child(
                instance=LessonPage(
                    title=f"Lesson {j}",
                    slug=f"lesson-{j}",
                    summary="s",
                    is_free_preview=preview,
                    body=[{"type": "text", "value": "<p>" + "Lesson text. " * 200 + "</p>"}],
                    live=True,
                )
            )
        courses.append(course)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user_custom (password, is_superuser, username, first_name, "
            "last_name, email, is_staff, is_active, date_joined) SELECT '!', false, "
            "'bench' || g, '', '', 'bench' || g || '@example.com', false, true, now() "
            "FROM generate_series(1, %s) g",
            [LEARNERS],
        )
        cursor.execute(
            "INSERT INTO commerce_entitlement (course_id, user_id, email, source, status, "
            "reason, granted_at, updated_at) SELECT c.page_ptr_id, u.id, u.email, 'admin', "
            "'active', '', now(), now() FROM auth_user_custom u CROSS JOIN courses_coursepage c "
            "WHERE u.username LIKE 'bench%%'"
        )
        cursor.execute("ANALYZE")
    learner = get_user_model().objects.create_user("learner", "learner@example.com", "pw")
    for course in courses[:50]:
        Entitlement.objects.create(
            user=learner, email=learner.email, course=course, source=Entitlement.Source.ADMIN
        )
    # A bundle of three courses, one of which the learner owns (the page says so).
    bundle = catalog.add_child(
        instance=BundlePage(
            title="Bench bundle",
            slug="bench-bundle",
            summary="Three benchmark courses.",
            price_amount=9900,
            price_currency="usd",
            live=True,
            bundle_courses=[
                BundleCourse(course=c, sort_order=i)
                for i, c in enumerate([courses[0], courses[-2], courses[-3]])
            ],
        )
    )
    sold = courses[-1]  # the learner does not own it: checkout and webhooks use it
    STATE["sold"] = sold
    owned = courses[0]
    lessons = list(owned.lessons().specific())
    rich_lesson = learning_depth(courses[1], learner)
    return {
        "rich_lesson_url": rich_lesson.url,
        "rich_course_id": courses[1].pk,
        "learner": learner,
        "course_id": sold.pk,
        "preview_lesson_url": lessons[0].url,
        "paid_lesson_url": lessons[1].url,
        "bundle_url": bundle.url,
        "course_url": owned.url,
    }


def learning_depth(course, learner):
    """A lesson of a course the learner owns with a Stream video they are half-way through, a
    quiz they have taken, and a lesson after it that opens 30 days after purchase."""
    from courses.management.commands.seed_demo import DEMO_QUIZ
    from learner import quizzes, video

    lesson = course.lessons().filter(is_free_preview=False).specific().first()
    lesson.body = list(lesson.body.raw_data) + [
        {"type": "stream_video", "value": {"video_uid": "a" * 32, "caption": ""}},
        {"type": "quiz", "value": DEMO_QUIZ},
    ]
    lesson.save_revision().publish()
    lesson = LessonPage.objects.get(pk=lesson.pk)
    module = lesson.get_parent()
    module.add_child(
        instance=LessonPage(
            title="Later", slug="later", summary="s", release_after_days=30, live=True
        )
    )
    video.record(learner, lesson, course, "a" * 32, 60.0, 60.0, 120.0)
    quiz = quizzes.quizzes_in(lesson)[0]
    from django.http import QueryDict

    answers = QueryDict(mutable=True)
    answers["token"] = quizzes.new_token()
    for question in quiz.questions:
        answers.setlist(f"q-{question.id}", [question.choices[0].id])
    quizzes.submit(learner, lesson, course, quiz, answers)
    return lesson


def admin_orders(n=100_000):
    """n paid orders of one course each, spread over a year: the admin's order list and order
    page are measured over them. Returns a superuser and one order to inspect."""
    course = STATE["sold"]
    now = timezone.now()
    batch = 5000
    for start in range(0, n, batch):
        orders = Order.objects.bulk_create(
            [
                Order(
                    email=f"history-{i}@example.com",
                    currency="usd",
                    status="paid",
                    amount_subtotal=course.price_amount,
                    amount_total=course.price_amount,
                    stripe_session_id=f"cs_test_history_{i}",
                    stripe_payment_intent_id=f"pi_test_history_{i}",
                    paid_at=now - timedelta(minutes=5 * i),
                    expires_at=now,
                )
                for i in range(start, min(n, start + batch))
            ]
        )
        OrderItem.objects.bulk_create(
            [
                OrderItem(
                    order=o,
                    course=course,
                    title=course.title,
                    unit_amount=course.price_amount,
                    currency="usd",
                )
                for o in orders
            ]
        )
    with connection.cursor() as cursor:
        # Spread creation over time as real history would be (auto_now_add set them all now).
        cursor.execute(
            "UPDATE commerce_order SET created_at = paid_at WHERE email LIKE 'history-%%'"
        )
        cursor.execute("ANALYZE")
    admin = get_user_model().objects.create_superuser("owner", "owner@example.com", "pw")
    order = Order.objects.filter(email__startswith="history-").order_by("pk")[n // 2]
    return admin, order


def webhook_round_trips(secret):
    """Database round trips of one first delivery and of its duplicate, in this process."""
    first = completed_events(1, secret)[0]
    counts = []
    for _ in range(2):
        client = Client(HTTP_HOST="127.0.0.1")
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                first["path"],
                data=first["body"],
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=first["headers"]["Stripe-Signature"],
            )
        assert response.status_code == 200, response.content
        counts.append(len(ctx.captured_queries))
    return {"first": counts[0], "duplicate": counts[1]}


def completed_events(n, secret):
    """n pending orders and a signed checkout.session.completed request for each."""
    course = STATE["sold"]
    orders = Order.objects.bulk_create(
        [
            Order(
                email=f"buyer-{secrets.token_hex(6)}@example.com",
                currency="usd",
                amount_subtotal=course.price_amount,
                stripe_session_id=f"cs_test_bench_{secrets.token_hex(12)}",
                expires_at=timezone.now() + timedelta(hours=1),
            )
            for _ in range(n)
        ]
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=o,
                course=course,
                title=course.title,
                unit_amount=course.price_amount,
                currency="usd",
            )
            for o in orders
        ]
    )
    requests = []
    for order in orders:
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
            payment_intent=f"pi_test_bench_{secrets.token_hex(10)}",
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            customer_email=order.email,
        )
        event = example(
            "event",
            id=f"evt_test_bench_{secrets.token_hex(12)}",
            type="checkout.session.completed",
            data={"object": session},
            created=int(time.time()),
            livemode=False,
        )
        requests.append(signed_request(event, secret))
    return requests


def unhandled_events(n, secret):
    """n signed events of a type the site does not handle (``customer.created``): the
    endpoint verifies, records and ignores them, so they cost what any synchronous
    design pays before its first handler runs."""
    return [
        signed_request(
            example(
                "event",
                id=f"evt_test_bench_{secrets.token_hex(12)}",
                type="customer.created",
                data={"object": example("customer", id=f"cus_bench_{secrets.token_hex(7)}")},
                created=int(time.time()),
                livemode=False,
            ),
            secret,
        )
        for _ in range(n)
    ]


def signed_request(event, secret):
    import stripe

    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return {
        "method": "POST",
        "path": "/webhooks/stripe/",
        "body": payload,
        "headers": {"Content-Type": "application/json", "Stripe-Signature": header},
    }


def webhook_outcome():
    paid = Order.objects.filter(status="paid").count()
    active = Entitlement.objects.filter(source="purchase", status="active").count()
    per_order = Entitlement.objects.filter(source="purchase").values("order_item").distinct()
    return {
        "paid_orders": paid,
        "active_entitlements": active,
        "ledger_rows": StripeEvent.objects.count(),
        "ignored_rows": StripeEvent.objects.filter(status=StripeEvent.Status.IGNORED).count(),
        "duplicate_grants": Entitlement.objects.filter(source="purchase").count()
        - per_order.count(),
    }


def session_cookie(user):
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client.cookies["sessionid"].value


def query_count(path, user=None):
    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    client.get(path)
    with CaptureQueriesContext(connection) as ctx:
        client.get(path)
    return len(ctx.captured_queries)


def access_check_latency(samples=2000):
    users = list(
        get_user_model().objects.filter(username__startswith="bench").values_list("pk", flat=True)
    )
    courses = list(CoursePage.objects.all())
    User = get_user_model()
    timings = []
    for _ in range(samples):
        user = User(pk=random.choice(users), is_staff=False, is_superuser=False)
        course = random.choice(courses)
        started = time.perf_counter()
        assert has_course_access(user, course)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    query = Entitlement.objects.filter(
        user_id=users[0], course_id=courses[0].pk, status="active"
    ).filter(expires_at__isnull=True)
    return {
        "rows": Entitlement.objects.count(),
        "samples": samples,
        "p50_ms": round(statistics.median(timings), 3),
        "p95_ms": round(timings[int(0.95 * len(timings))], 3),
        "plan": query.explain(analyze=True),
    }


def checkout_requests(base, course_id, n):
    import re
    import urllib.request

    with urllib.request.urlopen(f"{base}{STATE['sold'].url}") as page:
        cookie = page.headers.get("Set-Cookie", "")
        html = page.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    csrf = re.search(r"csrftoken=([^;]+)", cookie).group(1)
    return [
        {
            "method": "POST",
            "path": f"/checkout/{course_id}/",
            "body": f"csrfmiddlewaretoken={token}&email=buyer{i}-{secrets.token_hex(4)}"
            "%40example.com",
            "headers": {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
            },
        }
        for i in range(n)
    ]


# The statements of a guest's first delivery as fulfilment issues them, written by hand: the
# least any ORM-side work on fulfilment could cost (the webhook scenario's "by hand" row).
BY_HAND = [
    "INSERT INTO commerce_stripeevent (event_id, type, livemode, api_version, payload, status, "
    "error, attempts, stripe_created, received_at, processed_at, next_attempt_at, order_id) "
    "VALUES (%s, %s, false, %s, %s, 'received', '', 1, now(), now(), NULL, NULL, NULL) "
    "ON CONFLICT DO NOTHING RETURNING id",
    "SELECT o.*, (SELECT g.recipient_email FROM commerce_gift g WHERE g.order_id = o.id LIMIT 1) "
    "FROM commerce_order o WHERE o.public_id = %s FOR UPDATE",
    "SELECT status FROM commerce_dispute WHERE order_id = %s",
    "SELECT i.id, i.course_id, i.*, e.*, EXISTS(SELECT 1 FROM commerce_entitlement u0 "
    "JOIN auth_user_custom u2 ON u0.user_id = u2.id WHERE u0.course_id = i.course_id "
    "AND UPPER(u2.email) = UPPER(%s) "
    "AND u0.status = 'active' AND (u0.expires_at IS NULL OR u0.expires_at > now())) "
    "FROM commerce_orderitem i LEFT JOIN commerce_entitlement e ON e.order_item_id = i.id "
    "WHERE i.order_id = %s",
    "INSERT INTO commerce_entitlement (course_id, user_id, email, source, order_item_id, status, "
    "reason, granted_by_id, granted_at, claimed_at, revoked_at, expires_at, updated_at) "
    "VALUES (%s, NULL, %s, 'purchase', %s, 'active', '', NULL, now(), NULL, NULL, NULL, now()) "
    "ON CONFLICT DO NOTHING RETURNING order_item_id",
    "UPDATE commerce_order SET status = 'paid', paid_at = now(), amount_total = %s, "
    "stripe_payment_intent_id = %s, updated_at = now() WHERE id = %s",
    "INSERT INTO commerce_orderevent (order_id, source, stripe_event_id, from_status, to_status, "
    "message, actor_id, created_at) VALUES (%s, 'webhook', %s, 'pending', 'paid', %s, NULL, now())",
    "UPDATE commerce_stripeevent SET status = 'processed', error = '', order_id = %s, "
    "processed_at = now(), next_attempt_at = NULL WHERE id = %s",
]


def _by_hand(event):
    from django.db import transaction

    from commerce.mail import receipts

    session = event["data"]["object"]
    with transaction.atomic(), statement_cursor() as cursor:  # prepared, as the site's are
        sql = iter(BY_HAND)
        cursor.execute(next(sql), [event["id"], event["type"], "", json.dumps(event)])
        event_pk = cursor.fetchone()[0]
        cursor.execute(next(sql), [session["client_reference_id"]])
        order = cursor.fetchone()
        cursor.execute(next(sql), [order[0]])
        cursor.fetchall()
        cursor.execute(next(sql), [session["customer_email"], order[0]])
        item = cursor.fetchone()
        cursor.execute(next(sql), [item[1], session["customer_email"], item[0]])
        cursor.fetchall()
        cursor.execute(next(sql), [session["amount_total"], session["payment_intent"], order[0]])
        cursor.execute(next(sql), [order[0], event["id"], "payment succeeded"])
        cursor.execute(next(sql), [order[0], event_pk])
        transaction.on_commit(lambda: receipts.enqueue_receipt(order[0]))


def in_process_costs(n, secret):
    """CPU per first delivery inside this process, no HTTP: through the site's ledger and
    fulfilment, and as the same statements by hand (BY_HAND). The difference is what Django's
    ORM costs on the money path; the by-hand figure is the floor of any work on it."""
    from bench.run import cpu_seconds
    from commerce.payments import ledger

    costs = {}
    for name, deliver in (("site", ledger.process), ("by_hand", _by_hand)):
        events = [json.loads(r["body"]) for r in completed_events(n + 20, secret)]
        for event in events[:20]:  # warm the connection, the caches, the compiled queries
            deliver(event)
        cpu, used = time.process_time(), cpu_seconds(os.getpid())
        for event in events[20:]:
            deliver(event)
        cpu = time.process_time() - cpu
        used = {k: v - used[k] for k, v in cpu_seconds(os.getpid()).items()}
        done = StripeEvent.objects.filter(event_id__in=[e["id"] for e in events])
        assert done.filter(status=StripeEvent.Status.PROCESSED).count() == len(events), name
        costs[name] = {
            "python_ms": round(cpu / n * 1000, 2),
            "postgres_ms": round(used["postgres"] / n * 1000, 2),
        }
    return costs
