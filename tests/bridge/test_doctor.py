"""``huke-k3 doctor`` end to end, over loopback sockets, on the simulators: all good, then each
failure the first day with real credentials meets (issue 12)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from huke_client import HukeClient, SearchOptions
from huke_client.testing import FakeHuke, Fault, envelope_error, fake_trade, generate_trades
from huke_k3_bridge import CustomerTransform
from huke_k3_bridge._cli import main
from huke_k3_bridge._doctor import doctor
from k3cloud_client import K3CloudClient
from k3cloud_client.testing import FakeK3Cloud

from .conftest import FAST, HOUR_MS, HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS


def _trades(now_ms: int, count: int = 12) -> list[dict[str, Any]]:
    return list(
        generate_trades(count, start=now_ms - 10 * HOUR_MS, end=now_ms - HOUR_MS, buyers=5, seed=3)
    )


@contextlib.contextmanager
def _served(
    env: pytest.MonkeyPatch,
    *,
    huke: Callable[..., FakeHuke] = FakeHuke,
    k3: Callable[..., FakeK3Cloud] = FakeK3Cloud,
    huke_secret: str = HUKE_SECRET,
    k3_secret: str = K3_CREDENTIALS["app_secret"],
    trades: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[FakeHuke, FakeK3Cloud]]:
    now_ms = int(time.time() * 1000)
    fake_huke = huke(HUKE_KEY, HUKE_SECRET, trades=_trades(now_ms) if trades is None else trades)
    fake_k3 = k3(**K3_CREDENTIALS)
    with fake_huke.serve() as huke_server, fake_k3.serve() as k3_server:
        env.setenv("HUKE_APP_KEY", HUKE_KEY)
        env.setenv("HUKE_APP_SECRET", huke_secret)
        env.setenv("HUKE_BASE_URL", huke_server.url + "/openapi")
        env.setenv("K3CLOUD_SERVER_URL", k3_server.url + "/k3cloud/")
        env.setenv("K3CLOUD_ACCT_ID", K3_CREDENTIALS["acct_id"])
        env.setenv("K3CLOUD_USER_NAME", K3_CREDENTIALS["user_name"])
        env.setenv("K3CLOUD_APP_ID", K3_CREDENTIALS["app_id"])
        env.setenv("K3CLOUD_APP_SECRET", k3_secret)
        yield fake_huke, fake_k3


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, dict[str, Any]]:
    """``huke-k3 doctor ARGV`` twice: as text, and as JSON (parsed); the same exit status."""
    status = main(["doctor", "--max-clock-skew", "60", *argv])
    text = capsys.readouterr().out
    json_status = main(["doctor", "--json", *argv])
    report = json.loads(capsys.readouterr().out)
    assert json_status == status
    assert report["exit_code"] == status
    return status, text, report


def _status(report: dict[str, Any], check_id: str) -> str:
    return next(c["status"] for c in report["checks"] if c["id"] == check_id)


SECRETS = (HUKE_SECRET, K3_CREDENTIALS["app_secret"], K3_CREDENTIALS["app_id"].split("_")[1])


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_all_good_exits_0_with_every_required_check_passed(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _served(clean_env):
        status, text, report = _run(capsys)
    assert status == 0, text
    assert "✗" not in text
    assert report["ok"] is True
    assert report["failed"] == []
    for check_id in (
        "settings.huke",
        "settings.k3",
        "network.huke.dns",
        "network.huke.tcp",
        "network.huke.clock",
        "network.k3.clock",
        "huke.auth",
        "huke.shape",
        "huke.buyer",
        "k3.auth",
        "k3.permission",
        "k3.org",
        "k3.dry_run",
    ):
        assert _status(report, check_id) == "pass", check_id
    assert "✓ Huke authentication" in text
    # Where each setting came from, the secrets masked.
    sources = {(s["scope"], s["name"]): s for s in report["settings"]}
    assert sources[("huke", "app_secret")]["source"] == "environment HUKE_APP_SECRET"
    assert sources[("k3", "acct_id")]["source"] == "environment K3CLOUD_ACCT_ID"
    _assert_no_secret(text, json.dumps(report, ensure_ascii=False))


def test_wrong_huke_secret(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _served(clean_env, huke_secret="not-the-secret"):
        status, text, report = _run(capsys)
    assert status == 1
    assert "huke.auth" in report["failed"]
    assert "FAILED: Huke authentication" in text.splitlines()[0]
    assert _status(report, "huke.shape") == "skip"
    assert "not-the-secret" not in text


def test_wrong_k3_secret(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with _served(clean_env, k3_secret="0" * 32):
        status, text, report = _run(capsys)
    assert status == 1
    assert report["failed"] == ["k3.auth"]
    assert _status(report, "k3.permission") == "skip"
    assert "K3CLOUD_APP_SECRET" in text  # the fix names the setting


def test_skewed_clock(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def ahead(*args: Any, **kwargs: Any) -> FakeHuke:
        return FakeHuke(*args, clock=lambda: time.time() + 3600, **kwargs)

    with _served(clean_env, huke=ahead):
        status, text, report = _run(capsys)
    assert status == 1
    assert "network.huke.clock" in report["failed"]
    assert "huke.auth" in report["failed"]  # Huke signs with the time
    assert _status(report, "network.k3.clock") == "pass"
    assert text.splitlines()[0] == "huke-k3 doctor: FAILED: Huke clock, Huke authentication"
    assert any(line.startswith("  ✗ Huke clock: ") for line in text.splitlines())


def test_unknown_organisation(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def other_org(**kwargs: Any) -> FakeK3Cloud:
        return FakeK3Cloud(organizations={1: "200"}, **kwargs)

    with _served(clean_env, k3=other_org):
        status, _text, report = _run(capsys)
    assert status == 1
    assert "k3.org" in report["failed"]
    org = next(c for c in report["checks"] if c["id"] == "k3.org")
    assert "100" in org["summary"]
    assert "200" in org["summary"]
    assert org["fix"]


def test_no_permission_to_query_customers(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _served(clean_env) as (_, fake_k3):
        fake_k3.deny("BD_Customer", "query")
        status, text, report = _run(capsys)
    assert status == 1
    assert report["failed"] == ["k3.permission"]
    assert _status(report, "k3.auth") == "pass"
    assert "FAILED: Permission to query BD_Customer" in text


def test_unfamiliar_reply_shape_then_items_key(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def odd_shape(*args: Any, **kwargs: Any) -> FakeHuke:
        return FakeHuke(*args, items_key="tradeList", **kwargs)

    with _served(clean_env, huke=odd_shape):
        status, text, report = _run(capsys)
        assert status == 1
        assert "huke.shape" in report["failed"]
        assert "tradeList" in text
        status, text, report = _run(capsys, "--items-key", "tradeList")
    assert status == 0, text
    assert _status(report, "huke.shape") == "pass"


def test_missing_settings_are_failed_checks_not_a_crash(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text, report = _run(capsys, "--no-network")
    assert status == 1
    assert {"settings.huke", "settings.k3"} <= set(report["failed"])
    assert "HUKE_APP_SECRET" in text
    assert "K3CLOUD_SERVER_URL" in text


def test_a_server_quoting_the_secret_back_does_not_leak_it(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _served(clean_env) as (fake_huke, _):
        fake_huke.inject(envelope_error(40100, f"bad secret {HUKE_SECRET}"), times=10)
        status, text, report = _run(capsys)
    assert status == 1
    _assert_no_secret(text, json.dumps(report, ensure_ascii=False))


def test_python_api_with_given_clients_and_html() -> None:
    now_ms = int(time.time() * 1000)
    trades = _trades(now_ms)
    trades.append(fake_trade(create_time=now_ms - HOUR_MS, tid="NO-CID", buyer_cid=None))
    fake_huke = FakeHuke(HUKE_KEY, HUKE_SECRET, trades=trades, items_key="rows2")
    fake_k3 = FakeK3Cloud(**K3_CREDENTIALS)
    uids = {str(t["buyerCid"]): "UID" for t in trades if t.get("buyerCid")}
    with (
        fake_huke.serve() as huke_server,
        fake_k3.serve() as k3_server,
        HukeClient(
            HUKE_KEY, HUKE_SECRET, base_url=huke_server.url + "/openapi", retry=FAST
        ) as huke,
        K3CloudClient(k3_server.url + "/k3cloud/", retry=FAST, **K3_CREDENTIALS) as k3,
    ):
        report = doctor(
            huke,
            k3,
            transform=CustomerTransform(description=uids),
            search=SearchOptions(items_key="rows2"),
        )
        # The clients given stay open: the doctor closes only the clients it made.
        assert k3.execute_bill_query("BD_Customer", ["FNumber"]) == []
    assert report.ok, str(report)
    assert report["k3.description"].status == "pass"
    dry = report["k3.dry_run"]
    assert dry.details["counts"]["skipped"] == 1
    assert any("buyerCid" in line for line in dry.details["lines"])
    html = report._repr_html_()
    assert "Huke authentication" in html
    assert "<table" in html
    assert len(html) < 64_000
    assert repr(report).startswith("DoctorReport(ok=True")


def test_demo_doctor_passes_every_required_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--doctor", "--trades", "20", "--buyers", "6"]) == 0
    out = capsys.readouterr().out
    assert "huke-k3 doctor: all " in out
    assert "every required one passed" in out
    assert "✗" not in out
    assert "✓ Description lookup: configured" in out  # the demo's user-owned data set


def test_doctor_of_a_tenant_shows_the_tenants_file_as_the_source(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with _served(clean_env) as _:
        tenants = tmp_path / "tenants.toml"
        tenants.write_text(
            f"""
