"""Plain fixtures for the page tree: home → catalog → course → module → lessons."""

import copy

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from wagtail.models import Locale, Page, Site

from base.models import HomePage
from courses.models import CourseIndexPage
from tests.helpers import (
    deliver,
    events,
    make_course,
    on_postgres,
    publish,
    start,
    without_index_updates,
)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counters and cached answers never leak from one test into the next."""
    from django.core.cache import cache

    from base import caching

    cache.clear()
    caching.end_request()  # a streamed response never read leaves its request's reads behind
    yield
    cache.clear()
    caching.end_request()


@pytest.fixture
def home(db):
    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(
        instance=Page(
            title="Root", slug="root", content_type=ContentType.objects.get_for_model(Page)
        )
    )
    with without_index_updates():
        home = publish(root, HomePage(title="Home", slug="home-test"))
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "localhost", "root_page": home, "port": 80}
    )
    return home


@pytest.fixture
def catalog(home):
    with without_index_updates():
        return publish(home, CourseIndexPage(title="Courses", slug="courses"))


@pytest.fixture
def course(catalog):
    return make_course(catalog)


@pytest.fixture
def free_course(catalog):
    return make_course(catalog, slug="free-git", price=0)


@pytest.fixture
def lessons(course):
    return list(course.lessons().specific())


@pytest.fixture
def emulator(settings):
    """The local Stripe emulator on a loopback port; events are kept, not delivered."""
    from devtools.stripe_emulator import EmulatorServer

    server = EmulatorServer(0).start()
    settings.STRIPE_API_BASE = server.url
    yield server.emulator
    server.stop()


@pytest.fixture
def paid_lesson(course):
    return course.lessons().filter(is_free_preview=False).specific().first()


@pytest.fixture
def preview_lesson(course):
    return course.lessons().filter(is_free_preview=True).specific().first()


@pytest.fixture
def learner(django_user_model):
    return django_user_model.objects.create_user("learner", "learner@example.com", "pw")


@pytest.fixture
def live_stripe(live_server, settings):
    """The emulator delivering signed webhooks to the live test server over HTTP."""
    from devtools.stripe_emulator import EmulatorServer

    settings.SITE_URL = live_server.url
    server = EmulatorServer(
        0,
        webhook_url=f"{live_server.url}/webhooks/stripe/",
        webhook_secret="whsec_test_secret",
        # SQLite's shared in-memory test database cannot take the webhook and the success page
        # writing at once; PostgreSQL gets Stripe's real, asynchronous delivery.
        synchronous_delivery=not on_postgres(),
    ).start()
    settings.STRIPE_API_BASE = server.url
    # What config.settings derives from STRIPE_API_BASE at start-up: the checkout form may
    # redirect to the emulator's hosted page.
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"].append(server.url)
    settings.CONTENT_SECURITY_POLICY = policy
    yield server
    server.stop()


@pytest.fixture
def superuser_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    client.user = admin
    return client


@pytest.fixture
def editor_client(client, django_user_model):
    editor = django_user_model.objects.create_user("ed", "ed@example.com", "pw")
    editors = Group.objects.create(name="Course editors")
    editors.permissions.add(Permission.objects.get(codename="access_admin"))
    editor.groups.add(editors)
    client.force_login(editor)
    client.user = editor
    return client


@pytest.fixture
def sold(course, emulator):
    from django.test import Client

    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    order.refresh_from_db()
    return order
