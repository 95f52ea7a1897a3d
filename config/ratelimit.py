"""A fixed-window rate limit on the shared cache (Redis in production, so it holds across
web nodes)."""

from django.core.cache import cache

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
