"""Signal receivers, connected in CommerceConfig.ready()."""

from django.db.models.signals import post_save
from django.dispatch import receiver
from wagtail.models import Revision


@receiver(post_save, sender=Revision, dispatch_uid="commerce.record_lesson_documents")
def record_lesson_documents(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from commerce.access.documents import record_revision

        record_revision(instance)
