"""Video progress: the player reports where the learner is; the furthest point watched only
moves forward, and watching enough of every video in a lesson completes it."""

import math

from django.conf import settings
from django.db import transaction

from learner import progress
from learner.locks import take_turn
from learner.models import LessonProgress, VideoProgress

LONGEST = 24 * 3600  # seconds; a lesson video longer than a day is not a lesson video
SLACK = 1.0  # players report a position a little past the duration at the end
DURATION_DRIFT = 1.0  # seconds (or 2 %) a player's idea of the length may move by


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
        take_turn(user)
        row, _ = VideoProgress.objects.get_or_create(
            user=user, lesson=lesson, video_id=video_id, defaults={"duration": duration}
        )
        # A video's length is known from its first report: a report of another length is
        # not about this video (and would otherwise pull the furthest point back or forward).
        if abs(duration - row.duration) > max(DURATION_DRIFT, row.duration / 50):
            raise InvalidProgress("The duration does not match this video's.")
        row.position = min(position, row.duration)
        row.furthest = min(max(row.furthest, furthest), row.duration)
        row.save()
        rows = {r.video_id: r for r in VideoProgress.objects.filter(user=user, lesson=lesson)}
        ids = video_ids(lesson)
        percent = sum(rows[v].percent if v in rows else 0 for v in ids) // len(ids)
        lesson_row, _ = LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course}
        )
        lesson_row.watched_percent = max(lesson_row.watched_percent, percent)
        lesson_row.videos = {v: [r.position, r.furthest, r.duration] for v, r in rows.items()}
        lesson_row.save(update_fields=["watched_percent", "videos"])
        enough = all(v in rows and rows[v].percent >= settings.VIDEO_COMPLETE_PERCENT for v in ids)
        completed = lesson_row.status == LessonProgress.Status.COMPLETED
        if enough and not completed:
            try:
                progress.mark_complete(user, lesson, course)
                completed = True
            except progress.QuizNotPassed:
                pass
    return lesson_row.watched_percent, completed


def resume_points(videos):
    """{video id: (position, furthest, duration)} from a LessonProgress row's copy."""
    return {video_id: tuple(point) for video_id, point in (videos or {}).items()}
