"""``describe_settings()`` of the K/3 Cloud clients: the source of each setting read by
``from_env`` and ``from_ini`` (a GBK ``conf.ini`` included) or passed in, the login scheme, and
no secret shown: not the app secret, the password, the part of the app id after its ``_`` (nor
the client secret it encodes), nor a proxy's password."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Generator
from pathlib import Path

import anyio
import httpx
import pytest

from k3cloud_client import (
    AppSecretLogin,
    AsyncK3CloudClient,
    K3CloudClient,
    K3CloudConfigError,
    Setting,
    SignLogin,
)
from k3cloud_client.signing import app_id_secrets
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

from .conftest import PASSWORD

PROXY_PASSWORD = "Pr0xy-pw-5150"
ENV = {
    "K3CLOUD_SERVER_URL": "http://erp.example.com/k3cloud/",
    "K3CLOUD_ACCT_ID": TEST_ACCT_ID,
    "K3CLOUD_USER_NAME": TEST_USER_NAME,
    "K3CLOUD_APP_ID": TEST_APP_ID,
    "K3CLOUD_APP_SECRET": TEST_APP_SECRET,
    "K3CLOUD_ORG_NUM": "100",
}
CLASSES = [K3CloudClient, AsyncK3CloudClient]
#: Every secret a K/3 client holds: the app secret, the app id's encoded part and the client
#: secret it decodes to, a password, a proxy's password.
SECRETS = (TEST_APP_SECRET, *app_id_secrets(TEST_APP_ID), PASSWORD, PROXY_PASSWORD)


def by_name(settings: tuple[Setting, ...]) -> dict[str, tuple[str, str]]:
    return {s.name: (s.value, s.source) for s in settings}


def assert_nothing_secret(settings: tuple[Setting, ...]) -> None:
    shown = repr(settings) + "\n".join(map(str, settings))
    for secret in SECRETS:
        half = len(secret) // 2
        forms = {
            secret,
            secret.upper(),
            secret.lower(),
            urllib.parse.quote(secret, safe=""),
            json.dumps(secret)[1:-1],
            secret[:half],
            secret[half:],
        }
        for form in forms:
            assert form not in shown, form


def conf_ini(tmp_path: Path, *, encoding: str = "utf-8", user: str = TEST_USER_NAME) -> Path:
    path = tmp_path / "conf.ini"
    path.write_bytes(
        (
            "[config]\n"
            "# 金蝶云星空 WebAPI 配置\n"
            f"x-kdapi-acctid = {TEST_ACCT_ID}\n"
            f"x-kdapi-username = {user}\n"
            f"x-kdapi-appid = {TEST_APP_ID}\n"
            f"x-kdapi-appsec = {TEST_APP_SECRET}\n"
            "x-kdapi-serverurl = http://erp.example.com/k3cloud/\n"
            "x-kdapi-lcid = 1033\n"
            "x-kdapi-requesttimeout = 45\n"
            f"x-kdapi-proxy = http://me:{PROXY_PASSWORD}@proxy.test:3128\n"
        ).encode(encoding)
    )
    return path


@pytest.fixture
def closing() -> Generator[list[K3CloudClient | AsyncK3CloudClient], None, None]:
    """Clients whose pools the test made (from_ini's proxied one), closed after it."""
    made: list[K3CloudClient | AsyncK3CloudClient] = []
    yield made
    for client in made:
        if isinstance(client, AsyncK3CloudClient):
            anyio.run(client.aclose)
        else:
            client.close()


@pytest.mark.parametrize("cls", CLASSES)
def test_from_env_names_the_variable_of_each_setting(cls: type[K3CloudClient]) -> None:
    settings = cls.from_env(environ=ENV).describe_settings()
    assert by_name(settings) == {
        "server_url": ("http://erp.example.com/k3cloud/", "environment K3CLOUD_SERVER_URL"),
        "acct_id": (TEST_ACCT_ID, "environment K3CLOUD_ACCT_ID"),
        "user_name": (TEST_USER_NAME, "environment K3CLOUD_USER_NAME"),
        "auth": ("signed headers", "default"),
        "app_id": ("204399_***", "environment K3CLOUD_APP_ID"),
        "app_secret": ("***", "environment K3CLOUD_APP_SECRET"),
        "lcid": ("2052", "default"),
        "org_num": ("100", "environment K3CLOUD_ORG_NUM"),
        "timeout": ("connect 10s, read 30s, write 30s, pool 30s", "default"),
        "max_retries": ("2", "default"),
    }
    assert [s.name for s in settings if s.secret] == ["app_id", "app_secret"]
    assert_nothing_secret(settings)


def test_from_env_with_a_password_shows_the_password_login() -> None:
    env = {k: v for k, v in ENV.items() if "APP" not in k} | {"K3CLOUD_PASSWORD": PASSWORD}
    settings = by_name(AsyncK3CloudClient.from_env(environ=env, lcid=1033).describe_settings())
    assert settings["auth"] == ("password", "default")
    assert settings["password"] == ("***", "environment K3CLOUD_PASSWORD")
    assert not {"app_id", "app_secret"} & settings.keys()
    assert settings["lcid"] == ("1033", "argument")


@pytest.mark.parametrize("cls", CLASSES)
def test_from_ini_names_the_file_section_and_key_of_each_setting(
    cls: type[K3CloudClient], tmp_path: Path, closing: list[K3CloudClient]
) -> None:
    path = conf_ini(tmp_path)
    client = cls.from_ini(path)
    closing.append(client)
    where = f"conf.ini {str(path)!r} [config]"
    settings = client.describe_settings()
    assert by_name(settings) == {
        "server_url": ("http://erp.example.com/k3cloud/", f"{where} x-kdapi-serverurl"),
        "acct_id": (TEST_ACCT_ID, f"{where} x-kdapi-acctid"),
        "user_name": (TEST_USER_NAME, f"{where} x-kdapi-username"),
        "auth": ("signed headers", "default"),
        "app_id": ("204399_***", f"{where} x-kdapi-appid"),
        "app_secret": ("***", f"{where} x-kdapi-appsec"),
        "lcid": ("1033", f"{where} x-kdapi-lcid"),
        "org_num": ("0", "default"),
        "timeout": (
            "connect 120s, read 45s, write 45s, pool 45s",
            f"{where} x-kdapi-requesttimeout",
        ),
        "max_retries": ("2", "default"),
        "proxy": ("http://me:***@proxy.test:3128", f"{where} x-kdapi-proxy"),
    }
    assert_nothing_secret(settings)


def test_a_conf_ini_saved_in_gbk_still_works(tmp_path: Path) -> None:
    path = conf_ini(tmp_path, encoding="gbk", user="管理员")
    with K3CloudClient.from_ini(path) as client:
        settings = by_name(client.describe_settings())
    assert settings["user_name"] == ("管理员", f"conf.ini {str(path)!r} [config] x-kdapi-username")


def test_overrides_of_from_ini_are_arguments_and_a_given_pool_has_no_proxy_to_show(
    tmp_path: Path,
) -> None:
    with httpx.Client() as http:
        client = K3CloudClient.from_ini(conf_ini(tmp_path), timeout=5, http_client=http)
        settings = by_name(client.describe_settings())
    assert settings["timeout"] == ("5s", "argument")
    # The caller's pool is used, not the file's proxy: describing that proxy would mislead.
    assert "proxy" not in settings


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        (SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET), "LoginBySign"),
        (
            AppSecretLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET),
            "app secret login",
        ),
    ],
)
def test_an_auth_passed_in_names_its_scheme_and_brings_its_credentials(
    auth: httpx.Auth, kind: str
) -> None:
    # from_env read an app id and secret, but the auth passed in is what logs in.
    client = K3CloudClient.from_env(environ=ENV, auth=auth)
    settings = client.describe_settings()
    assert by_name(settings)["auth"] == (kind, "argument")
    assert by_name(settings)["app_id"] == ("204399_***", "argument")
    assert by_name(settings)["app_secret"] == ("***", "argument")
    assert_nothing_secret(settings)


def test_an_auth_of_ones_own_is_named_by_its_class() -> None:
    class TokenAuth(httpx.Auth):
        pass

    client = K3CloudClient("http://erp.test/k3cloud/", acct_id="a", user_name="u", auth=TokenAuth())
    settings = by_name(client.describe_settings())
    assert settings["auth"] == ("custom (TokenAuth)", "argument")
    assert not {"app_id", "app_secret", "password"} & settings.keys()
    assert settings["server_url"] == ("http://erp.test/k3cloud/", "argument")


def test_a_factory_of_ones_own_records_its_sources_by_keyword() -> None:
    client = K3CloudClient.from_env(environ=ENV, setting_sources={"acct_id": "flag --acct-id"})
    settings = by_name(client.describe_settings())
    assert settings["acct_id"] == (TEST_ACCT_ID, "flag --acct-id")
    assert settings["user_name"] == (TEST_USER_NAME, "environment K3CLOUD_USER_NAME")
    with pytest.raises(K3CloudConfigError, match=r"setting_sources must map .* got \['acct_id'\]"):
        K3CloudClient.from_env(environ=ENV, setting_sources=["acct_id"])
