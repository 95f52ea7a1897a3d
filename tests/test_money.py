"""Every amount a person reads comes from one formatter: minor units in, locale-aware text out."""

from decimal import Decimal

import pytest
from django.utils import translation

from base.money import exponent, format_money, to_major

NBSP = "\xa0"


@pytest.mark.parametrize(
    "amount,currency,expected",
    [
        (4900, "usd", "$49.00"),
        (4900, "eur", "€49.00"),
        (4900, "gbp", "£49.00"),
        (4900, "jpy", "¥4,900"),
        (12345, "kwd", "KWD12.345"),
        (5, "usd", "$0.05"),
        (123456789, "usd", "$1,234,567.89"),
        (0, "usd", "$0.00"),
    ],
)
def test_amounts_read_as_an_english_reader_expects(amount, currency, expected):
    assert format_money(amount, currency, locale="en_US") == expected


def test_a_german_reader_sees_a_decimal_comma_and_the_symbol_after():
    assert format_money(4900, "eur", locale="de_DE") == f"49,00{NBSP}€"


def test_a_british_reader_sees_pounds_as_at_home():
    assert format_money(4900, "gbp", locale="en_GB") == "£49.00"


def test_the_active_language_chooses_the_locale():
    with translation.override("de"):
        assert format_money(4900, "eur") == f"49,00{NBSP}€"
    with translation.override("en-us"):
        assert format_money(4900, "eur") == "€49.00"


def test_upper_and_lower_case_codes_are_the_same_currency():
    assert format_money(4900, "USD", locale="en_US") == format_money(4900, "usd", locale="en_US")


@pytest.mark.parametrize(
    "currency,digits", [("usd", 2), ("eur", 2), ("jpy", 0), ("krw", 0), ("kwd", 3), ("bhd", 3)]
)
def test_minor_units_follow_stripe(currency, digits):
    assert exponent(currency) == digits


def test_conversion_to_major_units_is_exact():
    assert to_major(4900, "usd") == Decimal("49.00")
    assert to_major(12345, "kwd") == Decimal("12.345")
    assert to_major(4900, "jpy") == Decimal("4900")
    assert isinstance(to_major(1, "usd"), Decimal)


def test_a_missing_amount_is_blank_not_zero():
    assert format_money(None, "usd") == ""


def test_an_unknown_locale_still_shows_the_amount():
    assert format_money(4900, "usd", locale="xx_YY") == "$49.00"
