"""django-allauth glue: purchases follow proven addresses; e-mails speak for SITE_URL."""

import re
from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import escape, linebreaks
from django.utils.safestring import mark_safe

from commerce.access.claims import attach_guest_purchases


def prove_email(user, email):
    """The claim link reached this address, so the account controls it."""
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        EmailAddress.objects.create(
            user=user,
            email=email,
            verified=True,
            primary=not EmailAddress.objects.filter(user=user).exists(),
        )
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])


def claim_verified_addresses(user):
    for email in EmailAddress.objects.filter(user=user, verified=True).values_list(
        "email", flat=True
    ):
        attach_guest_purchases(user, email, proof="verified address")


def on_email_confirmed(request, email_address, **kwargs):
    attach_guest_purchases(email_address.user, email_address.email, proof="verified address")


def on_user_logged_in(request, user, **kwargs):
    claim_verified_addresses(user)


def on_site(url):
    """The same path on SITE_URL: a request's Host header never reaches an e-mail."""
    bits = urlsplit(url)
    return settings.SITE_URL + bits.path + (f"?{bits.query}" if bits.query else "")


CLAIM_PROVEN_EMAIL = "claim_proven_email"
LINK = re.compile(r"https?://[^\s<>\"']+")


def linked(text):
    """Plain text as HTML paragraphs, its http(s) links clickable (bare domains stay text)."""
    html = escape(text)
    html = LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html)
    return mark_safe(linebreaks(html, autoescape=False))  # noqa: S308 - escaped above


class AccountAdapter(DefaultAccountAdapter):
    """allauth's e-mails name the site by SITE_NAME and link to SITE_URL; an address a claim
    link was opened for in this session counts as verified (the link was e-mailed to it)."""

    def is_email_verified(self, request, email):
        """Only while the claim link is still unused and unexpired, and only for its address."""
        from django.utils import timezone

        from commerce.models import ClaimToken, normalise_email

        token = request.session.get(CLAIM_PROVEN_EMAIL) if request is not None else None
        if isinstance(token, int) and (
            ClaimToken.objects.filter(
                pk=token,
                email=normalise_email(email),
                used_at__isnull=True,
                expires_at__gt=timezone.now(),
            ).exists()
        ):
            return True
        return super().is_email_verified(request, email)

    def render_mail(self, template_prefix, email, context, headers=None):
        """allauth ships plain text only: add an HTML part in the site's e-mail layout."""
        message = super().render_mail(template_prefix, email, context, headers)
        if not getattr(message, "alternatives", None) and hasattr(message, "attach_alternative"):
            html = render_to_string(
                "learner/email/account.html",
                {
                    "body": linked(message.body),
                    "site_name": settings.SITE_NAME,
                    "site_url": settings.SITE_URL,
                },
            )
            message.attach_alternative(html, "text/html")
        return message

    def format_email_subject(self, subject):
        return f"[{settings.SITE_NAME}] {subject}"

    def send_mail(self, template_prefix, email, context):
        context = {
            **{
                key: on_site(value) if key.endswith("_url") and isinstance(value, str) else value
                for key, value in context.items()
            },
            "current_site": SimpleNamespace(
                name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc
            ),
        }
        super().send_mail(template_prefix, email, context)
