"""Tenants files: what ``load_tenants`` reads, what it refuses (naming file, tenant and key, never
a secret), and that a tenant's clients and options sync against the simulators."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import huke_k3_bridge
from huke_client import AsyncHukeClient, HukeClient
from huke_k3_bridge import (
    DEFAULT_OVERLAP,
    BridgeError,
    FileState,
    SkipTrade,
    SyncOptions,
    Tenant,
    Tenants,
    TenantsError,
    async_sync_customers,
    load_tenants,
    sync_customers,
    trade_to_customer,
)
from huke_k3_bridge.tenants import HukeSettings, K3Settings
from k3cloud_client import AsyncK3CloudClient, K3CloudClient

from .conftest import CONFIRM_TIMEOUT, FAST, HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS, Stage

#: Values no repr, error or log may show: a secret written in the file, and the environment's.
SECRET = "S3CRET-in-the-file-7f3a9c"
ENV_VALUES = {
    "SHOP_A_HUKE_APP_KEY": "ENVVAL-huke-key-41d2",
    "SHOP_A_HUKE_APP_SECRET": "ENVVAL-huke-secret-8c1e",
    "SHOP_A_K3_APP_ID": "204399_ENVVALk3appid5b7f" + "A" * 15,
    "SHOP_A_K3_APP_SECRET": "ENVVAL-k3-secret-2a90",
}
HUKE = 'app_key_env = "SHOP_A_HUKE_APP_KEY"\napp_secret_env = "SHOP_A_HUKE_APP_SECRET"\n'
K3 = (
    'server_url = "http://erp.example/k3cloud/"\nacct_id = "5db25ac8d2b819"\n'
    'user_name = "webapi"\napp_id_env = "SHOP_A_K3_APP_ID"\n'
    'app_secret_env = "SHOP_A_K3_APP_SECRET"\n'
)


def tenants_file(
    tmp_path: Path, *, top: str = "", tenant: str = "", huke: str = HUKE, k3: str = K3
) -> Path:
    """A file with one tenant, ``shop-a``, each table holding the lines given."""
    path = tmp_path / "tenants.toml"
    path.write_text(
        f"{top}\n[tenants.shop-a]\n{tenant}\n[tenants.shop-a.huke]\n{huke}\n"
        f"[tenants.shop-a.k3]\n{k3}\n",
        encoding="utf-8",
    )
    return path


def refused(path: Path, prefix: str) -> str:
    """The message of the ``TenantsError`` loading ``path`` raises; it starts with ``prefix``
    (after the file's name) and shows no secret."""
    with pytest.raises(TenantsError) as caught:
        load_tenants(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {prefix}"), message
    assert SECRET not in message
    return message


# -- what is read --------------------------------------------------------------------------------


def test_a_full_file_is_read_in_file_order_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "tenants.toml").write_text(
        """
[defaults]
window = "6h"
overlap = "10m"
state = "state/{tenant}.json"
transform = "huke_k3_bridge:trade_to_customer"

[tenants.shop-b]
window = "90m"
state = "b.json"
huke = { app_key_env = "B_KEY", app_secret_env = "B_SECRET", base_url = "http://127.0.0.1:8/openapi", eid = "E1" }
k3 = { server_url = "HTTP://ERP.Example:80/K3Cloud", acct_id = "A1", user_name = "u", password_env = "B_PW", lcid = 1033, org_num = 7 }

[tenants.shop-a.huke]
app_key_env = "A_KEY"
app_secret_env = "A_SECRET"

[tenants.shop-a.k3]
server_url = "http://erp.example/k3cloud/"
acct_id = "A1"
user_name = "webapi"
app_id_env = "A_APP_ID"
app_secret_env = "A_APP_SECRET"
""",
        encoding="utf-8",
    )
    tenants = load_tenants(tmp_path / "tenants.toml")
    assert isinstance(tenants, Tenants)
    assert list(tenants) == ["shop-b", "shop-a"]
    assert tenants.path == str(tmp_path / "tenants.toml")
    b, a = tenants["shop-b"], tenants["shop-a"]
    assert (b.window, b.overlap) == (timedelta(minutes=90), timedelta(minutes=10))
    assert (a.window, a.overlap) == (timedelta(hours=6), timedelta(minutes=10))
    # state paths are relative to the file's folder; the default's {tenant} is the name
    assert b.state_path == str(tmp_path / "b.json")
    assert a.state_path == str(tmp_path / "state" / "shop-a.json")
    assert a.transform_ref == b.transform_ref == "huke_k3_bridge:trade_to_customer"
    assert b.huke == HukeSettings(
        app_key_env="B_KEY",
        app_secret_env="B_SECRET",
        base_url="http://127.0.0.1:8/openapi",
        eid="E1",
    )
    assert b.k3 == K3Settings(
        server_url="HTTP://ERP.Example:80/K3Cloud",
        acct_id="A1",
        user_name="u",
        password_env="B_PW",
        lcid=1033,
        org_num=7,
    )
    assert a.k3.app_id_env == "A_APP_ID"
    assert a.source == b.source == tenants.path
    # one ERP database, written two ways: one account for the fleet's per-account limit
    assert a.k3_account == b.k3_account == "http://erp.example/k3cloud/|A1"


def test_defaults_of_a_minimal_tenant(tmp_path: Path) -> None:
    tenant = load_tenants(tenants_file(tmp_path))["shop-a"]
    assert tenant.window == huke_k3_bridge.DEFAULT_WINDOW
    assert tenant.overlap == DEFAULT_OVERLAP
    assert tenant.state_path is None
    assert tenant.transform_ref is None
    assert tenant.transform() is trade_to_customer
    assert (tenant.k3.lcid, tenant.k3.org_num, tenant.huke.base_url) == (None, None, None)


def test_k3_account_tells_accounts_and_servers_apart(tmp_path: Path) -> None:
    def account(server_url: str, acct_id: str) -> str:
        k3 = K3.replace("http://erp.example/k3cloud/", server_url).replace(
            "5db25ac8d2b819", acct_id
        )
        return load_tenants(tenants_file(tmp_path, k3=k3))["shop-a"].k3_account

    assert account("https://erp.example:443/k3cloud", "A") == "https://erp.example/k3cloud/|A"
    assert (
        account("https://erp.example:8443/k3cloud/", "A") == "https://erp.example:8443/k3cloud/|A"
    )
    assert account("https://erp.example/k3cloud/", "B") != account(
        "https://erp.example/k3cloud/", "A"
    )


def test_tenants_is_a_read_only_mapping(tmp_path: Path) -> None:
    tenants = load_tenants(tenants_file(tmp_path))
    assert isinstance(tenants, Mapping)
    assert "shop-a" in tenants
    assert "shop-z" not in tenants
    assert len(tenants) == 1
    assert tenants.get("shop-z") is None
    with pytest.raises(TypeError):
        tenants["shop-z"] = tenants["shop-a"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        tenants.path = "other.toml"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        tenants["shop-a"].window = timedelta(1)  # type: ignore[misc]


def test_the_public_names() -> None:
    for name in ("load_tenants", "Tenant", "Tenants", "TenantsError"):
        assert name in huke_k3_bridge.__all__
        assert getattr(huke_k3_bridge, name) is getattr(huke_k3_bridge.tenants, name)
    assert issubclass(TenantsError, BridgeError)
    assert issubclass(TenantsError, ValueError)


# -- what is refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("k3", "app_secret"),
        ("k3", "password"),
        ("k3", "app_id"),
        ("huke", "app_key"),
        ("huke", "app_secret"),
    ],
)
def test_a_literal_secret_is_refused_without_quoting_it(
    tmp_path: Path, table: str, key: str
) -> None:
    line = f'{key} = "{SECRET}"\n'
    path = tenants_file(tmp_path, **{table: (HUKE if table == "huke" else K3) + line})
    message = refused(path, f"tenant 'shop-a': {table}.{key}: a secret is never written")
    assert f"{table}.{key}_env" in message


