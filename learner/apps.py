from django.apps import AppConfig


class LearnerConfig(AppConfig):
    """The buyer's world: my courses, progress, claiming guest purchases."""

    name = "learner"
