"""The one lock a learner's progress writes share."""

from django.contrib.auth import get_user_model


def take_turn(user):
    """One learner's progress writes take turns on their account row: two last lessons
    completed at once would each count the other as not done yet, and the course would never
    complete; a refund voiding a certificate waits for one being issued (learner.signals)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