@pytest.mark.parametrize(
    ("where", "line", "prefix"),
    [
        ("tenant", 'windw = "6h"', "tenant 'shop-a': windw: unknown key"),
        ("huke", 'base = "x"', "tenant 'shop-a': huke.base: unknown key"),
        ("k3", f'pasword_env = "{SECRET}"', "tenant 'shop-a': k3.pasword_env: unknown key"),
        ("top", '[defaults]\nhuke = "x"', "defaults.huke: unknown key"),
        ("top", 'shops = "x"', "shops: unknown key"),
    ],
)
def test_an_unknown_key_is_refused_naming_the_known_ones(
    tmp_path: Path, where: str, line: str, prefix: str
) -> None:
    tables = {"tenant": "", "huke": HUKE, "k3": K3, "top": ""}
    tables[where] += line + "\n"
    message = refused(tenants_file(tmp_path, **tables), prefix)
    assert "known keys: " in message
    if where == "k3":
        assert "did you mean 'password_env'?" in message


@pytest.mark.parametrize(
    ("where", "line", "prefix"),
    [
        ("tenant", "window = 6", "tenant 'shop-a': window: must be a duration in quotes"),
        ("tenant", 'huke = "x"', "tenant 'shop-a': huke: must be a table"),
        ("tenant", "state = 1", "tenant 'shop-a': state: must be text"),
        ("k3", 'lcid = "2052"', "tenant 'shop-a': k3.lcid: must be a whole number, got text"),
        ("k3", "org_num = true", "tenant 'shop-a': k3.org_num: must be a whole number"),
        ("huke", "eid = 5", "tenant 'shop-a': huke.eid: must be text (in quotes), got a number"),
        ("top", "tenants = 3", "tenants: must be a table of tenants"),
    ],
)
def test_a_wrong_type_is_refused(tmp_path: Path, where: str, line: str, prefix: str) -> None:
    tables = {"tenant": "", "huke": HUKE, "k3": K3, "top": ""}
    if where == "tenant" and line.startswith("huke"):
        path = tmp_path / "tenants.toml"
        path.write_text(f'[tenants.shop-a]\n{line}\nk3 = {{ acct_id = "x" }}\n', encoding="utf-8")
    elif where == "top":
        path = tmp_path / "tenants.toml"
        path.write_text(line + "\n", encoding="utf-8")
    else:
        tables[where] += line + "\n"
        path = tenants_file(tmp_path, **tables)
    refused(path, prefix)


