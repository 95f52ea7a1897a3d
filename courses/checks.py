from django.conf import settings
from django.core.checks import Warning, register


@register()
def stream_playback_is_signed(app_configs, **kwargs):
    """Without signing keys a Stream video plays for anyone who has its uid."""
    if settings.DEBUG or (settings.STREAM_SIGNING_KEY_ID and settings.STREAM_SIGNING_KEY_PEM):
        return []
    return [
        Warning(
            "Cloudflare Stream signed playback is off: lesson videos use the public embed, and "
            "anyone with a video's uid can watch it.",
            hint="Set STREAM_SIGNING_KEY_ID and STREAM_SIGNING_KEY_PEM and require signed URLs "
            "on the videos, or silence courses.W001 if the site uses no Stream video.",
            id="courses.W001",
        )
    ]


@register()
def default_currency_is_offered(app_configs, **kwargs):
    from courses.models import CURRENCIES

    if settings.DEFAULT_CURRENCY in dict(CURRENCIES):
        return []
    return [
        Warning(
            f"DEFAULT_CURRENCY {settings.DEFAULT_CURRENCY!r} is not one a course may be priced in.",
            hint=f"Use one of {', '.join(dict(CURRENCIES))}.",
            id="courses.W002",
        )
    ]