[tenants.north.huke]
app_key_env = "NORTH_KEY"
app_secret_env = "NORTH_SECRET"
base_url = "{os.environ["HUKE_BASE_URL"]}"

[tenants.north.k3]
server_url = "{os.environ["K3CLOUD_SERVER_URL"]}"
acct_id = "{K3_CREDENTIALS["acct_id"]}"
user_name = "{K3_CREDENTIALS["user_name"]}"
app_id_env = "NORTH_APP_ID"
app_secret_env = "NORTH_APP_SECRET"
""",
            encoding="utf-8",
        )
        clean_env.setenv("NORTH_KEY", HUKE_KEY)
        clean_env.setenv("NORTH_SECRET", HUKE_SECRET)
        clean_env.setenv("NORTH_APP_ID", K3_CREDENTIALS["app_id"])
        clean_env.setenv("NORTH_APP_SECRET", K3_CREDENTIALS["app_secret"])
        argv = ["--tenants", str(tenants), "--tenant", "north", "--no-network"]
        status, text, report = _run(capsys, *argv)
        assert main(["doctor", "--tenants", str(tenants), "--tenant", "south"]) == 2
        assert "south" in capsys.readouterr().err
    assert status == 0, text
    sources = {(s["scope"], s["name"]): s["source"] for s in report["settings"]}
    assert sources[("huke", "app_secret")].startswith("environment NORTH_SECRET (named by")
    assert sources[("bridge", "transform")].startswith("tenants file")
    _assert_no_secret(text)


def test_sync_reads_an_unfamiliar_reply_shape_with_items_key(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def odd_shape(*args: Any, **kwargs: Any) -> FakeHuke:
        return FakeHuke(*args, items_key="tradeList", **kwargs)

    with _served(clean_env, huke=odd_shape):
        assert main(["sync", "--since", "20h", "--no-progress", "--json"]) == 1
        assert "tradeList" in capsys.readouterr().out
        argv = ["sync", "--since", "20h", "--no-progress", "--json", "--items-key", "tradeList"]
        assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["created"] == 5


def _query_error(msg_code: int, message: str) -> Fault:
    """ExecuteBillQuery's error, sent as a data row (HTTP 200), as K/3 Cloud sends it."""
    status = {"IsSuccess": False, "MsgCode": msg_code, "ErrorCode": 500}
    status["Errors"] = [{"FieldName": "", "Message": message, "DIndex": 0}]
    return Fault.reply(json.dumps([[{"Result": {"ResponseStatus": status}}]]).encode())