@pytest.mark.parametrize("value", [SECRET, 12345, ""])
def test_an_env_key_holding_no_variable_name_is_refused_without_showing_it(
    tmp_path: Path, value: object
) -> None:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    k3 = K3.replace('app_secret_env = "SHOP_A_K3_APP_SECRET"', f"app_secret_env = {shown}")
    message = refused(tenants_file(tmp_path, k3=k3), "tenant 'shop-a': k3.app_secret_env: must be")
    assert "not shown" in message
    if value:
        assert str(value) not in message


@pytest.mark.parametrize(
    ("line", "prefix", "shown"),
    [
        ('window = "6x"', "tenant 'shop-a': window: '6x' is not a duration", "30s, 90m"),
        ('overlap = "0s"', "tenant 'shop-a': overlap: '0s': the duration must be positive", ""),
        ('window = ""', "tenant 'shop-a': window: '' is not a duration", ""),
    ],
)
def test_a_bad_duration_is_refused(tmp_path: Path, line: str, prefix: str, shown: str) -> None:
    assert shown in refused(tenants_file(tmp_path, tenant=line), prefix)


def test_a_bad_duration_in_defaults_names_defaults(tmp_path: Path) -> None:
    refused(tenants_file(tmp_path, top='[defaults]\nwindow = "1 day"'), "defaults.window: ")


