"""Video progress: where the learner is in a lesson's Stream video, the furthest point watched
(only forward), completion at the threshold, resume, and reports refused when out of bounds."""

import pytest
from django.test import Client
from django.urls import reverse

from courses.models import LessonPage
from learner.models import LessonProgress, VideoProgress
from tests.helpers import entitle, postgres_only, run_together

UID = "a" * 32
OTHER_UID = "b" * 32


@pytest.fixture
def video_lesson(paid_lesson):
    paid_lesson.body = [
        {"type": "text", "value": "<p>Secret body</p>"},
        {"type": "stream_video", "value": {"video_uid": UID, "caption": "Watch this"}},
    ]
    paid_lesson.save_revision().publish()
    return LessonPage.objects.get(pk=paid_lesson.pk)


@pytest.fixture
def student(learner, course, client):
    entitle(learner, course)
    client.force_login(learner)
    return client


def report(client, lesson, video=UID, position=10, furthest=10, duration=100):
    return client.post(
        reverse("video_progress", args=[lesson.pk]),
        {"video": video, "position": position, "furthest": furthest, "duration": duration},
    )


def test_a_report_keeps_the_position_and_the_furthest_point(student, video_lesson, learner):
    response = report(student, video_lesson, position=30, furthest=42)
    assert response.status_code == 200 and response.json() == {"percent": 42, "completed": False}
    row = VideoProgress.objects.get()
    assert (row.user, row.video_id, row.position, row.furthest) == (learner, UID, 30, 42)


def test_the_furthest_point_never_moves_back(student, video_lesson):
    report(student, video_lesson, position=60, furthest=60)
    report(student, video_lesson, position=5, furthest=5)  # went back to rewatch the start
    row = VideoProgress.objects.get()
    assert (row.position, row.furthest) == (5, 60)


def test_watching_up_to_the_threshold_completes_the_lesson(student, video_lesson, learner):
    report(student, video_lesson, position=89.9, furthest=89.9)
    assert LessonProgress.objects.get(user=learner).status == "in_progress"
    response = report(student, video_lesson, position=90, furthest=90)
    assert response.json() == {"percent": 90, "completed": True}
    assert LessonProgress.objects.get(user=learner).status == "completed"


def test_the_threshold_is_a_setting(student, video_lesson, learner, settings):
    settings.VIDEO_COMPLETE_PERCENT = 50
    assert report(student, video_lesson, furthest=50).json()["completed"] is True


def test_a_required_quiz_still_holds_back_completion(student, video_lesson, learner):
    from tests.test_quizzes import QUIZ

    video_lesson.body = list(video_lesson.body.raw_data) + [{"type": "quiz", "value": QUIZ}]
    video_lesson.save_revision().publish()
    response = report(student, video_lesson, position=100, furthest=100)
    assert response.status_code == 200 and response.json()["completed"] is False
    assert LessonProgress.objects.get(user=learner).status == "in_progress"


def test_reopening_the_lesson_resumes_where_the_learner_was(student, video_lesson):
    report(student, video_lesson, position=37.5, furthest=50)
    html = student.get(video_lesson.url).content.decode()
    assert 'data-resume="37.5"' in html and 'data-furthest="50.0"' in html
    assert "50% watched" in html


def test_the_outline_and_my_courses_show_the_share_watched(student, video_lesson):
    student.get(video_lesson.url)
    report(student, video_lesson, position=45, furthest=45)
    assert "video 45% watched" in student.get(reverse("my_courses")).content.decode()
    other = video_lesson.course().lessons().filter(is_free_preview=True).first()
    assert "45% watched" in student.get(other.url).content.decode()


def test_the_offline_stand_in_plays_a_local_file(student, video_lesson, settings):
    settings.STREAM_LOCAL_VIDEO = "/static/demo/lesson-video.webm"
    settings.STREAM_CUSTOMER_CODE = ""
    html = student.get(video_lesson.url).content.decode()
    assert '<video src="/static/demo/lesson-video.webm"' in html and "<iframe" not in html
    assert "js/video-progress.js" in html


