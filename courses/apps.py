from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Content only: the course page tree. Knows nothing of money."""

    name = "courses"

    def ready(self):
        from courses import caching, checks  # noqa: F401 - checks registers the system checks

        caching.connect()