@pytest.mark.parametrize("reference", ["myproject.transforms", "a:b:c", "1mod:f", "mod:"])
def test_a_malformed_transform_reference_is_refused(tmp_path: Path, reference: str) -> None:
    message = refused(
        tenants_file(tmp_path, tenant=f'transform = "{reference}"'),
        "tenant 'shop-a': transform: must be 'module:function'",
    )
    assert repr(reference) in message


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("no_such_module_4711:f", "cannot import module 'no_such_module_4711'"),
        ("shop_transforms:nothing", "'shop_transforms' has no 'nothing'"),
        ("shop_transforms:NOT_CALLABLE", "'shop_transforms:NOT_CALLABLE' is int, not a function"),
    ],
)
def test_a_transform_that_cannot_be_imported_names_tenant_key_and_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: str, problem: str
) -> None:
    (tmp_path / "shop_transforms.py").write_text("NOT_CALLABLE = 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop_transforms", raising=False)
    path = tenants_file(tmp_path, tenant=f'transform = "{reference}"')
    tenant = load_tenants(path)["shop-a"]  # the import waits for the first use
    with pytest.raises(TenantsError) as caught:
        tenant.transform()
    assert str(caught.value).startswith(f"{path}: tenant 'shop-a': transform: ")
    assert problem in str(caught.value)
    with pytest.raises(TenantsError):
        tenant.sync_options()


def test_a_transform_is_imported_from_its_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop_transforms.py").write_text(
        "class Shop:\n    @staticmethod\n    def transform(trade):\n        return None\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop_transforms", raising=False)
    tenant = load_tenants(
        tenants_file(tmp_path, tenant='transform = "shop_transforms:Shop.transform"')
    )
    assert tenant["shop-a"].transform() is sys.modules["shop_transforms"].Shop.transform


@pytest.mark.parametrize("text", ["", "[tenants]\n", "[defaults]\nwindow = '1d'\n"])
def test_a_file_without_tenants_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(text, encoding="utf-8")
    assert "add a [tenants.NAME] table" in refused(path, "tenants: no tenant in the file")


@pytest.mark.parametrize(
    ("tables", "prefix"),
    [
        ({"huke": 'app_key_env = "K"'}, "tenant 'shop-a': huke.app_secret_env: missing"),
        (
            {"k3": K3.replace('acct_id = "5db25ac8d2b819"', "")},
            "tenant 'shop-a': k3.acct_id: missing",
        ),
        (
            {"k3": K3.replace('app_secret_env = "SHOP_A_K3_APP_SECRET"', "")},
            "tenant 'shop-a': k3.app_secret_env: missing: app_id_env and app_secret_env go",
        ),
        (
            {"k3": 'server_url = "http://e/k3cloud/"\nacct_id = "a"\nuser_name = "u"'},
            "tenant 'shop-a': k3.app_id_env: missing: give app_id_env + app_secret_env",
        ),
        (
            {"k3": K3 + 'password_env = "PW"'},
            "tenant 'shop-a': k3.password_env: give app_id_env + app_secret_env (signed login) "
            "or password_env, not both",
        ),
        (
            {"k3": K3.replace("http://erp.example/k3cloud/", "erp.example/k3cloud")},
            "tenant 'shop-a': k3.server_url: base URL must be an absolute http(s) URL",
        ),
        (
            {"huke": HUKE + f'base_url = "https://u:{SECRET}@huke.example/openapi"'},
            "tenant 'shop-a': huke.base_url: holds a user:password@ part",
        ),
        ({"tenant": 'state = "  "'}, "tenant 'shop-a': state: must not be empty"),
        ({"top": '[defaults]\nstate = "one.json"'}, "defaults.state: one file for every tenant"),
    ],
)
def test_other_mistakes_name_tenant_and_key(
    tmp_path: Path, tables: dict[str, str], prefix: str
) -> None:
    refused(tenants_file(tmp_path, **tables), prefix)


def test_a_tenant_without_its_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.shop-a]\nwindow = "1h"\n', encoding="utf-8")
    refused(path, "tenant 'shop-a': huke: missing: every tenant needs a huke table")


