from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Content only: the course page tree. Knows nothing of money."""

    name = "courses"
