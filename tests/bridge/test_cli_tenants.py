"""``huke-k3 sync --tenants FILE --tenant NAME``: one tenant of a file, with its settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from huke_k3_bridge import FileState
from huke_k3_bridge.__main__ import main

from .conftest import HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS, Stage

#: What the tenant's variables hold; none may be printed, logged or written anywhere visible.
SHOP_A_ENV = {
    "SHOP_A_HUKE_APP_KEY": HUKE_KEY,
    "SHOP_A_HUKE_APP_SECRET": HUKE_SECRET,
    "SHOP_A_K3_APP_ID": K3_CREDENTIALS["app_id"],
    "SHOP_A_K3_APP_SECRET": K3_CREDENTIALS["app_secret"],
}
SECRETS = (HUKE_SECRET, K3_CREDENTIALS["app_secret"])
PATIENCE = 60.0


def write_tenants(folder: Path, huke_url: str, k3_url: str, shop_a: str = "") -> Path:
    """``shop-a`` on the simulators at ``huke_url``/``k3_url``; ``shop-b`` elsewhere, with
    variables nobody sets (running shop-a must not need them)."""
    path = folder / "tenants.toml"
    path.write_text(
        f"""
[defaults]
state = "state/{{tenant}}.json"

[tenants.shop-a]
{shop_a}

[tenants.shop-a.huke]
app_key_env = "SHOP_A_HUKE_APP_KEY"
app_secret_env = "SHOP_A_HUKE_APP_SECRET"
base_url = "{huke_url}/openapi"

[tenants.shop-a.k3]
server_url = "{k3_url}/k3cloud/"
acct_id = "{K3_CREDENTIALS["acct_id"]}"
user_name = "{K3_CREDENTIALS["user_name"]}"
app_id_env = "SHOP_A_K3_APP_ID"
app_secret_env = "SHOP_A_K3_APP_SECRET"

[tenants.shop-b.huke]
app_key_env = "SHOP_B_HUKE_APP_KEY"
app_secret_env = "SHOP_B_HUKE_APP_SECRET"