def test_a_session_lost_on_the_first_call_fails_authentication(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _served(clean_env) as (_, fake_k3):
        fake_k3.inject(_query_error(1, "会话信息已丢失，请重新登录"), times=100)
        status, _text, report = _run(capsys, "--no-network")
    assert status == 1
    assert report["failed"] == ["k3.auth"]
    assert _status(report, "k3.permission") == "skip"


def test_a_transform_that_makes_no_customer_fails_the_dry_run(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with _served(clean_env):
        transform = CustomerTransform().with_fields(FNumber="{{customerId}}")
        report = doctor(transform=transform, network=False)
    assert report["k3.dry_run"].status == "fail"
    assert report.failed == (report["k3.dry_run"],)
    assert report.exit_code == 1


def test_the_dry_run_reasons_mask_the_buyers_ids(clean_env: pytest.MonkeyPatch) -> None:
    phone = "13812345678"
    now_ms = int(time.time() * 1000)
    trades = [fake_trade(create_time=now_ms - HOUR_MS, tid="T1", buyer_cid=phone)]
    with _served(clean_env, trades=trades) as (_, fake_k3):
        # The first two queries (permission, organisations) pass; the dry run's lookup fails.
        fake_k3.inject(_query_error(9, f"字段不存在: FNumber = '{phone}'"), times=100, after=2)
        report = doctor(network=False)
    assert report["k3.dry_run"].status == "fail"
    assert "1•••(11)" in str(report)
    for output in (str(report), report.to_json(), report._repr_html_()):
        assert phone not in output


def test_saving_is_said_to_be_untried(clean_env: pytest.MonkeyPatch) -> None:
    with _served(clean_env) as (_, fake_k3):
        fake_k3.deny("BD_Customer", "save")
        report = doctor(network=False)
    save = report["k3.save"]
    assert save.status == "info"
    assert "not tried" in save.summary
    assert "审核" in save.summary


@pytest.mark.parametrize("hours", ["1e308", "87600000", "0", "nan"])
def test_hours_out_of_range_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    assert main(["doctor", "--hours", hours]) == 2
    assert "--hours" in capsys.readouterr().err


def test_a_server_that_never_answers_is_given_up_within_the_doctors_timeout(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with _served(clean_env) as (fake_huke, _):
        fake_huke.inject(Fault.timeout(), times=100)
        started = time.monotonic()
        report = doctor(network=False, timeout=0.5)
        elapsed = time.monotonic() - started
    assert "huke.auth" in [check.id for check in report.failed]
    assert elapsed < 4.0  # two attempts of 0.5 s and a short wait; the server hangs 5 s each


def test_the_scheme_transform_is_checked_even_without_a_sample(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """No trade in the window: the default mapping's organisation (100) is still looked up, and
    its missing description lookup still said."""
    with _served(clean_env, trades=[]):
        report = doctor(network=False)
    assert report["k3.org"].status == "pass"
    assert "100" in report["k3.org"].summary
    assert report["k3.description"].status == "warn"
    assert "not configured" in report["k3.description"].summary


@contextlib.contextmanager
def _trickling_server() -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with a head, then one body byte every
    0.3 s: each read well within any timeout, the reply never complete. Its URL."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            conn.sendall(b"Content-Length: 100000\r\n\r\n{")
            while not stop.wait(0.3):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize("service", ["huke", "k3"])
def test_a_reply_that_trickles_in_ends_the_checks_within_their_budget(
    clean_env: pytest.MonkeyPatch, service: str
) -> None:
    with _served(clean_env), _trickling_server() as url:
        if service == "huke":
            clean_env.setenv("HUKE_BASE_URL", url + "/openapi")
        else:
            clean_env.setenv("K3CLOUD_SERVER_URL", url + "/k3cloud/")
        started = time.monotonic()
        report = doctor(network=False, timeout=0.5)
        elapsed = time.monotonic() - started
    assert f"{service}.auth" in [check.id for check in report.failed]
    assert "did not end within" in report[f"{service}.auth"].summary
    assert elapsed < 8.0


def test_a_transform_taking_the_number_elsewhere_is_judged_by_its_dry_run(
    clean_env: pytest.MonkeyPatch,
) -> None:
    now_ms = int(time.time() * 1000)
    trades = _trades(now_ms)
    for trade in trades:
        trade["userId"] = "U-" + trade.pop("buyerCid")
    with _served(clean_env, trades=trades):
        default = doctor(network=False)
        by_user_id = CustomerTransform().with_fields(FNumber="{{userId}}")
        mapped = doctor(network=False, transform=by_user_id)
    assert "huke.buyer" in [check.id for check in default.failed]
    assert "userId" in (default["huke.buyer"].fix or "")
    assert mapped.ok, str(mapped)
    assert mapped["huke.buyer"].status == "info"
    assert mapped["k3.dry_run"].details["counts"]["created"] == 5


def test_the_settings_fixes_name_the_tenants_variables_and_the_conf_ini(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        """
[tenants.north.huke]
app_key_env = "NORTH_KEY"
app_secret_env = "NORTH_SECRET"

[tenants.north.k3]
server_url = "http://127.0.0.1:9/k3cloud/"
acct_id = "a"
user_name = "u"
app_id_env = "NORTH_APP_ID"
app_secret_env = "NORTH_APP_SECRET"
""",
        encoding="utf-8",
    )
    argv = ["--tenants", str(tenants), "--tenant", "north", "--no-network"]
    _, _, report = _run(capsys, *argv)
    fixes = {check["id"]: check["fix"] for check in report["checks"]}
    assert "NORTH_KEY" in fixes["settings.huke"]
    assert "HUKE_APP_KEY" not in fixes["settings.huke"]
    assert "NORTH_APP_ID" in fixes["settings.k3"]
    assert "K3CLOUD_" not in fixes["settings.k3"]
    ini = tmp_path / "conf.ini"
    ini.write_bytes("[config]\nx-kdapi-acctid = 帐套\n".encode("gbk"))
    _, _, report = _run(capsys, "--k3-ini", str(ini), "--no-network")
    k3_fix = next(c["fix"] for c in report["checks"] if c["id"] == "settings.k3")
    assert str(ini) in k3_fix
    assert "--k3-ini" not in k3_fix
