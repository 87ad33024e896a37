"""Amounts as shown ("1.500.000 ₫", the sign held to its number) and as typed back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.formatting import NO_BREAK_SPACE, parse_vnd, signed_vnd, vnd
from kiosk.payments.codes import parse_amount


def test_vnd_groups_thousands_with_dots_and_holds_the_sign_to_the_number() -> None:
    assert vnd(1_500_000) == "1.500.000\u00a0₫"
    assert vnd(0) == "0\u00a0₫"
    assert vnd(-20_000) == "\u221220.000\u00a0₫"  # a minus sign, not a hyphen
    # No plain space a line could break at: "₫" never starts a line on a narrow phone.
    assert " " not in vnd(123_456_789)


def test_signed_vnd_always_writes_the_direction_of_a_change() -> None:
    assert signed_vnd(200_000) == "+200.000\u00a0₫"
    assert signed_vnd(-200_000) == "\u2212200.000\u00a0₫"
    assert signed_vnd(0) == "0\u00a0₫"


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("1.500.000", 1_500_000),
        ("1,500,000", 1_500_000),
        ("1 500 000", 1_500_000),
        ("  500000  ", 500_000),
        ("500.000 ₫", 500_000),
        ("500.000\u00a0₫", 500_000),  # copied from a page of ours
        ("500\u202f000\u00a0₫", 500_000),  # a narrow no-break space, as other apps group
        ("500.000đ", 500_000),
        ("500.000 Đ", 500_000),
        ("500000d", 500_000),
        ("500000 VND", 500_000),
        ("500000vnd", 500_000),
        ("0", 0),
    ],
)
def test_parse_vnd_reads_what_people_type_and_paste(typed: str, amount: int) -> None:
    assert parse_vnd(typed) == amount


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "₫",
        "VND",
        "abc",
        "-500",
        "+500",
        "1.5e6",
        "12₫34",
        "500 đồng",
        "200.5",  # not 2.005 ₫: someone meant something else
        "1.5000",
        "12.34.567",
        "1.500,000",  # two kinds of mark
        "1..500",
        ".500",
        "500.",
        "\u0665\u0660\u0660",
        "\uff15\uff10\uff10",
    ],
)
def test_parse_vnd_refuses_what_is_not_a_whole_amount(typed: str) -> None:
    assert parse_vnd(typed) is None


@given(st.integers(min_value=0, max_value=10**15))
def test_an_amount_shown_reads_back_as_itself(amount: int) -> None:
    assert parse_vnd(vnd(amount)) == amount


def test_a_code_amount_pasted_from_a_page_is_accepted() -> None:
    assert parse_amount(f"200.000{NO_BREAK_SPACE}₫") == 200_000