[tenants.shop-b.k3]
server_url = "http://127.0.0.1:9/k3cloud/"
acct_id = "other"
user_name = "u"
password_env = "SHOP_B_K3_PASSWORD"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def shop_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of shop-a only: no HUKE_*/K3CLOUD_* settings to fall back on."""
    for name in list(os.environ):
        if name.startswith(("HUKE_", "K3CLOUD_", "SHOP_")):
            monkeypatch.delenv(name)
    for name, value in SHOP_A_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_sync_one_tenant_end_to_end_as_a_subprocess(tmp_path: Path) -> None:
    stage = Stage()
    trades = stage.generate(40, buyers=12, missing_cid_every=None)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUKE_", "K3CLOUD_", "SHOP_"))}
    env.update(SHOP_A_ENV)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        path = write_tenants(tmp_path, huke_server.url, k3_server.url)
        command = [sys.executable, "-m", "huke_k3_bridge", "-vv", "sync"]
        command += ["--tenants", str(path), "--tenant", "shop-a", "--since", "20h", "--json"]
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    buyers = {t["buyerCid"] for t in trades}
    assert report["ok"] is True
    assert report["total"] == 40
    assert report["counts"]["created"] == len(buyers)
    assert len(stage.customers()) == len(buyers)
    # the tenant's state file, relative to the tenants file
    assert json.loads((tmp_path / "state" / "shop-a.json").read_text())["watermark_ms"] > 0
    assert "DEBUG huke_client" in done.stderr  # the request log was on, and shows no secret
    for secret in SECRETS:
        assert secret not in done.stdout
        assert secret not in done.stderr


def test_the_tenants_window_transform_and_state_are_used(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shop_a_transforms.py").write_text(
        "from huke_k3_bridge import SkipTrade\n\ndef skip(trade):\n    raise SkipTrade('shop a')\n",
        encoding="utf-8",
    )
    shop_env.syspath_prepend(str(tmp_path))
    shop_env.delitem(sys.modules, "shop_a_transforms", raising=False)
    stage = Stage()
    stage.generate(10, buyers=4, missing_cid_every=None)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        settings = 'window = "4h"\ntransform = "shop_a_transforms:skip"\nstate = "a.json"'
        path = write_tenants(tmp_path, huke_server.url, k3_server.url, settings)
        argv = ["sync", "--tenants", str(path), "--tenant", "shop-a", "--since", "20h", "--json"]
        assert main(argv) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["counts"]["skipped"] == 10  # the tenant's transform
        assert stage.customers() == {}
        windows = {r.content for r in stage.fake_huke.received}
        assert len(windows) >= 5  # 20 hours as 4-hour windows
        assert (tmp_path / "a.json").exists()  # its state
        stage.fake_huke.received.clear()
        # --window and --state win over the tenant's
        other = tmp_path / "other.json"
        assert main([*argv, "--window", "1d", "--state", str(other)]) == 0
        capsys.readouterr()
        assert len({r.content for r in stage.fake_huke.received}) == 1
        assert other.exists()


def test_async_engine_with_a_tenant(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = Stage()
    trades = stage.generate(20, buyers=6, missing_cid_every=None)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        path = write_tenants(tmp_path, huke_server.url, k3_server.url)
        argv = ["sync", "--async", "--tenants", str(path), "--tenant", "shop-a", "--json"]
        assert main([*argv, "--since", "20h"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["created"] == len({t["buyerCid"] for t in trades})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--tenant", "shop-a"], "huke-k3: --tenant needs --tenants FILE"),
        (["--tenants", "{path}"], "huke-k3: --tenants needs --tenant NAME, one of the tenants of "),
        (
            ["--tenants", "{path}", "--tenant", "shop-z"],
            "huke-k3: {path}: tenant 'shop-z': no [tenants.shop-z] table",
        ),
        (
            ["--tenants", "{path}", "--tenant", "shop-a", "--k3-ini", "conf.ini"],
            "huke-k3: --k3-ini does not go with --tenants",
        ),
    ],
)
def test_usage_errors_exit_2(
    shop_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    path = write_tenants(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    argv = ["sync", *(part.replace("{path}", str(path)) for part in extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.replace("{path}", str(path)))
    if "--tenants" in extra and "--k3-ini" not in extra:
        assert err.rstrip().endswith("shop-a, shop-b)" if "shop-z" in extra else "shop-a, shop-b")


def test_a_bad_file_exits_2_naming_file_tenant_and_key(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tenants(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", 'window = "6x"')
    assert main(["sync", "--tenants", str(path), "--tenant", "shop-b"]) == 2
    assert capsys.readouterr().err.startswith(f"huke-k3: {path}: tenant 'shop-a': window: '6x'")


def test_a_transform_that_cannot_be_imported_exits_2(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tenants(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", 'transform = "nope_4711:f"'
    )
    assert main(["sync", "--tenants", str(path), "--tenant", "shop-a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"huke-k3: {path}: tenant 'shop-a': transform: cannot import module")


@pytest.mark.parametrize("engine", [[], ["--async"]])
def test_missing_variables_exit_2_naming_them_not_their_values(
    shop_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    engine: list[str],
) -> None:
    shop_env.delenv("SHOP_A_HUKE_APP_SECRET")
    shop_env.delenv("SHOP_A_K3_APP_ID")
    path = write_tenants(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    assert main(["sync", *engine, "--tenants", str(path), "--tenant", "shop-a"]) == 2
    err = capsys.readouterr().err
    prefix = f"huke-k3: configuration error: {{}}: {path}: tenant 'shop-a': "
    assert prefix.format("Huke") + "huke.app_secret_env: environment variable " in err
    assert (
        prefix.format("K/3 Cloud") + "k3.app_id_env: environment variable SHOP_A_K3_APP_ID" in err
    )
    for value in SHOP_A_ENV.values():
        assert value not in err


def test_wait_takes_the_tenants_state(
    shop_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tenants(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    state = tmp_path / "state" / "shop-a.json"
    state.parent.mkdir()
    with ThreadPoolExecutor(1) as pool:  # another run holds the tenant's state
        release = pool.submit(FileState(state).acquire).result(timeout=PATIENCE)
    try:
        argv = ["sync", "--tenants", str(path), "--tenant", "shop-a", "--wait", "0.2"]
        assert main(argv) == 2
        assert f"state file {state} is still in use after waiting 0.2s" in capsys.readouterr().err
    finally:
        release()
    # without a state of its own, the tenant cannot --wait
    path.write_text(path.read_text(encoding="utf-8").replace('state = "state/{tenant}.json"', ""))
    assert main(argv) == 2
    assert "--wait needs --state" in capsys.readouterr().err
