"""What a misbehaving server can send the shared machinery: a Retry-After that is no number of
seconds, JSON nested past the parser's recursion, a 3xx, a body its Content-Encoding garbles."""

from __future__ import annotations

import email.utils
import math

import httpx
import pytest

from _huke_k3_core import HTTPStatusError, RetryPolicy, parse_retry_after
from _huke_k3_core._errors import json_kind
from _huke_k3_core._transport import JSONTooDeepError, loads

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "header", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0.5", "1e309", "garbage", "1 s"]
)
def test_a_retry_after_that_is_no_number_of_seconds_is_ignored(header: str) -> None:
    assert parse_retry_after(header, now=lambda: NOW) is None


@pytest.mark.parametrize("retry_after", [math.nan, math.inf, -math.inf, -1.0])
def test_a_delay_given_a_senseless_retry_after_is_the_backoff(retry_after: float) -> None:
    policy = RetryPolicy(initial_delay=0.5, jitter=0.0, max_retry_after=60.0)
    assert policy.delay(1, retry_after) == policy.delay(1) == 1.0


def test_a_retry_after_date_in_utc_without_a_zone_name_is_read_as_utc() -> None:
    # "-0000" is RFC 5322's UTC: parsedate_to_datetime gives a naive datetime for it, which
    # datetime.timestamp() would read as local time.
    header = email.utils.formatdate(NOW + 30).replace("+0000", "-0000")
    assert header.endswith("-0000")
    assert parse_retry_after(header, now=lambda: NOW) == pytest.approx(30.0)


@pytest.mark.parametrize("content", [b"[" * 5000 + b"]" * 5000, "[" * 5000 + "]" * 5000])
def test_json_nested_past_the_parser_is_a_value_error_naming_its_depth(
    content: str | bytes,
) -> None:
    with pytest.raises(JSONTooDeepError) as caught:
        loads(content)
    assert isinstance(caught.value, ValueError)
    assert caught.value.depth == 5000
    assert not caught.value.at_least
    assert "5000 levels" in str(caught.value)


def test_the_depth_of_too_deep_json_does_not_count_brackets_inside_strings() -> None:
    content = b'{"a":' * 3000 + b'"[[[{{"' + b"}" * 3000
    with pytest.raises(JSONTooDeepError) as caught:
        loads(content)
    assert caught.value.depth == 3000


def test_a_redirect_names_its_status_and_location_without_secrets() -> None:
    request = httpx.Request("POST", "http://user:pw@api.example.test/openapi/trade/searchTrades")
    response = httpx.Response(
        302,
        headers={"Location": "https://api.example.test/openapi/trade/searchTrades?ticket=T0K3N"},
        request=request,
    )
    error = HTTPStatusError.from_response(response, "")
    assert error.status_code == 302
    assert error.location == "https://api.example.test/openapi/trade/searchTrades"
    assert "HTTP 302" in str(error)
    assert "redirect to https://api.example.test/openapi/trade/searchTrades" in str(error)
    assert "start the base URL with https://" in str(error)
    assert "T0K3N" not in str(error)
    assert "user:pw" not in str(error)


@pytest.mark.parametrize(
    ("location", "shown", "hint"),
    [
        ("https://login.example.invalid/sso?s=1", "https://login.example.invalid/sso", "host"),
        ("/other/", "http://api.example.test/other/", "path"),
        ("", "", "check the base URL"),
    ],
)
def test_a_redirect_hints_at_what_is_wrong_with_the_base_url(
    location: str, shown: str, hint: str
) -> None:
    request = httpx.Request("POST", "http://api.example.test/openapi/x")
    response = httpx.Response(301, headers={"Location": location}, request=request)
    error = HTTPStatusError.from_response(response, "")
    assert error.location == shown
    assert hint in str(error)


def test_an_error_status_has_no_location() -> None:
    request = httpx.Request("POST", "http://api.example.test/openapi/x")
    response = httpx.Response(404, headers={"Location": "/x"}, request=request)
    assert HTTPStatusError.from_response(response, "nope").location is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"mobile": "13812345678"}, "a JSON object of 1 key"),
        (["13812345678", 1], "a JSON array of 2 items"),
        ("13812345678", "text of 11 characters"),
        (13812345678, "a JSON number"),
        (True, "a JSON boolean"),
        (None, "null"),
    ],
)
def test_json_kind_says_what_a_value_is_never_what_it_holds(value: object, kind: str) -> None:
    assert json_kind(value) == kind
    assert "13812345678" not in json_kind(value)
