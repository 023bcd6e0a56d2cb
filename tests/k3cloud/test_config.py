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
        ("K3CLOUD_ACCT_ID", "missing setting K3CLOUD_ACCT_ID"),
        ("K3CLOUD_SERVER_URL", "missing setting K3CLOUD_SERVER_URL"),
        ("K3CLOUD_APP_SECRET", "missing setting K3CLOUD_APP_SECRET"),
        ("K3CLOUD_APP_ID", "missing setting K3CLOUD_APP_ID"),
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
    assert str(info.value) == f"missing setting x-kdapi-appsec in [config] of {str(path)!r}"


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
    with pytest.raises(K3CloudConfigError, match="missing setting x-kdapi-serverurl"):
        K3CloudClient.from_ini(ini)


# -- conf.ini as users have it (issue 9.3) ---------------------------------------------------------

#: A user name in Chinese: only a correctly decoded file gives it back.
CHINESE_USER = "管理员"
CHINESE_INI = "# 金蝶云星空 WebAPI 配置\n" + CONF_INI.replace(TEST_USER_NAME, CHINESE_USER)


def _ini_bytes(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "conf.ini"
    path.write_bytes(content)
    return path


def _assert_secret_not_carried(exc: BaseException) -> None:
    # Neither the message nor anything chained to the error may hold the file's text.
    assert TEST_APP_SECRET not in str(exc)
    assert TEST_APP_SECRET not in repr(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"], ids=["utf8", "bom", "gbk", "gb18030"]
)
def test_from_ini_reads_the_encodings_windows_users_save(tmp_path: Path, encoding: str) -> None:
    path = _ini_bytes(tmp_path, CHINESE_INI.encode(encoding))
    client = K3CloudClient.from_ini(path)
    assert client.user_name == CHINESE_USER
    assert client.acct_id == TEST_ACCT_ID
    assert (client.lcid, client.org_num) == (2052, 100)


def test_from_ini_bom_is_not_a_missing_section_header(tmp_path: Path) -> None:
    path = _ini_bytes(tmp_path, b"\xef\xbb\xbf" + CONF_INI.encode("utf-8"))
    assert K3CloudClient.from_ini(path).acct_id == TEST_ACCT_ID


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        # Notepad's "Unicode": UTF-16 with its byte order mark.
        (CONF_INI.encode("utf-16"), "UTF-16"),
        # Bytes that are neither UTF-8 nor GB18030 (0x80 and 0xFF lead nothing in GB18030).
        (CONF_INI.encode("utf-8") + b"\x80\xff\xfe\n", "neither UTF-8 nor GB18030"),
    ],
    ids=["utf16", "binary"],
)
def test_from_ini_undecodable_file_names_the_file_and_the_fix_never_its_text(
    tmp_path: Path, content: bytes, hint: str
) -> None:
    path = _ini_bytes(tmp_path, content)
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_ini(path)
    message = str(info.value)
    assert repr(str(path)) in message
    assert hint in message
    assert "save it as UTF-8" in message
    _assert_secret_not_carried(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A secret on the line configparser quotes in its own message.
        (f"x-kdapi-appsec = {TEST_APP_SECRET}\n" + CONF_INI, "line 1: no [section] header"),
        (CONF_INI + f"x-kdapi-appsec{TEST_APP_SECRET}\n", "line 13: not a 'key = value' line"),
        (
            CONF_INI + f"x-kdapi-appsec = {TEST_APP_SECRET}2\n",
            "line 13: x-kdapi-appsec is set twice in [config]",
        ),
        (CONF_INI + CONF_INI, "line 13: section [config] appears twice"),
    ],
    ids=["no-header", "no-delimiter", "duplicate-key", "duplicate-section"],
)
def test_from_ini_syntax_errors_name_the_line_never_its_text(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_ini(tmp_path, text)
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_ini(path)
    assert f"{str(path)!r} is not a valid ini file: {expected}" in str(info.value)
    _assert_secret_not_carried(info.value)


@pytest.mark.parametrize("value", ["0", "-5"])
@pytest.mark.parametrize("key", ["x-kdapi-connecttimeout", "x-kdapi-requesttimeout"])
def test_from_ini_timeouts_must_be_positive(tmp_path: Path, key: str, value: str) -> None:
    text = CONF_INI.replace(f"{key} = 15", f"{key} = {value}").replace(
        f"{key} = 45", f"{key} = {value}"
    )
    with pytest.raises(K3CloudConfigError, match=f"{key} must be a whole number of seconds >= 1"):
        K3CloudClient.from_ini(write_ini(tmp_path, text))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("erp.example.com/k3cloud/", "no scheme"),
        ("ftp://erp.example.com/k3cloud/", "scheme 'ftp'"),
        ("http:///k3cloud/", "no host"),
        ("http://exa mple.com/k3cloud/", "not a valid URL"),
    ],
)
def test_bad_server_url_names_the_setting_and_shows_the_url(url: str, problem: str) -> None:
    with pytest.raises(K3CloudConfigError) as env_info:
        K3CloudClient.from_env(environ=ENV | {"K3CLOUD_SERVER_URL": url})
    assert str(env_info.value).startswith("K3CLOUD_SERVER_URL: base URL must be an absolute")
    assert repr(url) in str(env_info.value)
    assert problem in str(env_info.value)
    with pytest.raises(K3CloudConfigError) as arg_info:
        K3CloudClient(url, **_credentials())
    assert str(arg_info.value).startswith("server_url: base URL must be an absolute")
    assert problem in str(arg_info.value)


