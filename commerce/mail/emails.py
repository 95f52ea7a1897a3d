"""Every e-mail to a buyer goes out through here: a plain-text and an HTML part from
templates in the site's look, signed with SITE_NAME, links built on SITE_URL."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def message_id(key):
    """A Message-ID fixed by what the e-mail is about. The send is committed after the mail
    server has the message: a worker dying in between sends it again on retry, and the same
    Message-ID makes that the same message, which mail systems show once."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in key)
    return f"<{safe}@{host}>"


def send(*, to, subject, template, context, key=None):
    """Render ``<template>.txt`` and ``<template>.html`` and send them as one message; ``key``
    names what it is about (see message_id)."""
    context = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        to=[to],
        headers={"Message-ID": message_id(key)} if key else None,
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    message.send()
