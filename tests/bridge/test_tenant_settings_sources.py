"""A tenant's clients say where each setting came from: the tenants file's key for a value, the
variable it names for a secret, ``argument`` for an override; and show no secret."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import pytest

from huke_k3_bridge import Tenant, load_tenants
from k3cloud_client.signing import app_id_secrets

APP_ID = "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ"
ENV = {
    "NORTH_KEY": "north-app-key-3f9e",
    "NORTH_SECRET": "north-app-secret-77c1",
    "NORTH_APP_ID": APP_ID,
    "NORTH_K3_SECRET": "north-k3-secret-a0b2",
    "NORTH_PW": "north-password-6d4d",
}
SECRETS = (
    ENV["NORTH_SECRET"],
    ENV["NORTH_K3_SECRET"],
    ENV["NORTH_PW"],
    *app_id_secrets(APP_ID),
)
FILE = """
[tenants.north.huke]
app_key_env = "NORTH_KEY"
app_secret_env = "NORTH_SECRET"
base_url = "http://huke.test/openapi"

[tenants.north.k3]
server_url = "http://erp.test/k3cloud/"
acct_id = "5db25ac8d2b819"
user_name = "webapi"
{credentials}
lcid = 1033
"""
SIGNED = 'app_id_env = "NORTH_APP_ID"\napp_secret_env = "NORTH_K3_SECRET"'


def north(tmp_path: Path, credentials: str = SIGNED) -> Tenant:
    path = tmp_path / "shops.toml"
    path.write_text(FILE.format(credentials=credentials), encoding="utf-8")
    return load_tenants(path)["north"]


def described(client: Any) -> dict[str, tuple[str, str]]:
    settings = client.describe_settings()
    shown = repr(settings) + "\n".join(map(str, settings))
    for secret in SECRETS:
        half = len(secret) // 2
        quoted = urllib.parse.quote(secret, safe="")
        for form in {secret, secret.upper(), quoted, json.dumps(secret)[1:-1]}:
            assert form not in shown, form
        assert secret[:half] not in shown
        assert secret[half:] not in shown
    return {s.name: (s.value, s.source) for s in settings}


def close(client: Any) -> None:
    if hasattr(client, "aclose"):
        anyio.run(client.aclose)
    else:
        client.close()


@pytest.mark.parametrize("factory", ["huke_client", "async_huke_client"])
def test_a_tenants_huke_client_names_the_files_key_or_the_variable_it_names(
    tmp_path: Path, factory: str
) -> None:
    tenant = north(tmp_path)
    where = f"tenants file {str(tmp_path / 'shops.toml')!r} [tenants.north]"
    client = getattr(tenant, factory)(environ=ENV)
    try:
        settings = described(client)
    finally:
        close(client)
    assert settings["base_url"] == ("http://huke.test/openapi/", f"{where} huke.base_url")
    assert settings["app_key"] == (
        "nort***",
        f"environment NORTH_KEY (named by {where} huke.app_key_env)",
    )
    assert settings["app_secret"] == (
        "***",
        f"environment NORTH_SECRET (named by {where} huke.app_secret_env)",
    )
    assert settings["eid"] == ("not set", "default")
    assert settings["timeout"][1] == "default"


@pytest.mark.parametrize("factory", ["k3_client", "async_k3_client"])
def test_a_tenants_k3_client_names_the_files_key_or_the_variable_it_names(
    tmp_path: Path, factory: str
) -> None:
    tenant = north(tmp_path)
    where = f"tenants file {str(tmp_path / 'shops.toml')!r} [tenants.north]"
    client = getattr(tenant, factory)(environ=ENV)
    try:
        settings = described(client)
    finally:
        close(client)
    assert settings == {
        "server_url": ("http://erp.test/k3cloud/", f"{where} k3.server_url"),
        "acct_id": ("5db25ac8d2b819", f"{where} k3.acct_id"),
        "user_name": ("webapi", f"{where} k3.user_name"),
        "auth": ("signed headers", "default"),
        "app_id": ("204399_***", f"environment NORTH_APP_ID (named by {where} k3.app_id_env)"),
        "app_secret": (
            "***",
            f"environment NORTH_K3_SECRET (named by {where} k3.app_secret_env)",
        ),
        "lcid": ("1033", f"{where} k3.lcid"),
        "org_num": ("0", "default"),
        "timeout": ("connect 10s, read 30s, write 30s, pool 30s", "default"),
        "max_retries": ("2", "default"),
    }


def test_a_password_tenant_names_its_password_variable(tmp_path: Path) -> None:
    tenant = north(tmp_path, 'password_env = "NORTH_PW"')
    with tenant.k3_client(environ=ENV) as client:
        settings = described(client)
    assert settings["auth"] == ("password", "default")
    assert settings["password"][0] == "***"
    assert settings["password"][1].startswith("environment NORTH_PW (named by tenants file")


def test_overrides_of_a_tenants_clients_are_arguments(tmp_path: Path) -> None:
    tenant = north(tmp_path)
    # The secret given in code needs no variable: NORTH_SECRET is not read.
    env = {k: v for k, v in ENV.items() if k != "NORTH_SECRET"}
    with tenant.huke_client(
        environ=env, app_secret=ENV["NORTH_SECRET"], base_url="http://other.test/", timeout=4
    ) as huke:
        settings = described(huke)
    assert settings["app_secret"] == ("***", "argument")
    assert settings["base_url"] == ("http://other.test/", "argument")
    assert settings["timeout"] == ("4s", "argument")
    assert settings["app_key"][1].startswith("environment NORTH_KEY")
    with tenant.k3_client(environ=ENV, setting_sources={"acct_id": "flag --acct"}) as k3:
        assert described(k3)["acct_id"] == ("5db25ac8d2b819", "flag --acct")


def test_a_tenant_made_in_code_names_the_tenant_instead_of_a_file(tmp_path: Path) -> None:
    from huke_k3_bridge.tenants import HukeSettings, K3Settings

    tenant = Tenant(
        name="south",
        huke=HukeSettings(app_key_env="NORTH_KEY", app_secret_env="NORTH_SECRET", eid="E9"),
        k3=K3Settings(server_url="http://erp.test/", acct_id="a", user_name="u"),
    )
    with tenant.huke_client(environ=ENV) as huke:
        settings = described(huke)
    assert settings["eid"] == ("E9", "tenant 'south' huke.eid")
    assert settings["app_key"][1] == (
        "environment NORTH_KEY (named by tenant 'south' huke.app_key_env)"
    )