def test_two_tenants_on_one_state_file_are_refused(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, tenant='state = "s.json"')
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\n" + text.replace("shop-a", "shop-b").replace("s.json", "./s.json"))
    message = refused(path, "tenant 'shop-b': state: ")
    assert "is tenant 'shop-a''s state file too" in message


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", "a\\\\b"])
def test_a_name_that_is_no_file_name_cannot_fill_a_state_path(tmp_path: Path, name: str) -> None:
    """Found from outside: a tenant named ``../x`` made ``state/{tenant}.json`` point out of the
    state folder."""
    path = tenants_file(tmp_path, top='[defaults]\nstate = "state/{tenant}.json"')
    text = path.read_text(encoding="utf-8").replace("tenants.shop-a", f'tenants."{name}"')
    path.write_text(text, encoding="utf-8")
    message = refused(path, f"tenant '{name}': state: ")
    assert "cannot fill {tenant} in a path" in message


def test_such_a_name_may_have_a_state_of_its_own(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, tenant='state = "odd.json"')
    text = path.read_text(encoding="utf-8").replace("tenants.shop-a", 'tenants."a/b"')
    path.write_text(text, encoding="utf-8")
    assert load_tenants(path)["a/b"].state_path == str(tmp_path / "odd.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f'[tenants.shop-a]\napp_secret = "{SECRET}', "is not valid TOML: Unterminated string"),
        (b"\xff\xfe[tenants]", "is not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_toml_is_refused(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    path = tmp_path / "tenants.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    with pytest.raises(TenantsError) as caught:
        load_tenants(path)
    assert str(caught.value).startswith(f"{path} {problem}")
    assert SECRET not in str(caught.value)
    assert caught.value.__context__ is None  # nothing chained carries the file's text


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TenantsError, match=r"nope\.toml: cannot read the tenants file: "):
        load_tenants(tmp_path / "nope.toml")


# -- clients: secrets read when made, never shown --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "variables"),
    [
        ("huke_client", ["huke.app_key_env: environment variable SHOP_A_HUKE_APP_KEY"]),
        ("async_huke_client", ["huke.app_key_env: environment variable SHOP_A_HUKE_APP_KEY"]),
        ("k3_client", ["k3.app_id_env: environment variable SHOP_A_K3_APP_ID"]),
        ("async_k3_client", ["k3.app_id_env: environment variable SHOP_A_K3_APP_ID"]),
    ],
)
def test_a_missing_variable_is_named_when_a_client_is_made(
    tmp_path: Path, method: str, variables: list[str]
) -> None:
    path = tenants_file(tmp_path)
    tenant = load_tenants(path)["shop-a"]  # loading reads no variable
    environ = {
        name: value
        for name, value in ENV_VALUES.items()
        if name not in ("SHOP_A_HUKE_APP_KEY", "SHOP_A_K3_APP_ID")
    }
    environ["SHOP_A_K3_APP_ID"] = "   "  # blank counts as unset
    with pytest.raises(TenantsError) as caught:
        getattr(tenant, method)(environ=environ)
    message = str(caught.value)
    assert message == f"{path}: tenant 'shop-a': {variables[0]} is not set (or is empty)"
    for value in ENV_VALUES.values():
        assert value not in message


def test_every_missing_variable_of_a_client_is_named_at_once(tmp_path: Path) -> None:
    tenant = load_tenants(tenants_file(tmp_path))["shop-a"]
    with pytest.raises(TenantsError) as caught:
        tenant.k3_client(environ={})
    assert "SHOP_A_K3_APP_ID is not set" in str(caught.value)
    assert "; k3.app_secret_env: environment variable SHOP_A_K3_APP_SECRET" in str(caught.value)


