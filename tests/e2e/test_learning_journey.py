"""Learning in a real browser: watch a lesson's video to completion and resume it, pass a quiz,
download a certificate and check it on its public page."""

import io

import pytest
from pypdf import PdfReader

from courses.models import LessonPage
from learner.models import Certificate, LessonProgress, VideoProgress
from tests.helpers import entitle, log_in, wait_for
from tests.test_quizzes import QUIZ

pytestmark = pytest.mark.django_db(transaction=True)

UID = "c" * 32


@pytest.fixture
def learner_in(live_server, course, django_user_model, settings):
    settings.SITE_URL = live_server.url
    settings.STREAM_LOCAL_VIDEO = "/static/demo/lesson-video.webm"
    settings.STREAM_CUSTOMER_CODE = ""
    user = django_user_model.objects.create_user(
        "watcher", "watcher@example.com", "pw-watch-1", first_name="Grace", last_name="Hopper"
    )
    entitle(user, course)
    return user


def video(page, script):
    """Evaluated in the page's own world: the site's CSP forbids Playwright's string eval."""
    return page.eval_on_selector("video", script)


def paid_lesson_with(course, *blocks):
    lesson = course.lessons().filter(is_free_preview=False).specific().first()
    lesson.body = [{"type": "text", "value": "<p>Lesson text.</p>"}, *blocks]
    lesson.save_revision().publish()
    return LessonPage.objects.get(pk=lesson.pk)


@pytest.fixture
def served_like_production(settings, learner_in):
    """The site with WhiteNoise answering /static/, as `make demo` and production serve it: it
    answers Range requests, without which a browser cannot seek in a video (the test server's
    own static handler does not)."""
    from django.db import connections
    from django.test.testcases import LiveServerThread

    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    shared = {c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()}
    for connection in shared.values():
        connection.inc_thread_sharing()
    thread = LiveServerThread("127.0.0.1", lambda app: app, connections_override=shared)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    base = f"http://127.0.0.1:{thread.port}"
    settings.SITE_URL = base
    yield base
    thread.terminate()
    for connection in shared.values():
        connection.dec_thread_sharing()


def test_a_learner_watches_a_video_to_completion_and_resumes_it(
    page, served_like_production, course, learner_in
):
    base = served_like_production
    lesson = paid_lesson_with(
        course, {"type": "stream_video", "value": {"video_uid": UID, "caption": ""}}
    )
    log_in(page, base, learner_in, "pw-watch-1")
    page.goto(base + lesson.url)
    assert wait_for(lambda: video(page, "v => v.readyState >= 1"))
    # Played through, four times as fast as it was recorded: the 20 s file takes about 5 s.
    page.eval_on_selector("video", "v => { v.muted = true; v.playbackRate = 4; return v.play(); }")
    assert wait_for(lambda: video(page, "v => v.ended"), timeout=30)
    assert wait_for(
        lambda: LessonProgress.objects.filter(
            user=learner_in, lesson=lesson, status="completed"
        ).exists()
    )
    assert VideoProgress.objects.get(user=learner_in).furthest >= 18

    # Back to the sixth second, a moment of play, and a pause: the place to come back to.
    # (Playing an ended video starts it over, so the seek comes once it plays.)
    video(
        page,
        "v => { v.playbackRate = 1; return v.play().then(() => { v.currentTime = 6; return"
        " new Promise(r => setTimeout(() => { v.pause(); r(); }, 500)); }); }",
    )
    assert wait_for(lambda: 6 <= VideoProgress.objects.get(user=learner_in).position < 8)
    page.reload()
    assert wait_for(lambda: video(page, "v => v.currentTime >= 6"))
    assert 6 <= page.eval_on_selector("video", "v => v.currentTime") < 8
    assert "100% watched" in page.inner_text(".video-progress")


def test_a_learner_passes_a_required_quiz_then_completes_the_lesson(
    page, live_server, course, learner_in
):
    lesson = paid_lesson_with(course, {"type": "quiz", "value": QUIZ})
    log_in(page, live_server.url, learner_in, "pw-watch-1")
    page.goto(live_server.url + lesson.url)
    assert "correct" not in page.content().lower()
    page.click("text=Mark complete")
    page.wait_for_selector("text=to complete this lesson")
    page.check("label:has-text('One') input")  # wrong
    page.check("label:has-text('list') input")  # wrong
    page.click("text=Submit answers")
    page.wait_for_selector("text=not passed yet")
    page.check("label:has-text('Two') input")
    page.uncheck("label:has-text('list') input")
    page.check("label:has-text('tuple') input")
    page.check("label:has-text('str') input")
    page.click("text=Try again")
    page.wait_for_selector("text=2 of 2 right (100%)")
    assert "len counts the items" in page.content()
    page.click("text=Mark complete")
    assert wait_for(
        lambda: LessonProgress.objects.filter(
            user=learner_in, lesson=lesson, status="completed"
        ).exists()
    )


def test_a_learner_downloads_a_certificate_and_anyone_can_check_it(
    page, live_server, course, learner_in, browser
):
    log_in(page, live_server.url, learner_in, "pw-watch-1")
    for lesson in course.lessons().specific():
        page.goto(live_server.url + lesson.url)
        page.click("text=Mark complete")
        page.wait_for_selector("text=marked complete")
    certificate = Certificate.objects.get(user=learner_in)
    page.goto(f"{live_server.url}/my-courses/")
    with page.expect_download() as download:
        page.click("text=Download certificate (PDF)")
    pdf = download.value.path().read_bytes()
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Grace Hopper" in text and course.title in text and certificate.code in text

    stranger = browser.new_context()
    public = stranger.new_page()
    public.goto(f"{live_server.url}/certificates/{certificate.code}/")
    assert "Valid" in public.content() and "Grace Hopper" in public.content()
    assert "watcher@example.com" not in public.content()
    stranger.close()
