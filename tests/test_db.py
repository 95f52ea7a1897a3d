"""base.db: the statements the ORM does not offer, on SQLite and PostgreSQL alike."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Value
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from base.db import Prepared, insert_new, insert_row, update_row
from commerce.models import Entitlement, Order, OrderEvent, StripeEvent
from tests.helpers import entitle

pytestmark = pytest.mark.django_db


def active_of_user(user, now):
    return (
        Entitlement.objects.filter(user_id=user)
        .active(now)
        .order_by("course_id")
        .values_list("course_id", "expires_at")
    )


ACTIVE = Prepared(active_of_user, user=-9_000_001, now=datetime(1901, 1, 1, tzinfo=UTC))


def test_a_prepared_query_answers_as_its_queryset_does(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    entitle(user, course)
    now = timezone.now()
    assert ACTIVE.rows(user=user.pk, now=now) == list(active_of_user(user.pk, now))
    assert ACTIVE.rows(user=user.pk, now=now) == [(course.pk, None)]


def test_a_prepared_query_refills_datetimes(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    ends = timezone.now() + timedelta(days=1)
    entitle(user, course, expires_at=ends)
    assert ACTIVE.rows(user=user.pk, now=ends - timedelta(seconds=1)) == [(course.pk, ends)]
    assert ACTIVE.rows(user=user.pk, now=ends) == []


def test_a_prepared_query_is_compiled_once(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    ACTIVE.rows(user=user.pk, now=timezone.now())
    compiled = ACTIVE.compile()
    ACTIVE.rows(user=-1, now=timezone.now())
    assert ACTIVE.compile() is compiled


def test_a_stand_in_its_lookup_rewrites_is_refused(db):
    """``icontains`` wraps its value in % (and escapes it on SQLite): refilling the raw value
    would change the question, so the query is refused when it is first run."""
    contains = Prepared(
        lambda email: Entitlement.objects.filter(email__icontains=email).values_list("pk"),
        email="stand-in",
    )
    with pytest.raises(ImproperlyConfigured, match="email"):
        contains.rows(email="x")


def test_an_expression_keeps_the_value_as_given(course, django_user_model):
    user = django_user_model.objects.create_user("p", "Mixed@Example.com", "pw")
    entitle(user, course)
    by_address = Prepared(
        lambda email: (
            Entitlement.objects.alias(address=Upper("user__email"))
            .filter(address=Upper(Value(email)))
            .values_list("user_id")
        ),
        email="stand-in@example.invalid",
    )
    assert by_address.rows(email="mixed@EXAMPLE.com") == [(user.pk,)]


def test_insert_new_says_which_rows_went_in(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    first = Entitlement(course=course, user=user, email=user.email, source="admin")
    twin = Entitlement(course=course, user=user, email=user.email, source="admin")
    with CaptureQueriesContext(connection) as queries:
        [pk] = insert_new([first])
        assert insert_new([twin]) == []  # the one-active-grant index refused it
    assert len(queries) == 2
    assert Entitlement.objects.get().pk == pk


def test_a_constant_equal_to_a_stand_in_stays_a_constant(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    entitle(user, course)
    # the stand-in 0 is also the query's own constant (expires_at is not compared here)
    owned = Prepared(
        lambda user: Entitlement.objects.filter(
            user_id=user, course__price_amount__gt=0
        ).values_list("course_id"),
        user=0,
    )
    assert owned.rows(user=user.pk) == [(course.pk,)]
    _, _, slots = owned.compile()
    assert [name for name, _ in slots].count("user") == 1


@pytest.mark.django_db(transaction=True)
def test_a_prepared_lock_refuses_to_run_outside_a_transaction(course, django_user_model):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    from commerce.payments.fulfilment import LOCK_ORDER

    with transaction.atomic():
        assert LOCK_ORDER.rows(public_id="ord_none") == []
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            LOCK_ORDER.rows(public_id="ord_none")
    else:  # SQLite has no row locks: the ORM lets it run as well
        assert LOCK_ORDER.rows(public_id="ord_none") == []


on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return cursor.fetchall()


@on_postgresql
def test_a_prepared_query_is_prepared_on_its_first_run_on_postgresql(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    entitle(user, course)
    for _ in range(12):
        assert ACTIVE.rows(user=user.pk, now=timezone.now()) == [(course.pk, None)]
    [(statement, generic, custom)] = [s for s in prepared_statements() if "expires_at" in s[0]]
    assert statement.startswith('SELECT "commerce_entitlement"."course_id"')
    assert generic + custom == 12


@on_postgresql
def test_a_prepared_query_stays_prepared_among_many_other_queries(course, django_user_model):
    """psycopg counts runs towards its threshold for the last hundred statements only;
    Django's own queries (their values written in) would push a hot one out."""
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    ACTIVE.rows(user=user.pk, now=timezone.now())
    for n in range(150):
        Entitlement.objects.filter(user_id=n).exists()
    ACTIVE.rows(user=user.pk, now=timezone.now())
    [(_, generic, custom)] = [s for s in prepared_statements() if "expires_at" in s[0]]
    assert generic + custom == 2


