"""The shared half of ``describe_settings()``: ``Setting``, how values are shown (secrets masked,
a URL's password and query left out) and how a source is found for each setting."""

from __future__ import annotations

import attrs
import httpx
import pytest

from _huke_k3_core import (
    MASK,
    ConnectionFailedError,
    ErrorTypes,
    HTTPStatusError,
    Redactor,
    RequestTimeoutError,
    ResponseFormatError,
    SyncAPIClient,
)
from _huke_k3_core._settings import (
    ARGUMENT,
    DEFAULT,
    Setting,
    check_sources,
    head_masked,
    in_file,
    named_by,
    resolve_sources,
    timeout_shown,
    transport_settings,
    url_shown,
)

PASSWORD = "pr0xy-Passw0rd"


class DemoClient(SyncAPIClient):
    _errors = ErrorTypes(
        http_status=HTTPStatusError,
        connection=ConnectionFailedError,
        timeout=RequestTimeoutError,
        response_format=ResponseFormatError,
    )

    def describe(self) -> dict[str, Setting]:
        found = transport_settings(
            url_name="base_url",
            url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            sources=self._setting_sources,
        )
        return {setting.name: setting for setting in found}


def demo(**kwargs: object) -> DemoClient:
    settings: dict[str, object] = {
        "base_url": "http://api.test/",
        "timeout": httpx.Timeout(30.0, connect=10.0),
        "max_retries": None,
        "retry": None,
        "http_client": None,
        "redactor": Redactor(),
        **kwargs,
    }
    return DemoClient(**settings)  # type: ignore[arg-type]


def test_a_setting_is_frozen_and_reads_as_one_line() -> None:
    setting = Setting("acct_id", "5db25ac8d2b819", "environment K3CLOUD_ACCT_ID")
    assert str(setting) == "acct_id: 5db25ac8d2b819 (environment K3CLOUD_ACCT_ID)"
    assert not setting.secret
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setting.value = "other"  # type: ignore[misc]


def test_sources_are_named_as_a_person_finds_them() -> None:
    assert in_file("conf.ini", "/etc/k3/conf.ini", "config", "x-kdapi-acctid") == (
        "conf.ini '/etc/k3/conf.ini' [config] x-kdapi-acctid"
    )
    where = in_file("tenants file", "shops.toml", "tenants.north", "huke.app_secret_env")
    assert named_by("NORTH_SECRET", where) == (
        "environment NORTH_SECRET (named by tenants file 'shops.toml' [tenants.north] "
        "huke.app_secret_env)"
    )


def test_a_value_equal_to_its_default_is_the_default_and_any_other_an_argument() -> None:
    found = resolve_sources(
        {"eid": "environment HUKE_EID", "extra": "flag --x"},
        {"eid": (None, None), "lcid": (2052, 2052), "org_num": (100, 0), "key": ("k", None)},
    )
    assert found == {
        "eid": "environment HUKE_EID",
        "lcid": DEFAULT,
        "org_num": ARGUMENT,
        "key": ARGUMENT,
        "extra": "flag --x",
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw-secret-1@proxy.test:8080", "http://user:***@proxy.test:8080"),
        ("https://erp.test/k3cloud/?token=tok-secret-2", "https://erp.test/k3cloud/"),
        ("user:pw-secret-3@proxy.test:3128", f"{MASK}@proxy.test:3128"),
        ("http://u:p%40ss-secret-4@proxy.test", "http://u:***@proxy.test"),
        ("http://proxy.test:3128", "http://proxy.test:3128"),
    ],
)
def test_a_url_shows_without_its_password_or_query(url: str, shown: str) -> None:
    assert url_shown(url) == shown


def test_a_head_never_shows_a_value_whole() -> None:
    assert head_masked("34ff472473d741b8", 4) == "34ff" + MASK
    assert head_masked("abc", 4) == "a" + MASK
    assert head_masked("k", 4) == MASK


def test_a_timeout_shows_in_seconds() -> None:
    assert timeout_shown(httpx.Timeout(30.0)) == "30s"
    assert timeout_shown(httpx.Timeout(None)) == "none"
    assert timeout_shown(httpx.Timeout(45.0, connect=15.0)) == (
        "connect 15s, read 45s, write 45s, pool 45s"
    )


def test_setting_sources_must_map_text_to_text() -> None:
    assert check_sources(None, ValueError) == {}
    with pytest.raises(TypeError, match=r"setting_sources must map .* got \['base_url'\]"):
        check_sources(["base_url"], TypeError)
    with pytest.raises(TypeError, match=r"got \{'timeout': 30\}"):
        check_sources({"timeout": 30}, TypeError)


def test_the_transport_settings_say_default_argument_or_what_was_given() -> None:
    settings = demo().describe()
    assert [(s.name, s.source) for s in settings.values()] == [
        ("base_url", DEFAULT),
        ("timeout", DEFAULT),
        ("max_retries", DEFAULT),
    ]
    client = demo(
        base_url=f"http://user:{PASSWORD}@api.test/",
        timeout=5.0,
        setting_sources={"base_url": "environment DEMO_URL"},
    )
    settings = client.describe()
    assert settings["base_url"] == Setting(
        "base_url", "http://user:***@api.test/", "environment DEMO_URL"
    )
    assert (settings["timeout"].value, settings["timeout"].source) == ("5s", ARGUMENT)
    assert demo(max_retries=0).describe()["max_retries"] == Setting("max_retries", "0", ARGUMENT)
    assert PASSWORD not in repr(settings)


def test_with_options_makes_what_it_changes_an_argument() -> None:
    client = demo(setting_sources={"timeout": "conf.ini 'c.ini' [config] x-kdapi-requesttimeout"})
    assert client.with_options(max_retries=5).describe()["timeout"] == client.describe()["timeout"]
    changed = client.with_options(timeout=7.0).describe()
    assert (changed["timeout"].value, changed["timeout"].source) == ("7s", ARGUMENT)
    assert changed["max_retries"].source == DEFAULT
    assert client.describe()["timeout"].source.startswith("conf.ini")


def test_a_configured_proxy_shows_without_its_password() -> None:
    found = list(
        transport_settings(
            url_name="server_url",
            url=httpx.URL("http://erp.test/"),
            timeout=httpx.Timeout(1.0),
            max_retries=2,
            sources={"proxy": "conf.ini 'c.ini' [config] x-kdapi-proxy"},
            proxy=f"http://me:{PASSWORD}@proxy.test:3128",
        )
    )
    assert found[-1] == Setting(
        "proxy", "http://me:***@proxy.test:3128", "conf.ini 'c.ini' [config] x-kdapi-proxy"
    )
    assert PASSWORD not in repr(found)
