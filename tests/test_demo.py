"""`make demo`: the runner stops every process it started, and the seeded catalogue looks real."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, TestCase, override_settings
from django.utils.html import strip_tags
from PIL import Image
from wagtail.models import Page

from courses.management.commands.seed_demo import COURSES, cover_png
from courses.models import CoursePage, LessonPage, ModulePage

ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN_SECONDS = 10

# --- the runner: Ctrl-C stops the whole process tree ----------------------------------------

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_stat(pid):
    """(ppid, start time) of a live process, or None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[19]


def descendants(root):
    """Every live process below root, as {pid: start time} (the start time tells reused pids)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def still_running(processes):
    return {pid for pid, started in processes.items() if (s := proc_stat(pid)) and s[1] == started}


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def answers(url):
    """True once a server answers at url, whatever its status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_until(condition, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory):
    """A throwaway SQLite database with every migration applied, made once for this module."""
    path = tmp_path_factory.mktemp("demo-db") / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=demo_env(path, path.parent),
        check=True,
        timeout=300,
    )
    return path


def demo_env(database, workdir):
    """The demo's own settings on the given database; nothing from the test settings leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{database}",
        MEDIA_ROOT=str(workdir / "media"),
        PRIVATE_MEDIA_ROOT=str(workdir / "private-media"),
        Q_WORKERS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def running_demo(migrated_database, tmp_path):
    """`python -m devtools.demo` as a terminal's foreground job (a process group of its own),
    on free ports, once the site, the Stripe emulator and the task cluster are all up."""
    database = tmp_path / "db.sqlite3"
    shutil.copy(migrated_database, database)
    port, stripe_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--port", str(port)]
        + ["--stripe-port", str(stripe_port)],
        cwd=ROOT,
        env=demo_env(database, tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = {}

    def everything_up():
        started.update(descendants(demo.pid))
        cluster = [pid for pid in started if "qcluster" in cmdline(pid)]
        # qcluster: main, sentinel, monitor, pusher and two workers
        return (
            len(cluster) >= 6
            and answers(f"http://127.0.0.1:{port}/healthz")
            and answers(f"http://127.0.0.1:{stripe_port}/")
        )

    try:
        if not wait_until(everything_up, timeout=90, interval=0.5):
            pytest.fail("the demo did not start:\n" + (tmp_path / "demo.log").read_text())
        time.sleep(1)  # let late children (the cluster's workers) settle, then count them all
        started.update(descendants(demo.pid))
        yield demo, started
    finally:
        # Never leave anything behind, even when the test failed: only what this demo started.
        for pid in still_running(started):
            os.kill(pid, signal.SIGKILL)
        if demo.poll() is None:
            demo.kill()
        demo.wait(timeout=10)
        log.close()


@needs_proc
def test_ctrl_c_stops_the_whole_demo_within_ten_seconds(running_demo):
    demo, started = running_demo
    assert len(started) >= 9  # emulator, runserver and its reloader, the qcluster tree
    os.killpg(demo.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_sigint_to_the_runner_alone_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    demo.send_signal(signal.SIGINT)
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_sigterm_to_the_runner_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    demo.terminate()
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_ctrl_c_pressed_twice_still_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    os.killpg(demo.pid, signal.SIGINT)
    time.sleep(0.3)  # the impatient second press, while the demo is stopping
    os.killpg(demo.pid, signal.SIGINT)
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


# --- the seeded catalogue -------------------------------------------------------------------

# The languages a learner expects in each course's code samples.
COURSE_LANGUAGES = {
    "python-foundations": {"python", "bash"},
    "django-in-production": {"python", "bash"},
    "sql-essentials": {"sql"},
    "git-for-everyone": {"bash"},
}


def code_blocks(course):
    lessons = LessonPage.objects.descendant_of(course).specific()
    return [
        block.value for lesson in lessons for block in lesson.body if block.block_type == "code"
    ]


def distinct_colours(image):
    return len(image.convert("RGB").getcolors(maxcolors=1 << 20))


class DemoContentTests(TestCase):
    """The demo catalogue, seeded once for the class (bakerydemo's setUpTestData): these
    tests only read it."""

    @classmethod
    def setUpTestData(cls):
        call_command("seed_demo", verbosity=0)

    def test_every_demo_course_has_code_samples_in_its_own_languages(self):
        courses = CoursePage.objects.all()
        assert {course.slug for course in courses} == set(COURSE_LANGUAGES)
        for course in courses:
            languages = {block["language"] for block in code_blocks(course)}
            assert languages, course.slug
            assert languages <= COURSE_LANGUAGES[course.slug], course.slug

    def test_the_sql_course_has_no_python_in_it(self):
        blocks = code_blocks(CoursePage.objects.get(slug="sql-essentials"))
        assert {block["language"] for block in blocks} == {"sql"}
        for block in blocks:
            assert "def " not in block["code"] and "import " not in block["code"]

    def test_every_demo_lesson_has_a_code_sample_of_its_own(self):
        samples = [
            block["code"] for course in CoursePage.objects.all() for block in code_blocks(course)
        ]
        assert len(samples) == LessonPage.objects.count()
        assert len(set(samples)) == len(samples)

    def test_demo_course_description_does_not_repeat_its_summary(self):
        for course in CoursePage.objects.all():
            description = strip_tags(str(course.description))
            assert description.strip(), course.slug
            assert course.summary not in description, course.slug

    def test_demo_covers_are_pictures_not_flat_colour_blocks(self):
        for course in CoursePage.objects.select_related("cover_image"):
            with course.cover_image.file.open() as file, Image.open(file) as cover:
                assert cover.size == (960, 540), course.slug
                assert distinct_colours(cover) > 1000, course.slug

    def test_each_demo_course_has_a_cover_of_its_own(self):
        covers = set()
        for course in CoursePage.objects.select_related("cover_image"):
            with course.cover_image.file.open() as file:
                covers.add(file.read())
        assert len(covers) == len(COURSES)

    def test_every_page_links_the_favicon(self):
        response = self.client.get("/")
        assert f'<link rel="icon" href="{static("favicon.svg")}"'.encode() in response.content

    def test_every_demo_page_renders(self):
        pages = Page.objects.live().filter(depth__gt=1).specific()
        assert pages.count() > 20
        for page in pages:
            if isinstance(page, LessonPage) and not page.is_free_preview:
                continue  # paid lessons are gated; rendered for entitled learners in the gate tests
            response = self.client.get(page.url)
            assert response.status_code == 200, page.url

    def test_demo_catalog_has_a_free_course_and_free_previews(self):
        courses = CoursePage.objects.live()
        assert courses.count() >= 3
        assert courses.filter(price_amount=0).exists()
        assert LessonPage.objects.filter(is_free_preview=True).exists()
        assert ModulePage.objects.count() >= 6

    def test_seed_demo_twice_changes_nothing(self):
        from wagtail.images.models import Image
        from wagtail.models import Revision

        from base.models import User

        before = (
            Page.objects.count(),
            Revision.objects.count(),
            Image.objects.count(),
            User.objects.count(),
        )
        call_command("seed_demo", verbosity=0)
        after = (
            Page.objects.count(),
            Revision.objects.count(),
            Image.objects.count(),
            User.objects.count(),
        )
        assert before == after


def test_demo_covers_are_drawn_the_same_every_time():
    for spec in COURSES:
        assert cover_png(spec) == cover_png(spec), spec["slug"]


def test_the_favicon_is_served_as_an_svg_image():
    assert finders.find("favicon.svg")
    # Serve from the static folders, as runserver and collectstatic'ed WhiteNoise both do.
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        response = Client().get(static("favicon.svg"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(response.streaming_content)
