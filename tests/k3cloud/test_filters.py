"""k3cloud_client.filters: values are always one quoted literal, field keys always validated."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3cloud_client import filters
from k3cloud_client.testing import FakeK3Cloud

from .conftest import Harness


def test_quote_doubles_single_quotes() -> None:
    assert filters.quote("x' or '1'='1") == "'x'' or ''1''=''1'"
    assert filters.quote("") == "''"
    assert filters.quote("O'Brien") == "'O''Brien'"


def test_quote_numbers_and_dates() -> None:
    assert filters.quote(100123) == "100123"
    assert filters.quote(-1.5) == "-1.5"
    assert filters.quote(dt.date(2024, 1, 31)) == "'2024-01-31'"
    assert filters.quote(dt.datetime(2024, 1, 31, 8, 5, 9)) == "'2024-01-31 08:05:09'"


@pytest.mark.parametrize("value", [True, None, float("nan"), float("inf"), b"x", ["a"]])
def test_quote_refuses_what_it_cannot_make_one_literal(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        filters.quote(value)  # type: ignore[arg-type]


def test_builders() -> None:
    assert filters.eq("FNumber", "C'1") == "FNumber = 'C''1'"
    assert (
        filters.in_("FCreateOrgId.FNumber", ["100", 101]) == "FCreateOrgId.FNumber in ('100',101)"
    )
    assert filters.and_("A = 1") == "A = 1"
    assert filters.and_(filters.eq("A", "x"), "B = 1 or C = 2") == "(A = 'x') and (B = 1 or C = 2)"


@pytest.mark.parametrize("field", ["", "1F", "F Number", "FNumber;--", "F.", "FNumber'", "a=b"])
def test_field_keys_are_validated(field: str) -> None:
    with pytest.raises(ValueError, match="not a field key"):
        filters.eq(field, "x")


def test_empty_in_and_and_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        filters.in_("FNumber", [])
    with pytest.raises(ValueError, match="at least one condition"):
        filters.and_()


@given(st.text())
def test_any_text_round_trips_through_the_fake_parser(value: str) -> None:
    # Whatever the value, the filter matches exactly the row that holds it.
    fake = FakeK3Cloud(acct_id="a", user_name="u", app_id=None)
    fake.seed(
        "BD_Customer",
        [{"FNumber": value, "FName": "target"}, {"FNumber": value + "x", "FName": "other"}],
    )
    reply = fake._query(
        {
            "FormId": "BD_Customer",
            "FieldKeys": "FName",
            "FilterString": filters.eq("FNumber", value),
        },
        as_objects=False,
    )
    assert reply == [["target"]]


def test_filters_against_the_fake_through_a_client(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.seed(
        "BD_Customer",
        [
            {"FNumber": "A", "FName": "a", "FForbidStatus": "A"},
            {"FNumber": "B", "FName": "b", "FForbidStatus": "B"},
            {"FNumber": "x' or '1'='1", "FName": "c", "FForbidStatus": "A"},
        ],
    )
    where = filters.and_(
        filters.in_("FNumber", ["A", "B", "x' or '1'='1"]), filters.eq("FForbidStatus", "A")
    )
    rows = harness.call(
        harness.client(fake), "execute_bill_query", "BD_Customer", "FName", filter_string=where
    )
    assert rows == [["a"], ["c"]]
