from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Content only: the course page tree. Knows nothing of money."""

    name = "courses"

    def ready(self):
        from courses import checks  # noqa: F401 - registers the system checks
