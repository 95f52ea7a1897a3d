"""Money for people: integer minor units (as Stripe counts them) → "$49.00", "49,00 €",
"¥4,900". The one place an amount becomes text; amounts are never floats."""

from decimal import Decimal

from babel import UnknownLocaleError
from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation

# Stripe's minor units differ from ISO 4217 only here (https://docs.stripe.com/currencies).
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


def exponent(currency):
    """How many minor-unit digits Stripe counts for this currency."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount, currency):
    """4900 usd → Decimal('49.00'), exactly."""
    return Decimal(int(amount)).scaleb(-exponent(currency))


def current_locale():
    return translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE)


def format_money(amount, currency, locale=None):
    """Minor units → the amount as a reader of ``locale`` (default: the active language)
    expects it, with the currency's symbol and its usual number of decimals."""
    if amount is None:
        return ""
    try:
        return format_currency(
            to_major(amount, currency), currency.upper(), locale=locale or current_locale()
        )
    except (UnknownLocaleError, ValueError):  # an unknown locale: never fail to show an amount
        return format_currency(to_major(amount, currency), currency.upper(), locale="en_US")


def allocate(total, weights):
    """Split ``total`` minor units in proportion to ``weights`` (largest remainder), to the
    minor unit and summing exactly to ``total``. Ties go to the earlier weight, so the same
    inputs always give the same split; all-zero weights split evenly."""
    total = int(total)
    weights = [int(w) for w in weights]
    if not weights:
        return []
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocate() takes non-negative amounts")
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares
