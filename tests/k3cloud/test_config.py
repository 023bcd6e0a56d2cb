"""from_env and from_ini (the official SDK's conf.ini), with missing settings named."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from k3cloud_client import (
    AsyncK3CloudClient,
    K3CloudClient,
    K3CloudConfigError,
    PasswordLogin,
    SignedHeaderAuth,
)
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

ENV = {
    "K3CLOUD_SERVER_URL": "http://erp.example.com/k3cloud/",
    "K3CLOUD_ACCT_ID": TEST_ACCT_ID,
    "K3CLOUD_USER_NAME": TEST_USER_NAME,
    "K3CLOUD_APP_ID": TEST_APP_ID,
    "K3CLOUD_APP_SECRET": TEST_APP_SECRET,
    "K3CLOUD_LCID": "1033",
    "K3CLOUD_ORG_NUM": "100",
}

CONF_INI = f"""[config]
# the official SDK's file, as its users have it
x-kdapi-acctid = {TEST_ACCT_ID}
x-kdapi-username = {TEST_USER_NAME}
x-kdapi-appid = {TEST_APP_ID}
x-kdapi-appsec = {TEST_APP_SECRET}
x-kdapi-serverurl = http://erp.example.com/k3cloud/
x-kdapi-lcid = 2052
x-kdapi-orgnum = 100
x-kdapi-connecttimeout = 15
x-kdapi-requesttimeout = 45
x-kdapi-proxy =
"""


def test_from_env_signed_headers() -> None:
    client = K3CloudClient.from_env(environ=ENV)
    assert isinstance(client.auth, SignedHeaderAuth)
    assert str(client.base_url) == "http://erp.example.com/k3cloud/"
    assert (client.acct_id, client.user_name, client.lcid, client.org_num) == (
        TEST_ACCT_ID,
        TEST_USER_NAME,
        1033,
        100,
    )
    assert (client.auth.lcid, client.auth.org_num) == (1033, 100)


def test_from_env_password_and_overrides() -> None:
    env = {k: v for k, v in ENV.items() if "APP" not in k} | {"K3CLOUD_PASSWORD": "secret-pw"}
    client = AsyncK3CloudClient.from_env(environ=env, max_retries=5)
    assert isinstance(client.auth, PasswordLogin)
    assert client.max_retries == 5


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("K3CLOUD_ACCT_ID", "missing setting(s) K3CLOUD_ACCT_ID"),
        ("K3CLOUD_SERVER_URL", "missing setting(s) K3CLOUD_SERVER_URL"),
        ("K3CLOUD_APP_SECRET", "missing setting(s) K3CLOUD_APP_SECRET"),
        ("K3CLOUD_APP_ID", "missing setting(s) K3CLOUD_APP_ID"),
    ],
)
def test_from_env_names_the_missing_setting(drop: str, message: str) -> None:
    env = {k: v for k, v in ENV.items() if k != drop}
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_env(environ=env)
    assert str(info.value).startswith(message)


def test_from_env_without_credentials_names_both_ways() -> None:
    env = {k: v for k, v in ENV.items() if "APP" not in k}
    with pytest.raises(
        K3CloudConfigError, match="K3CLOUD_APP_ID and K3CLOUD_APP_SECRET, or K3CLOUD_PASSWORD"
    ):
        K3CloudClient.from_env(environ=env)


def test_from_env_bad_integer() -> None:
    with pytest.raises(K3CloudConfigError, match="K3CLOUD_LCID must be an integer"):
        K3CloudClient.from_env(environ=ENV | {"K3CLOUD_LCID": "zh"})


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert K3CloudClient.from_env().acct_id == TEST_ACCT_ID


def write_ini(tmp_path: Path, text: str = CONF_INI) -> Path:
    path = tmp_path / "conf.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_ini_reads_the_official_sdk_file(tmp_path: Path) -> None:
    client = K3CloudClient.from_ini(write_ini(tmp_path))
    assert isinstance(client.auth, SignedHeaderAuth)
    assert (client.lcid, client.org_num) == (2052, 100)
    assert client.timeout == httpx.Timeout(45.0, connect=15.0)
    assert str(client.base_url) == "http://erp.example.com/k3cloud/"


def test_from_ini_signs_like_the_official_sdk_reading_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k3cloud_webapi_sdk.core import webapi_client
    from k3cloud_webapi_sdk.main import K3CloudApiSdk

    path = write_ini(tmp_path)
    monkeypatch.setattr(webapi_client, "time", SimpleNamespace(time=lambda: 1700000000.0))
    sdk = K3CloudApiSdk("http://erp.example.com/k3cloud/")
    sdk.Init(config_path=str(path), config_node="config")
    url = "http://erp.example.com/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.View.common.kdsvc"
    official = sdk.BuildHeader(url)
    ours = K3CloudClient.from_ini(path, clock=lambda: 1700000000.0).auth
    assert isinstance(ours, SignedHeaderAuth)
    mine = ours.headers_for(httpx.URL(url).path)
    assert mine == {k: official[k] for k in mine}


def test_from_ini_section_choice(tmp_path: Path) -> None:
    only = write_ini(tmp_path, CONF_INI.replace("[config]", "[production]"))
    assert K3CloudClient.from_ini(only).acct_id == TEST_ACCT_ID
    two = write_ini(
        tmp_path, CONF_INI + CONF_INI.replace("[config]", "[test]").replace(TEST_ACCT_ID, "other")
    )
    assert K3CloudClient.from_ini(two, "test").acct_id == "other"
    with pytest.raises(
        K3CloudConfigError, match=r"has no section \[nope\] \(its sections: config, test\)"
    ):
        K3CloudClient.from_ini(two, "nope")


def test_from_ini_names_the_missing_setting(tmp_path: Path) -> None:
    path = write_ini(
        tmp_path, CONF_INI.replace(f"x-kdapi-appsec = {TEST_APP_SECRET}", "x-kdapi-appsec =")
    )
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_ini(path)
    assert str(info.value) == f"missing setting(s) x-kdapi-appsec in [config] of {str(path)!r}"


def test_from_ini_file_problems(tmp_path: Path) -> None:
    with pytest.raises(K3CloudConfigError, match="cannot read"):
        K3CloudClient.from_ini(tmp_path / "absent.ini")
    with pytest.raises(K3CloudConfigError, match="x-kdapi-lcid must be an integer"):
        K3CloudClient.from_ini(write_ini(tmp_path, CONF_INI.replace("= 2052", "= zh")))
    with pytest.raises(K3CloudConfigError, match="x-kdapi-secpwd"):
        K3CloudClient.from_ini(write_ini(tmp_path, CONF_INI + "x-kdapi-secpwd = abc\n"))
    with pytest.raises(K3CloudConfigError, match="not a valid ini file"):
        K3CloudClient.from_ini(write_ini(tmp_path, "no section here\n"))


def test_from_ini_proxy_builds_an_owned_client(tmp_path: Path) -> None:
    path = write_ini(
        tmp_path, CONF_INI.replace("x-kdapi-proxy =", "x-kdapi-proxy = http://127.0.0.1:3128")
    )
    client = K3CloudClient.from_ini(path)
    assert client._owns_http is True
    client.close()
    assert client._http.is_closed


def test_from_ini_without_server_url_takes_it_from_the_caller(tmp_path: Path) -> None:
    # Since 8.x the official SDK takes the URL in code, so users' files often lack the key.
    ini = tmp_path / "conf.ini"
    ini.write_text(CONF_INI.replace("x-kdapi-serverurl = http://erp.example.com/k3cloud/\n", ""))
    client = K3CloudClient.from_ini(ini, server_url="http://other.example.com/k3cloud/")
    assert str(client.base_url) == "http://other.example.com/k3cloud/"
    with pytest.raises(K3CloudConfigError, match="missing setting\\(s\\) x-kdapi-serverurl"):
        K3CloudClient.from_ini(ini)
