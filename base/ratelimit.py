"""A fixed-window rate limit on the shared cache (Redis in production, so it holds across
web nodes)."""

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate):
    """'30/h' → (30, 3600)."""
    count, _, unit = rate.partition("/")
    return int(count), UNITS.get(unit or "h", 3600)


def hit(key, rate):
    """Count one request; True when the limit is exceeded."""
    limit, period = parse_rate(rate)
    cache_key = f"rl:{key}"
    if cache.add(cache_key, 1, period):
        return limit < 1
    try:
        count = cache.incr(cache_key)
    except ValueError:
        cache.set(cache_key, 1, period)
        count = 1
    return count > limit


def client_ip(request):
    """The client's address, or None. Behind TRUSTED_PROXY_COUNT proxies, the address the
    nearest trusted proxy saw (X-Forwarded-For read from the right, so a client cannot
    choose its own address by sending the header)."""
    ip = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        ip = forwarded[-hops] if len(forwarded) >= hops else None
    try:
        validate_ipv46_address(ip)
    except ValidationError:
        return None
    return ip


def login_identifier(request, credentials=None):
    """The account a login attempt names, whichever form sent it (Wagtail's admin posts a
    username, allauth an e-mail address), so failures on one form count on the other."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    credentials = credentials or {}
    post = getattr(request, "POST", {}) or {}
    for value in (
        credentials.get("username"),
        credentials.get("email"),
        post.get("username"),
        post.get("login"),
    ):
        if value:
            named = str(value).strip()[:254]
            break
    else:
        return ""
    user = (
        get_user_model()
        .objects.filter(Q(username__iexact=named) | Q(email__iexact=named))
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if user is None and "@" in named:  # any other address the account logs in with
        from allauth.account.models import EmailAddress

        user = (
            EmailAddress.objects.filter(email__iexact=named)
            .order_by("-verified", "pk")
            .values_list("user_id", flat=True)
            .first()
        )
    return f"user:{user}" if user else named.lower()