def test_bad_server_url_in_conf_ini_names_key_and_file(tmp_path: Path) -> None:
    path = write_ini(tmp_path, CONF_INI.replace("http://erp.example.com", "erp.example.com"))
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_ini(path)
    assert str(info.value).startswith(
        f"x-kdapi-serverurl in [config] of {str(path)!r}: base URL must be an absolute"
    )
    assert "'erp.example.com/k3cloud/'" in str(info.value)


def test_a_password_in_a_bad_url_is_not_shown() -> None:
    url = "ftp://user:Hunter2-pw@erp.example.com/k3cloud/"
    with pytest.raises(K3CloudConfigError) as info:
        K3CloudClient.from_env(environ=ENV | {"K3CLOUD_SERVER_URL": url})
    assert "Hunter2-pw" not in str(info.value)
    assert "'ftp://user:***@erp.example.com/k3cloud/'" in str(info.value)


# -- constructor settings, checked at construction (issue 9.3) -----------------------------------


def _credentials() -> dict[str, str]:
    return {
        "acct_id": TEST_ACCT_ID,
        "user_name": TEST_USER_NAME,
        "app_id": TEST_APP_ID,
        "app_secret": TEST_APP_SECRET,
    }


BAD_SETTINGS = [
    (
        {"timeout": "30"},
        "timeout must be seconds > 0 (a number), an httpx.Timeout or None, got '30' (a str)",
    ),
    ({"timeout": -1}, "timeout must be seconds > 0, got -1"),
    ({"timeout": 0}, "timeout must be seconds > 0, got 0"),
    ({"timeout": float("nan")}, "timeout must be seconds > 0, got nan"),
    ({"timeout": float("inf")}, "timeout must be finite seconds (None for no timeout), got inf"),
    ({"timeout": True}, "got True (a bool)"),
    (
        {"timeout": httpx.Timeout(5.0, connect=-1.0)},
        "timeout's connect must be seconds > 0, got -1.0",
    ),
    ({"timeout": httpx.Timeout(5.0, read="9")}, "timeout's read must be seconds > 0 (a number)"),  # type: ignore[arg-type]
    (
        {"max_retries": -1},
        "max_retries must be an int >= 0 (or None for the retry policy's), got -1",
    ),
    (
        {"max_retries": "3"},
        "max_retries must be an int >= 0 (or None for the retry policy's), got '3'",
    ),
    (
        {"max_retries": True},
        "max_retries must be an int >= 0 (or None for the retry policy's), got True",
    ),
    (
        {"max_retries": 2.0},
        "max_retries must be an int >= 0 (or None for the retry policy's), got 2.0",
    ),
    ({"retry": 3}, "retry must be a RetryPolicy (or None), got 3 (an int)"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_SETTINGS)
@pytest.mark.parametrize("cls", [K3CloudClient, AsyncK3CloudClient])
def test_bad_settings_raise_at_construction(
    cls: type[K3CloudClient], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(K3CloudConfigError) as info:
        cls("http://erp.example.com/k3cloud/", **_credentials(), **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert not str(info.value).startswith("server_url")


@pytest.mark.parametrize(("kwargs", "message"), BAD_SETTINGS)
def test_bad_settings_raise_in_with_options(kwargs: dict[str, object], message: str) -> None:
    with K3CloudClient("http://erp.example.com/k3cloud/", **_credentials()) as client:
        with pytest.raises(K3CloudConfigError) as info:
            client.with_options(**kwargs)  # type: ignore[arg-type]
        assert message in str(info.value)


def test_good_settings_still_accepted() -> None:
    client = K3CloudClient(
        "http://erp.example.com/k3cloud/", **_credentials(), timeout=None, max_retries=0
    )
    assert client.timeout == httpx.Timeout(None)
    assert client.max_retries == 0
    copy = client.with_options(timeout=httpx.Timeout(5.0, connect=None), max_retries=4)
    assert (copy.timeout, copy.max_retries) == (httpx.Timeout(5.0, connect=None), 4)
    assert client.with_options(timeout=2).timeout == httpx.Timeout(2)
    client.close()
