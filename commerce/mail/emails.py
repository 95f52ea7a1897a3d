"""Every e-mail to a buyer goes out through here: a plain-text and an HTML part from
templates in the site's look, signed with SITE_NAME, links built on SITE_URL."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def send(*, to, subject, template, context):
    """Render ``<template>.txt`` and ``<template>.html`` and send them as one message."""
    context = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"{template}.txt", context), to=[to]
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    message.send()
