from django.conf import settings
from django.db import models
from django.utils import timezone


class LessonProgress(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_progress"
    )
    lesson = models.ForeignKey("courses.LessonPage", on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey("courses.CoursePage", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    watched_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Of the lesson's videos, the share watched (furthest points)."
    )
    # {video id: [position, furthest, duration]}, a copy of VideoProgress the lesson page reads
    # with the rest of the learner's progress (no query of its own).
    videos = models.JSONField(default=dict, blank=True)
    # {quiz id: the latest attempt's score, total, passed, answers and results}, likewise.
    quizzes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "lesson"], name="one_progress_per_lesson"),
            models.CheckConstraint(
                condition=models.Q(watched_percent__lte=100), name="watched_percent_at_most_100"
            ),
        ]
        indexes = [models.Index(fields=["user", "course", "last_seen_at"])]

    def __str__(self):
        return f"{self.user_id} {self.lesson_id} {self.status}"


class CourseCompletion(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_completions"
    )
    course = models.ForeignKey("courses.CoursePage", on_delete=models.CASCADE, related_name="+")
    completed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="one_completion_per_course")
        ]

    def __str__(self):
        return f"{self.user_id} completed {self.course_id}"


class QuizAttempt(models.Model):
    """One graded submission of a lesson's quiz. Never changed afterwards: a retake is a new
    row. The form's one-time token makes a double submission one attempt."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts"
    )
    lesson = models.ForeignKey("courses.LessonPage", on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey("courses.CoursePage", on_delete=models.CASCADE, related_name="+")
    quiz_id = models.CharField(max_length=64, help_text="The quiz block's id in the lesson.")
    token = models.CharField(max_length=64)
    score = models.PositiveSmallIntegerField(help_text="Questions answered right.")
    total = models.PositiveSmallIntegerField()
    pass_mark = models.PositiveSmallIntegerField(help_text="Percent needed, when taken.")
    passed = models.BooleanField()
    answers = models.JSONField(help_text="{question id: [choice ids]} as submitted.")
    results = models.JSONField(help_text="{question id: answered right}.")
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "token"], name="one_attempt_per_form"),
            models.CheckConstraint(
                condition=models.Q(score__lte=models.F("total")), name="score_within_total"
            ),
        ]
        indexes = [models.Index(fields=["user", "lesson", "submitted_at"])]

    def __str__(self):
        return f"{self.user_id} {self.quiz_id} {self.score}/{self.total}"

    @property
    def percent(self):
        return round(100 * self.score / self.total) if self.total else 0


class Certificate(models.Model):
    """Proof that a learner completed a course: issued once (one per learner and course), kept
    when access ends, void when the money came back in full. Its code is public; the page it
    opens shows the name, the course and the date only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certificates"
    )
    course = models.ForeignKey("courses.CoursePage", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=150, help_text="As printed: the learner's name.")
    course_title = models.CharField(max_length=255, help_text="As printed, when issued.")
    issued_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="one_certificate_per_course")
        ]

    def __str__(self):
        return f"{self.code} ({self.course_title})"

    @property
    def is_void(self):
        return self.voided_at is not None


class VideoProgress(models.Model):
    """Where a learner is in one video of a lesson: the position to resume at and the
    furthest point watched, which only moves forward. Seconds."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_progress"
    )
    lesson = models.ForeignKey("courses.LessonPage", on_delete=models.CASCADE, related_name="+")
    video_id = models.CharField(max_length=64, help_text="The Stream video uid.")
    position = models.FloatField(default=0)
    furthest = models.FloatField(default=0)
    duration = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "lesson", "video_id"], name="one_video_progress_per_video"
            ),
            models.CheckConstraint(
                condition=models.Q(duration__gt=0)
                & models.Q(position__gte=0, position__lte=models.F("duration"))
                & models.Q(furthest__gte=0, furthest__lte=models.F("duration")),
                name="video_progress_within_duration",
            ),
        ]

    def __str__(self):
        return f"{self.user_id} {self.video_id} {self.furthest:.0f}/{self.duration:.0f}s"

    @property
    def percent(self):
        return min(100, int(100 * self.furthest / self.duration)) if self.duration else 0
