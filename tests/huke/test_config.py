"""Settings checked where they are given: HUKE_BASE_URL, timeouts, retries (issue 9.3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from huke_client import AsyncHukeClient, HukeClient, HukeConfigError, RetryPolicy

from .conftest import APP_KEY, APP_SECRET

ENV = {"HUKE_APP_KEY": APP_KEY, "HUKE_APP_SECRET": APP_SECRET}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("huke.163.com/openapi", "it has no scheme: start it with https://"),
        ("ftp://huke.163.com/openapi", "its scheme 'ftp' is not http or https"),
        ("ftp://", "its scheme 'ftp' is not http or https"),
        ("https://", "it has no host"),
        (
            "https://huke.163.com:99999/openapi",
            "it is not a valid URL (port 99999 is out of range)",
        ),
    ],
)
def test_bad_huke_base_url_names_the_variable_and_shows_the_url(url: str, problem: str) -> None:
    with pytest.raises(HukeConfigError) as info:
        HukeClient.from_env(ENV | {"HUKE_BASE_URL": url})
    message = str(info.value)
    assert message.startswith("HUKE_BASE_URL: base URL must be an absolute http(s) URL")
    assert f"got {url!r}: {problem}" in message
    assert APP_SECRET not in message


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_huke_base_url_is_refused_not_replaced_by_the_default(blank: str) -> None:
    # An empty variable is a mistake (a typo'd ${VAR}), not a wish for production.
    with pytest.raises(HukeConfigError, match="HUKE_BASE_URL is set but empty"):
        HukeClient.from_env(ENV | {"HUKE_BASE_URL": blank})


def test_huke_base_url_from_env_and_override() -> None:
    with HukeClient.from_env(ENV | {"HUKE_BASE_URL": "http://127.0.0.1:9/openapi"}) as client:
        assert str(client.base_url) == "http://127.0.0.1:9/openapi/"
    # An override wins, so the variable (even a bad one) is not read.
    with HukeClient.from_env(
        ENV | {"HUKE_BASE_URL": "nope"}, base_url="https://huke.test/openapi"
    ) as client:
        assert str(client.base_url) == "https://huke.test/openapi/"
    with HukeClient.from_env(ENV) as client:
        assert str(client.base_url) == "https://huke.163.com/openapi/"


def test_bad_base_url_argument_is_a_config_error() -> None:
    with pytest.raises(HukeConfigError, match=r"^base_url: base URL must be .*'huke\.163\.com'"):
        HukeClient(APP_KEY, APP_SECRET, base_url="huke.163.com")


BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"timeout": "30"}, "timeout must be seconds > 0 (a number), an httpx.Timeout or None"),
    ({"timeout": -0.5}, "timeout must be seconds > 0, got -0.5"),
    ({"timeout": httpx.Timeout(5.0, pool=0)}, "timeout's pool must be seconds > 0, got 0"),
    ({"max_retries": -1}, "max_retries must be an int >= 0"),
    ({"max_retries": "3"}, "max_retries must be an int >= 0"),
    ({"max_retries": True}, "max_retries must be an int >= 0"),
    ({"retry": {"max_retries": 1}}, "retry must be a RetryPolicy (or None)"),
    (
        {"retry_codes": "429"},
        "retry_codes must be a collection of envelope codes such as [429, 'BUSY'], got '429'",
    ),
    ({"eid": 7}, "eid must be text (or None), got 7"),
    ({"eid": ""}, "eid must be text (or None), got ''"),
    ({"clock": 1.0}, "clock must be a function returning Unix seconds, got 1.0"),
    ({"null_first_page_is_empty": "no"}, "null_first_page_is_empty must be True or False"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_SETTINGS)
@pytest.mark.parametrize("cls", [HukeClient, AsyncHukeClient])
def test_bad_settings_raise_at_construction(
    cls: type[HukeClient], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(HukeConfigError) as info:
        cls(APP_KEY, APP_SECRET, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(k, m) for k, m in BAD_SETTINGS if set(k) <= {"timeout", "max_retries", "retry"}],
)
def test_bad_settings_raise_in_with_options(kwargs: dict[str, Any], message: str) -> None:
    with HukeClient(APP_KEY, APP_SECRET) as client, pytest.raises(HukeConfigError) as info:
        client.with_options(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("app_key", "app_secret", "message"),
    [
        (123, APP_SECRET, "app_key must be text, got an int"),
        (APP_KEY, b"secret-bytes", "app_secret must be text, got a bytes"),
        ("", APP_SECRET, "non-empty"),
        (APP_KEY, "  ", "non-empty"),
    ],
)
def test_credentials_must_be_non_empty_text(app_key: Any, app_secret: Any, message: str) -> None:
    with pytest.raises(HukeConfigError, match=message) as info:
        HukeClient(app_key, app_secret)
    assert "secret-bytes" not in str(info.value)


def test_good_settings_still_accepted() -> None:
    with HukeClient(
        APP_KEY,
        APP_SECRET,
        timeout=None,
        max_retries=0,
        retry=RetryPolicy(initial_delay=0),
        retry_codes=[429, "BUSY"],
        eid="E-1",
        null_first_page_is_empty=True,
    ) as client:
        assert client.timeout == httpx.Timeout(None)
        assert client.max_retries == 0
        assert client.retry_codes == frozenset({429, "BUSY"})
        assert client.with_options(timeout=3, max_retries=5).max_retries == 5