def test_with_stream_configured_the_stream_player_is_used(student, video_lesson, settings):
    settings.STREAM_LOCAL_VIDEO = "/static/demo/lesson-video.webm"
    settings.STREAM_CUSTOMER_CODE = "abc123"
    html = student.get(video_lesson.url).content.decode()
    assert "customer-abc123.cloudflarestream.com" in html and "<video" not in html


# --- refused, nothing stored ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"position": -1}, "out of range"),
        ({"furthest": "nan"}, "out of range"),
        ({"position": "inf"}, "out of range"),
        ({"position": "ten"}, "not a number"),
        ({"furthest": 102}, "past the end"),
        ({"duration": 0}, "duration is out of range"),
        ({"duration": 90000}, "duration is out of range"),
        ({"video": OTHER_UID}, "no such video"),
        ({"video": ""}, "no such video"),
    ],
)
def test_a_report_out_of_bounds_is_refused_and_changes_nothing(
    student, video_lesson, fields, message
):
    response = report(student, video_lesson, **fields)
    assert response.status_code == 400 and message in response.json()["error"]
    assert not VideoProgress.objects.exists()


def test_a_video_of_another_lesson_is_refused(student, video_lesson, course):
    other = course.lessons().filter(is_free_preview=True).specific().first()
    assert report(student, other).status_code == 400
    assert not VideoProgress.objects.exists()


def test_a_learner_without_the_course_is_refused(client, video_lesson, django_user_model):
    client.force_login(django_user_model.objects.create_user("s", "s@example.com", "pw"))
    response = report(client, video_lesson)
    assert response.status_code == 403 and b"Secret" not in response.content
    assert not VideoProgress.objects.exists()


def test_a_visitor_is_sent_to_log_in(client, video_lesson):
    response = report(client, video_lesson)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_unknown_lesson_is_404(student, db):
    response = student.post(reverse("video_progress", args=[999999]), {"video": UID})
    assert response.status_code == 404


def test_a_report_without_the_csrf_token_is_refused(learner, course, video_lesson):
    entitle(learner, course)
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    assert report(client, video_lesson).status_code == 403
    assert not VideoProgress.objects.exists()


def test_progress_is_not_read_by_get(student, video_lesson):
    assert student.get(reverse("video_progress", args=[video_lesson.pk])).status_code == 405


def test_no_player_and_no_progress_for_a_learner_without_access(client, video_lesson, learner):
    client.force_login(learner)
    html = client.get(video_lesson.url).content.decode()
    assert "data-video-progress" not in html and UID not in html


@postgres_only
def test_reports_at_the_same_instant_keep_the_furthest_point(
    transactional_db, learner, course, video_lesson
):
    entitle(learner, course)

    def send(furthest):
        def call():
            client = Client()
            client.force_login(learner)
            return report(client, video_lesson, position=furthest, furthest=furthest).status_code

        return call

    assert run_together(send(70), send(30), send(50)) == [200, 200, 200]
    assert VideoProgress.objects.get().furthest == 70
    assert LessonProgress.objects.get().watched_percent == 70


def test_a_report_of_another_length_is_refused_and_moves_nothing(student, video_lesson):
    report(student, video_lesson, position=500, furthest=500, duration=600)
    response = report(student, video_lesson, position=5, furthest=5, duration=10)
    assert response.status_code == 400 and "duration" in response.json()["error"]
    row = VideoProgress.objects.get()
    assert (row.furthest, row.duration) == (500, 600)


def test_a_player_s_small_drift_in_length_is_accepted(student, video_lesson):
    report(student, video_lesson, position=10, furthest=10, duration=100)
    assert (
        report(student, video_lesson, position=20, furthest=20, duration=100.4).status_code == 200
    )


def test_progress_in_a_lesson_made_private_is_refused(student, video_lesson):
    from django.contrib.auth.models import Group
    from wagtail.models import PageViewRestriction

    restriction = PageViewRestriction.objects.create(
        page=video_lesson, restriction_type=PageViewRestriction.GROUPS
    )
    restriction.groups.add(Group.objects.create(name="Insiders"))
    assert report(student, video_lesson).status_code == 403
    assert not VideoProgress.objects.exists()