def test_clients_get_the_settings_and_overrides_win(tmp_path: Path) -> None:
    huke = HUKE + 'base_url = "http://huke.example/openapi"\neid = "E7"'
    k3 = K3.replace("app_id_env", "lcid = 1033\norg_num = 3\napp_id_env")
    tenant = load_tenants(tenants_file(tmp_path, huke=huke, k3=k3))["shop-a"]
    with tenant.huke_client(environ=ENV_VALUES) as client:
        assert isinstance(client, HukeClient)
        assert (client.app_key, client.eid) == (ENV_VALUES["SHOP_A_HUKE_APP_KEY"], "E7")
        assert str(client.base_url) == "http://huke.example/openapi/"
    # an argument given needs no variable
    with tenant.k3_client(
        environ={}, app_id=K3_CREDENTIALS["app_id"], app_secret="given", lcid=2052
    ) as k3c:
        assert isinstance(k3c, K3CloudClient)
        assert (k3c.acct_id, k3c.user_name, k3c.lcid, k3c.org_num) == (
            "5db25ac8d2b819",
            "webapi",
            2052,
            3,
        )


async def test_async_clients_are_of_the_async_kind(tmp_path: Path) -> None:
    tenant = load_tenants(tenants_file(tmp_path))["shop-a"]
    async with tenant.async_huke_client(environ=ENV_VALUES) as huke:
        assert isinstance(huke, AsyncHukeClient)
    async with tenant.async_k3_client(environ=ENV_VALUES) as k3:
        assert isinstance(k3, AsyncK3CloudClient)


def test_clients_read_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = K3.split("app_id_env")[0] + 'password_env = "SHOP_A_K3_PASSWORD"'
    tenant = load_tenants(tenants_file(tmp_path, k3=password))["shop-a"]
    monkeypatch.setenv("SHOP_A_K3_PASSWORD", "ENVVAL-pw")
    with tenant.k3_client() as client:
        assert "ENVVAL-pw" not in repr(client)
    monkeypatch.delenv("SHOP_A_K3_PASSWORD")
    with pytest.raises(
        TenantsError, match=r"k3\.password_env: environment variable SHOP_A_K3_PASSWORD"
    ):
        tenant.k3_client()


def test_no_repr_shows_a_variable_name_or_value(tmp_path: Path) -> None:
    tenants = load_tenants(
        tenants_file(tmp_path, huke=HUKE + 'base_url = "https://huke.example/openapi"')
    )
    tenant = tenants["shop-a"]
    assert repr(tenant) == (
        "Tenant('shop-a', huke='huke.example', k3_account='http://erp.example/k3cloud/|5db25ac8d2b819')"
    )
    assert repr(tenants) == f"Tenants({str(tenants.path)!r}, names=['shop-a'])"
    for shown in (repr(tenant), repr(tenants), str(tenant)):
        assert "SHOP_A" not in shown


# -- a tenant's run, on the simulators ------------------------------------------------------------


def simulator_tenant(tmp_path: Path, tenant: str = "") -> Tenant:
    huke = HUKE + 'base_url = "http://huke.test/openapi"'
    k3 = (
        f'server_url = "http://k3.test/k3cloud/"\nacct_id = "{K3_CREDENTIALS["acct_id"]}"\n'
        f'user_name = "{K3_CREDENTIALS["user_name"]}"\napp_id_env = "SHOP_A_K3_APP_ID"\n'
        'app_secret_env = "SHOP_A_K3_APP_SECRET"\n'
    )
    return load_tenants(tenants_file(tmp_path, tenant=tenant, huke=huke, k3=k3))["shop-a"]


SIMULATOR_ENV = {
    "SHOP_A_HUKE_APP_KEY": HUKE_KEY,
    "SHOP_A_HUKE_APP_SECRET": HUKE_SECRET,
    "SHOP_A_K3_APP_ID": K3_CREDENTIALS["app_id"],
    "SHOP_A_K3_APP_SECRET": K3_CREDENTIALS["app_secret"],
}


