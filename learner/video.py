"""Video progress: the player reports where the learner is; the furthest point watched only
moves forward, and watching enough of every video in a lesson completes it."""

import math

from django.conf import settings
from django.db import transaction

from learner import progress
from learner.models import LessonProgress, VideoProgress

LONGEST = 24 * 3600  # seconds; a lesson video longer than a day is not a lesson video
SLACK = 1.0  # players report a position a little past the duration at the end


class InvalidProgress(Exception):  # noqa: N818 - reads as a reason
    pass


def video_ids(lesson):
    """The Stream videos of a lesson, in page order."""
    return [c.value["video_uid"] for c in lesson.body if c.block_type == "stream_video"]


def _seconds(data, name):
    try:
        value = float(data.get(name, ""))
    except (TypeError, ValueError):
        raise InvalidProgress(f"{name} is not a number of seconds.") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidProgress(f"{name} is out of range.")
    return value


def parse(lesson, data):
    """(video id, position, furthest, duration) from a report, or InvalidProgress."""
    video_id = data.get("video", "")
    if video_id not in video_ids(lesson):
        raise InvalidProgress("This lesson has no such video.")
    duration = _seconds(data, "duration")
    if not 0 < duration <= LONGEST:
        raise InvalidProgress("duration is out of range.")
    position, furthest = _seconds(data, "position"), _seconds(data, "furthest")
    if position > duration + SLACK or furthest > duration + SLACK:
        raise InvalidProgress("The position is past the end of the video.")
    return video_id, min(position, duration), min(furthest, duration), duration


def record(user, lesson, course, video_id, position, furthest, duration):
    """Keep the report; returns (the lesson's percent watched, whether it is now complete)."""
    with transaction.atomic():
        row, _ = VideoProgress.objects.get_or_create(
            user=user, lesson=lesson, video_id=video_id, defaults={"duration": duration}
        )
        row = VideoProgress.objects.select_for_update().get(pk=row.pk)
        row.duration = duration
        row.position = position
        row.furthest = min(max(row.furthest, furthest), duration)
        row.save()
        watched = {
            r.video_id: r.percent for r in VideoProgress.objects.filter(user=user, lesson=lesson)
        }
        ids = video_ids(lesson)
        percent = sum(watched.get(v, 0) for v in ids) // len(ids)
        lesson_row, _ = LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course}
        )
        if percent > lesson_row.watched_percent:
            LessonProgress.objects.filter(pk=lesson_row.pk).update(watched_percent=percent)
        enough = all(watched.get(v, 0) >= settings.VIDEO_COMPLETE_PERCENT for v in ids)
        completed = lesson_row.status == LessonProgress.Status.COMPLETED
        if enough and not completed:
            try:
                progress.mark_complete(user, lesson, course)
                completed = True
            except progress.QuizNotPassed:
                pass
    return max(percent, lesson_row.watched_percent), completed


def resume_points(user, lesson):
    """{video id: (position, furthest, duration)} for one learner and lesson, in one query."""
    if not user.is_authenticated:
        return {}
    return {
        r.video_id: (r.position, r.furthest, r.duration)
        for r in VideoProgress.objects.filter(user=user, lesson=lesson)
    }
