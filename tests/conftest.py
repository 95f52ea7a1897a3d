"""Plain fixtures for the page tree: home → catalog → course → module → lessons."""

import copy

import pytest
from django.contrib.contenttypes.models import ContentType
from wagtail.models import Locale, Page, Site

from base.models import HomePage
from courses.models import CourseIndexPage, CoursePage, LessonPage, ModulePage


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counters and cached answers never leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def publish(parent, page):
    parent.add_child(instance=page)
    page.save_revision().publish()
    page.refresh_from_db()
    return page


@pytest.fixture
def home(db):
    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(
        instance=Page(
            title="Root", slug="root", content_type=ContentType.objects.get_for_model(Page)
        )
    )
    home = publish(root, HomePage(title="Home", slug="home-test"))
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "localhost", "root_page": home, "port": 80}
    )
    return home


@pytest.fixture
def catalog(home):
    return publish(home, CourseIndexPage(title="Courses", slug="courses"))


def make_course(catalog, slug="python", price=4900, currency="usd", title=None, lessons=2):
    course = publish(
        catalog,
        CoursePage(
            title=title or slug.title(),
            slug=slug,
            summary=f"About {slug}",
            price_amount=price,
            price_currency=currency,
        ),
    )
    module = publish(course, ModulePage(title="Module one", slug="module-one"))
    for i in range(lessons):
        publish(
            module,
            LessonPage(
                title=f"Lesson {i + 1}",
                slug=f"lesson-{i + 1}",
                summary=f"Summary {i + 1}",
                is_free_preview=(i == 0),
                body=[{"type": "text", "value": f"<p>Secret body {slug} {i + 1}</p>"}],
            ),
        )
    return course


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


def on_postgres():
    from django.conf import settings

    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


postgres_only = pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL (DATABASE_URL)")


@pytest.fixture
def paid_lesson(course):
    return course.lessons().filter(is_free_preview=False).specific().first()


@pytest.fixture
def preview_lesson(course):
    return course.lessons().filter(is_free_preview=True).specific().first()


@pytest.fixture
def learner(django_user_model):
    return django_user_model.objects.create_user("learner", "learner@example.com", "pw")


def entitle(user, course, **fields):
    """An admin-granted entitlement: the shortest way to give a learner a course."""
    from commerce.models import Entitlement

    return Entitlement.objects.create(
        user=user, email=user.email, course=course, source=Entitlement.Source.ADMIN, **fields
    )


def wait_for(predicate, timeout=15):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


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