def test_a_tenant_syncs_against_the_simulators(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stage = Stage()
    trades = stage.generate(30, buyers=10, missing_cid_every=None)
    tenant = simulator_tenant(tmp_path, tenant='window = "4h"')
    with (
        httpx.Client(transport=stage.fake_huke.transport()) as huke_http,
        httpx.Client(transport=stage.fake_k3.transport()) as k3_http,
        tenant.huke_client(environ=SIMULATOR_ENV, http_client=huke_http, retry=FAST) as huke,
        tenant.k3_client(environ=SIMULATOR_ENV, http_client=k3_http, retry=FAST) as k3,
    ):
        options = tenant.sync_options(
            start=stage.start, end=stage.end, progress=False, confirm_timeout=CONFIRM_TIMEOUT
        )
        report = sync_customers(huke, k3, options=options)
    assert report.ok
    assert (
        report.counts["created"] == len({t["buyerCid"] for t in trades}) == len(stage.customers())
    )
    # the tenant's window: 20 hours fetched as 4-hour windows
    assert len({r.content for r in stage.fake_huke.received}) >= 5
    for secret in (HUKE_SECRET, K3_CREDENTIALS["app_secret"]):
        assert secret not in caplog.text


async def test_a_tenant_syncs_with_the_async_engine(tmp_path: Path) -> None:
    stage = Stage()
    trades = stage.generate(20, buyers=6, missing_cid_every=None)
    tenant = simulator_tenant(tmp_path)
    async with (
        httpx.AsyncClient(transport=stage.fake_huke.transport()) as huke_http,
        httpx.AsyncClient(transport=stage.fake_k3.transport()) as k3_http,
        tenant.async_huke_client(environ=SIMULATOR_ENV, http_client=huke_http, retry=FAST) as huke,
        tenant.async_k3_client(environ=SIMULATOR_ENV, http_client=k3_http, retry=FAST) as k3,
    ):
        report = await async_sync_customers(
            huke,
            k3,
            options=tenant.sync_options(start=stage.start, end=stage.end, progress=False),
        )
    assert report.ok
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})


def test_sync_options_take_the_tenants_settings_and_keywords_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop_skip.py").write_text(
        "from huke_k3_bridge import SkipTrade\n\ndef skip(trade):\n    raise SkipTrade('no')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop_skip", raising=False)
    tenant = simulator_tenant(tmp_path, tenant='window = "2h"\ntransform = "shop_skip:skip"')
    state = FileState(tmp_path / "s.json", overlap=tenant.overlap)
    options = tenant.sync_options(start=1, end=2, state=state, batch_size=5)
    assert isinstance(options, SyncOptions)
    assert options.window == timedelta(hours=2)
    assert options.transform is sys.modules["shop_skip"].skip
    assert (options.start, options.end, options.state, options.batch_size) == (1, 2, state, 5)
    with pytest.raises(SkipTrade):
        options.transform({})
    given = tenant.sync_options(transform=trade_to_customer, window=None)
    assert (given.transform, given.window) == (trade_to_customer, None)


def test_environ_values_stay_out_of_os_environ(tmp_path: Path) -> None:
    tenant = load_tenants(tenants_file(tmp_path))["shop-a"]
    with tenant.huke_client(environ=ENV_VALUES):
        pass
    assert "SHOP_A_HUKE_APP_KEY" not in os.environ


def test_the_file_on_the_docs_page_loads(tmp_path: Path) -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "tenants.md"
    blocks = page.read_text(encoding="utf-8").split("```toml\n")[1:]
    assert blocks, "docs/tenants.md shows the file in a ```toml block"
    path = tmp_path / "tenants.toml"
    path.write_text(blocks[0].split("```")[0], encoding="utf-8")
    tenants = load_tenants(path)
    assert list(tenants) == ["shop-a", "shop-b"]
    a, b = tenants.values()
    assert a.k3_account == b.k3_account  # one ERP database, as the page says
    assert (a.window, b.window) == (timedelta(hours=6), timedelta(days=1))
    assert b.state_path == str(tmp_path / "state" / "shop-b.json")


def test_importing_the_bridge_loads_no_tenants_machinery() -> None:
    """Only programs running several shops pay for the tenants module and the TOML reader."""
    code = (
        "import sys, huke_k3_bridge\n"
        "print(sorted(m for m in sys.modules if 'tenants' in m or m in ('tomllib', 'tomli')))\n"
        "huke_k3_bridge.load_tenants\n"
        "print('huke_k3_bridge.tenants' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "[]\nTrue\n"
