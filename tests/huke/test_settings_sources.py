"""``describe_settings()`` of the Huke clients: each setting's source, and no secret shown."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from huke_client import AsyncHukeClient, HukeClient, HukeConfigError, Setting

from .conftest import APP_KEY, APP_SECRET

URL_PASSWORD = "url-Passw0rd-77"
ENV = {
    "HUKE_APP_KEY": APP_KEY,
    "HUKE_APP_SECRET": APP_SECRET,
    "HUKE_BASE_URL": f"https://me:{URL_PASSWORD}@huke.test/openapi?token=tok-in-query-91",
    "HUKE_EID": "eid-42",
}
CLASSES = [HukeClient, AsyncHukeClient]


def by_name(settings: tuple[Setting, ...]) -> dict[str, tuple[str, str]]:
    return {s.name: (s.value, s.source) for s in settings}


def variants(secret: str) -> set[str]:
    """The secret as text may carry it: as is, in either case, URL-quoted, JSON-quoted, and its
    halves (a value cut or shown in part)."""
    half = len(secret) // 2
    return {
        secret,
        secret.upper(),
        secret.lower(),
        urllib.parse.quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        secret[:half],
        secret[half:],
    }


def assert_nothing_secret(settings: tuple[Setting, ...], *secrets: str) -> None:
    shown = repr(settings) + "\n".join(map(str, settings))
    for secret in secrets:
        for form in variants(secret):
            assert form not in shown, form


@pytest.mark.parametrize("cls", CLASSES)
def test_from_env_names_the_variable_of_each_setting(cls: type[HukeClient]) -> None:
    client = cls.from_env(ENV)
    assert by_name(client.describe_settings()) == {
        "base_url": ("https://me:***@huke.test/openapi/", "environment HUKE_BASE_URL"),
        "app_key": ("34ff***", "environment HUKE_APP_KEY"),
        "app_secret": ("***", "environment HUKE_APP_SECRET"),
        "eid": ("eid-42", "environment HUKE_EID"),
        "timeout": ("connect 10s, read 30s, write 30s, pool 30s", "default"),
        "max_retries": ("2", "default"),
    }
    assert [s.name for s in client.describe_settings() if s.secret] == ["app_key", "app_secret"]


@pytest.mark.parametrize("cls", CLASSES)
def test_overrides_are_arguments_and_what_is_left_out_the_default(cls: type[HukeClient]) -> None:
    env = {"HUKE_APP_KEY": APP_KEY, "HUKE_APP_SECRET": APP_SECRET, "HUKE_EID": "from-env"}
    # max_retries=2 equals the default: an override is an argument all the same.
    client = cls.from_env(env, eid="from-code", timeout=5, max_retries=2)
    assert by_name(client.describe_settings()) == {
        "base_url": ("https://huke.163.com/openapi/", "default"),
        "app_key": ("34ff***", "environment HUKE_APP_KEY"),
        "app_secret": ("***", "environment HUKE_APP_SECRET"),
        "eid": ("from-code", "argument"),
        "timeout": ("5s", "argument"),
        "max_retries": ("2", "argument"),
    }


def test_a_client_made_directly_shows_its_arguments_and_defaults() -> None:
    settings = by_name(
        HukeClient(APP_KEY, APP_SECRET, base_url="http://h.test/").describe_settings()
    )
    assert settings == {
        "base_url": ("http://h.test/", "argument"),
        "app_key": ("34ff***", "argument"),
        "app_secret": ("***", "argument"),
        "eid": ("not set", "default"),
        "timeout": ("connect 10s, read 30s, write 30s, pool 30s", "default"),
        "max_retries": ("2", "default"),
    }


def test_a_factory_of_ones_own_records_its_sources_by_keyword() -> None:
    flagged = AsyncHukeClient(
        APP_KEY, APP_SECRET, timeout=9, setting_sources={"timeout": "flag --timeout"}
    )
    assert by_name(flagged.describe_settings())["timeout"] == ("9s", "flag --timeout")
    client = HukeClient.from_env(ENV, setting_sources={"app_key": "vault huke/key"})
    assert by_name(client.describe_settings())["app_key"] == ("34ff***", "vault huke/key")
    assert by_name(client.describe_settings())["eid"] == ("eid-42", "environment HUKE_EID")


@pytest.mark.parametrize("bad", [["base_url"], {"timeout": 30}])
def test_setting_sources_of_the_wrong_shape_is_a_config_error_saying_what_it_got(
    bad: object,
) -> None:
    with pytest.raises(HukeConfigError, match="setting_sources must map") as info:
        HukeClient(APP_KEY, APP_SECRET, setting_sources=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_no_secret_shows_in_the_settings_or_their_repr() -> None:
    client = HukeClient.from_env(ENV)
    settings = client.describe_settings()
    assert_nothing_secret(settings, APP_SECRET, URL_PASSWORD, "tok-in-query-91")
    # The app key is an identifier: its first characters only, never the whole of it.
    assert APP_KEY not in repr(settings)
    assert all(isinstance(s, Setting) for s in settings)
