"""Signed, short-lived delivery of private lesson files.

On R2/S3 the answer is a presigned URL (SigV4, ``SIGNED_URL_TTL`` seconds, attachment
disposition). On local storage the same contract is kept with Django's signing: a link to this
site that expires as fast and streams the file itself.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

from base.ratelimit import client_ip
from commerce.models import DownloadEvent

SALT = "commerce.download"


def is_remote(storage):
    return hasattr(storage, "bucket_name")


def disposition(resource):
    safe = resource.filename.replace('"', "").replace("\\", "")
    return f'attachment; filename="{safe}"'


def record(request, resource, lesson, course):
    return DownloadEvent.objects.create(
        user=request.user if request.user.is_authenticated else None,
        resource=resource,
        file_name=resource.file.name[:300],
        lesson=lesson,
        course=course,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


def signed_url(resource):
    """Where the learner's browser fetches the file; valid for SIGNED_URL_TTL seconds."""
    storage = resource.file.storage
    if is_remote(storage):
        return storage.url(
            resource.file.name,
            parameters={"ResponseContentDisposition": disposition(resource)},
            expire=settings.SIGNED_URL_TTL,
        )
    token = signing.dumps({"r": resource.pk}, salt=SALT, compress=True)
    return reverse("download_local", args=[token])


def read_local_token(token):
    """The resource id a local link names; raises signing.BadSignature when forged/expired."""
    return signing.loads(token, salt=SALT, max_age=settings.SIGNED_URL_TTL)["r"]