@on_postgresql
def test_a_constant_with_a_percent_sign_is_written_in_whole(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    entitle(user, course, reason="50% off")
    with_reason = Prepared(
        lambda user: (
            Entitlement.objects.filter(user_id=user, reason__in=["50% off", "%s"])
            .order_by()
            .values_list("course_id")
        ),
        user=-9_000_002,
    )
    _, sql, _ = with_reason.compile()
    assert "'50%% off'" in sql and "'%%s'" in sql
    assert with_reason.rows(user=user.pk) == [(course.pk,)]


@on_postgresql
def test_a_prepared_query_writes_its_constants_into_the_sql(db):
    """A generic plan sees ``status = 'active'`` and can use the partial index of active
    grants; only the refilled values are parameters."""
    _, sql, slots = ACTIVE.compile()
    assert "\"status\" = 'active'" in sql
    assert [name for name, _ in slots] == ["user", "now"]
    assert sql.count("%s") == 2


@on_postgresql
def test_the_webhook_items_query_is_planned_once_for_all_its_runs(db):
    """Its custom plan cost more to make than to run (0.7 ms against 0.03 ms)."""
    from commerce.payments.fulfilment import ITEMS

    with connection.cursor() as cursor:  # the plan cache's choice, whatever the data
        cursor.execute("SET plan_cache_mode = auto")
    for order_id in range(1, 20):
        ITEMS.rows(order_id=order_id, email="guest@example.com", now=timezone.now())
    [(generic, custom)] = [(g, c) for s, g, c in prepared_statements() if "orderitem" in s]
    assert generic >= 8 and custom <= 6


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_prepared_query_is_prepared_again_after_a_rollback(course, django_user_model):
    """psycopg forgets its prepared statements on a rollback; the next run prepares anew."""
    from django.db import transaction

    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    entitle(user, course)
    ACTIVE.rows(user=user.pk, now=timezone.now())
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        ACTIVE.rows(user=user.pk, now=timezone.now())
        1 / 0
    assert ACTIVE.rows(user=user.pk, now=timezone.now()) == [(course.pk, None)]
    [(_, generic, custom)] = [s for s in prepared_statements() if "expires_at" in s[0]]
    assert generic + custom == 1


def test_a_query_run_through_the_statement_cursor_is_logged_with_its_sql(course, django_user_model):
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(7):
            ACTIVE.rows(user=user.pk, now=timezone.now())
        insert_new([Entitlement(course=course, user=user, email=user.email, source="admin")])
    assert len(queries) == 8
    assert "expires_at" in queries[-2]["sql"] and str(user.pk) in queries[-2]["sql"]
    assert queries[-1]["sql"].startswith('INSERT INTO "commerce_entitlement"')


@on_postgresql
def test_a_query_runs_through_django_s_own_error_wrapping(db):
    from django.db import transaction
    from django.db.utils import DataError

    with pytest.raises(DataError), transaction.atomic():
        ACTIVE.rows(user="not-a-number", now=timezone.now())


def an_order():
    return Order.objects.create(
        email="b@example.com",
        currency="usd",
        amount_subtotal=1000,
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_update_row_writes_the_named_fields_only(db):
    order = an_order()
    Order.objects.filter(pk=order.pk).update(email="changed@example.com")
    order.status, order.amount_total = Order.Status.PAID, 1000
    update_row(order, ["status", "amount_total"])
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.amount_total) == (Order.Status.PAID, 1000)
    assert stored.email == "changed@example.com"  # not named, not written


def test_update_row_refreshes_an_auto_now_field_it_names(db):
    order = an_order()
    before = order.updated_at
    order.status = Order.Status.PAID
    update_row(order, ["status", "updated_at"])
    assert order.updated_at > before
    assert Order.objects.get(pk=order.pk).updated_at == order.updated_at


def test_update_row_writes_a_foreign_key_named_by_its_field(db):
    order = an_order()
    row = StripeEvent.objects.create(event_id="evt_row", type="x", payload={})
    row.order = order
    update_row(row, ["order"])
    assert StripeEvent.objects.get(pk=row.pk).order_id == order.pk


def test_update_row_sends_the_signals_save_sends(db):
    from django.db.models.signals import post_save, pre_save

    order, heard = an_order(), []

    def listen(signal, **kwargs):
        heard.append((signal, kwargs["update_fields"], kwargs.get("created")))

    pre_save.connect(listen, sender=Order, dispatch_uid="test-pre")
    post_save.connect(listen, sender=Order, dispatch_uid="test-post")
    try:
        update_row(order, ["status"])
    finally:
        pre_save.disconnect(dispatch_uid="test-pre", sender=Order)
        post_save.disconnect(dispatch_uid="test-post", sender=Order)
    assert heard == [(pre_save, {"status"}, None), (post_save, {"status"}, False)]


def test_update_row_of_a_row_gone_raises_as_save_does(db):
    from django.db import DatabaseError

    order = an_order()
    Order.objects.filter(pk=order.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        update_row(order, ["status"])


def test_update_row_refuses_an_unsaved_related_object(db):
    row = StripeEvent.objects.create(event_id="evt_unsaved", type="x", payload={})
    row.order = Order(email="b@example.com", currency="usd", amount_subtotal=1)
    with pytest.raises(ValueError, match="unsaved related object"):
        update_row(row, ["order"])
    assert StripeEvent.objects.get(pk=row.pk).order_id is None


def test_update_row_of_no_fields_writes_nothing_as_save_does(db):
    order = an_order()
    with CaptureQueriesContext(connection) as queries:
        update_row(order, [])
    assert len(queries) == 0


def test_update_row_names_a_field_once_however_often_it_is_given(db):
    order = an_order()
    order.status = Order.Status.PAID
    update_row(order, ["status", "updated_at", "updated_at"])
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_update_row_refuses_an_append_only_row(db):
    event = an_event(an_order())
    insert_row(event)
    event.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        update_row(event, ["message"])
    assert OrderEvent.objects.get().message == "paid"


@pytest.mark.parametrize("names", [["id"], ["no_such_field"]])
def test_update_row_refuses_what_save_refuses(db, names):
    from django.core.exceptions import FieldDoesNotExist

    with pytest.raises((ValueError, FieldDoesNotExist)):
        update_row(an_order(), names)


def test_an_order_saves_only_its_changes_and_nothing_when_none(db):
    order = Order.objects.get(pk=an_order().pk)
    with CaptureQueriesContext(connection) as queries:
        order.save_changes()
        order.status = Order.Status.PAID
        order.save_changes()
        order.save_changes()
    [update] = [q["sql"] for q in queries]
    assert update.startswith('UPDATE "commerce_order" SET "status" = ') and "email" not in update


def an_event(order, **fields):
    return OrderEvent(order=order, source="webhook", to_status="paid", message="paid", **fields)


def test_insert_row_inserts_the_row_and_gives_it_its_key(db):
    order = an_order()
    event = an_event(order)
    insert_row(event)
    stored = OrderEvent.objects.get(pk=event.pk)
    assert (stored.order_id, stored.message, stored.created_at) == (
        order.pk,
        "paid",
        event.created_at,
    )
    assert not event._state.adding


def test_insert_row_sends_the_signals_save_sends(db):
    from django.db.models.signals import post_save, pre_save

    heard = []

    def listen(signal, instance, **kwargs):
        heard.append((signal, instance.pk is None, kwargs.get("created")))

    pre_save.connect(listen, sender=OrderEvent, dispatch_uid="test-pre")
    post_save.connect(listen, sender=OrderEvent, dispatch_uid="test-post")
    try:
        insert_row(an_event(an_order()))
    finally:
        pre_save.disconnect(dispatch_uid="test-pre", sender=OrderEvent)
        post_save.disconnect(dispatch_uid="test-post", sender=OrderEvent)
    assert heard == [(pre_save, True, None), (post_save, False, True)]


def test_insert_row_refuses_a_row_that_has_a_key(db):
    event = an_event(an_order())
    insert_row(event)
    with pytest.raises(ValueError, match="primary key"):
        insert_row(event)
    assert OrderEvent.objects.count() == 1


def test_insert_row_refuses_an_unsaved_related_object(db):
    unsaved = Order(email="b@example.com", currency="usd", amount_subtotal=1)
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_row(an_event(unsaved))
    assert OrderEvent.objects.count() == 0


@on_postgresql
def test_prepared_inserts_keep_their_values_whatever_their_types(course, django_user_model):
    """A prepared INSERT run again with a NULL where an id was, and an id past int4."""
    user = django_user_model.objects.create_user("p", "p@example.com", "pw")
    rows = []
    for n in range(8):
        event = StripeEvent(event_id=f"evt_{n}", type="x", payload={"n": n, "s": "50%"})
        event.order_id = None if n % 2 else an_order().pk
        [pk] = insert_new([event])
        rows.append((pk, event.order_id))
    for pk, order_id in rows:
        stored = StripeEvent.objects.get(pk=pk)
        assert stored.order_id == order_id and stored.payload["s"] == "50%"
    assert Entitlement.objects.filter(user=user).count() == 0
