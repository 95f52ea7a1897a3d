"""base.db: the statements the ORM does not offer, on SQLite and PostgreSQL alike."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Value
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from base.db import Prepared, insert_new
from commerce.models import Entitlement
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
