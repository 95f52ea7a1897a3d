"""Every amount a person reads comes from one formatter: minor units in, locale-aware text out."""

from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from base.money import allocate, exponent, format_money, to_major

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


# --- allocation (a bundle's price over its courses) ---------------------------------------


def test_an_even_split_that_does_not_divide_gives_the_cent_to_the_first():
    assert allocate(1000, [4900, 4900, 4900]) == [334, 333, 333]


def test_a_split_follows_the_list_prices():
    assert allocate(9900, [4900, 2900, 1900]) == [5001, 2960, 1939]
    assert sum(allocate(9900, [4900, 2900, 1900])) == 9900


def test_a_zero_decimal_price_splits_in_whole_yen():
    assert allocate(10000, [3000, 3000, 3000]) == [3334, 3333, 3333]


def test_free_courses_get_nothing_unless_every_course_is_free():
    assert allocate(1000, [0, 4900]) == [0, 1000]
    assert allocate(1000, [0, 0]) == [500, 500]


def test_negative_amounts_are_refused():
    with pytest.raises(ValueError):
        allocate(-1, [1])


@given(
    total=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=12),
)
def test_allocation_sums_exactly_and_stays_within_a_minor_unit_of_the_proportion(total, weights):
    shares = allocate(total, weights)
    assert sum(shares) == total and len(shares) == len(weights)
    whole = sum(weights) or len(weights)
    for share, weight in zip(shares, weights if any(weights) else [1] * len(weights), strict=True):
        assert abs(share * whole - total * weight) < whole  # within one minor unit
    assert allocate(total, weights) == shares  # deterministic
