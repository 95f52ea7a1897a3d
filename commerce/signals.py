"""Signal receivers, connected in CommerceConfig.ready()."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.models import Revision


@receiver(post_save, sender=Revision, dispatch_uid="commerce.record_lesson_documents")
def record_lesson_documents(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from commerce.access.documents import record_revision

        record_revision(instance)


def _plans_changed(sender, **kwargs):
    """Course pages list the plans that include them (memberships.plans_including)."""
    from base import caching

    caching.bump()


for _model in ("MembershipPlan", "PlanCourse", "PlanPrice"):
    post_save.connect(_plans_changed, sender=f"commerce.{_model}", dispatch_uid=f"plans-{_model}")
    post_delete.connect(
        _plans_changed, sender=f"commerce.{_model}", dispatch_uid=f"plans-{_model}-deleted"
    )
