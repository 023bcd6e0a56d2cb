"""``huke-k3``: demo, sync (environment, conf.ini, exit codes), argument parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from huke_client import to_epoch_ms
from huke_client.testing import Fault, fake_trade
from huke_k3_bridge import FileState
from huke_k3_bridge.__main__ import main
from huke_k3_bridge._cli import build_parser, parse_duration, parse_time

from .conftest import HOUR_MS, HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS, Stage


def test_demo_exits_0_and_second_run_creates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    first, second = out.split("Second run (same window, same trades):")
    assert "First run:" in first
    assert ": OK" in first
    assert " 0 created," not in first
    assert "trade DEMO-NO-CID" in first  # the trade without buyerCid, skipped with its reason
    assert "trade has no buyerCid" in first
    assert "different names" in first
    assert " 0 created, 0 updated, " in second
    assert out.rstrip().endswith("The second run created 0.")
    assert "no number twice" in out
    # FDescription comes from the user-owned collection; the buyer missing from it gets none.
    samples = second.split("FDescription, status):")[1].splitlines()[1:5]
    assert any("  UID-0" in line and line.endswith("  C") for line in samples)
    assert any("  -  C" in line for line in samples)


def test_demo_async(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--async", "--trades", "30", "--buyers", "8"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("The second run created 0.")


def test_sync_with_empty_environment_names_the_missing_settings(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync"]) == 2
    err = capsys.readouterr().err
    for name in (
        "HUKE_APP_KEY",
        "HUKE_APP_SECRET",
        "K3CLOUD_SERVER_URL",
        "K3CLOUD_ACCT_ID",
        "K3CLOUD_USER_NAME",
    ):
        assert name in err


def test_sync_missing_k3_credentials_named(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("HUKE_APP_KEY", "k")
    clean_env.setenv("HUKE_APP_SECRET", "s")
    clean_env.setenv("K3CLOUD_SERVER_URL", "http://127.0.0.1:9/k3cloud/")
    clean_env.setenv("K3CLOUD_ACCT_ID", "a")
    clean_env.setenv("K3CLOUD_USER_NAME", "u")
    assert main(["sync"]) == 2
    err = capsys.readouterr().err
    assert "K3CLOUD_APP_ID" in err
    assert "K3CLOUD_PASSWORD" in err
    assert "HUKE_" not in err


def test_sync_missing_ini_file(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clean_env.setenv("HUKE_APP_KEY", "k")
    clean_env.setenv("HUKE_APP_SECRET", "s")
    assert main(["sync", "--k3-ini", str(tmp_path / "conf.ini")]) == 2
    assert "conf.ini" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--since", "20x"],
        ["sync", "--since", "20h", "--start", "2024-11-28"],
        ["sync", "--start", "yesterday"],
        ["sync", "--on-existing", "merge"],
        ["sync", "--batch-size", "0"],
        ["nonsense"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: huke-k3" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--help"]) == 0
    assert "--on-existing" in capsys.readouterr().out


def _serve_env(monkeypatch: pytest.MonkeyPatch, huke_url: str, k3_url: str) -> None:
    monkeypatch.setenv("HUKE_APP_KEY", HUKE_KEY)
    monkeypatch.setenv("HUKE_APP_SECRET", HUKE_SECRET)
    monkeypatch.setenv("HUKE_BASE_URL", huke_url + "/openapi")
    monkeypatch.setenv("K3CLOUD_SERVER_URL", k3_url + "/k3cloud/")
    monkeypatch.setenv("K3CLOUD_ACCT_ID", K3_CREDENTIALS["acct_id"])
    monkeypatch.setenv("K3CLOUD_USER_NAME", K3_CREDENTIALS["user_name"])
    monkeypatch.setenv("K3CLOUD_APP_ID", K3_CREDENTIALS["app_id"])
    monkeypatch.setenv("K3CLOUD_APP_SECRET", K3_CREDENTIALS["app_secret"])


def test_sync_end_to_end_over_loopback_with_json_and_state(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stage = Stage()
    trades = stage.generate(80, buyers=25, missing_cid_every=40)
    state = tmp_path / "state.json"
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        _serve_env(clean_env, huke_server.url, k3_server.url)
        assert main(["-vv", "sync", "--since", "20h", "--json", "--state", str(state)]) == 0
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert "DEBUG huke_client" in captured.err  # the clients' request log, on stderr
        assert "INFO huke_k3_bridge: sync done" in captured.err
        for secret in (HUKE_SECRET, K3_CREDENTIALS["app_secret"]):
            assert secret not in captured.err
            assert secret not in captured.out
        assert report["ok"] is True
        assert report["total"] == 80
        assert report["counts"]["skipped"] == 2
        assert report["counts"]["created"] == len(
            {t["buyerCid"] for t in trades if "buyerCid" in t}
        )
        stored_ms = json.loads(state.read_text())["watermark_ms"]
        # The end of the range: "now" when the run fetched, after the stage was made.
        assert stage.now_ms <= stored_ms <= time.time() * 1000
        assert to_epoch_ms(datetime.fromisoformat(report["watermark"])) == stored_ms
        # the next run resumes from the watermark: nothing new to create
        assert main(["sync", "--state", str(state), "--no-progress"]) == 0
        text = capsys.readouterr().out
        assert "resumed from the stored watermark" in text
        assert " 0 created," in text
    stage.customers()  # no number twice


def test_sync_exit_1_when_a_customer_failed(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = Stage()
    stage.fake_huke.add_trades(
        [fake_trade(create_time=stage.now_ms - HOUR_MS, tid="T1", buyer_cid="wm1", buyer_nick="n")]
    )
    stage.fake_k3.inject(Fault.http_status(400), path="BatchSave")
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        _serve_env(clean_env, huke_server.url, k3_server.url)
        assert main(["sync", "--since", "20h"]) == 1
    out = capsys.readouterr().out
    assert "NOT OK" in out
    assert "failed   trade T1 buyerCid 'wm1' #0: BatchSave refused the customer" in out


def test_sync_dry_run_and_update_flags(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = Stage()
    stage.generate(10, buyers=3)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        _serve_env(clean_env, huke_server.url, k3_server.url)
        assert main(["sync", "--dry-run", "--json"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert dry["dry_run"] is True
        assert stage.customers() == {}
        assert main(["sync", "--json"]) == 0
        capsys.readouterr()
        assert main(["sync", "--json", "--on-existing", "update"]) == 0
        updated = json.loads(capsys.readouterr().out)
        assert updated["counts"]["updated"] == len(stage.customers())


def test_corrupt_state_file_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text("garbage")
    # The state is read before anything is fetched: no server needed (port 9 is discard).
    _serve_env(clean_env, "http://127.0.0.1:9", "http://127.0.0.1:9")
    assert main(["sync", "--state", str(state)]) == 2
    assert "is not a watermark file" in capsys.readouterr().err


def _locked_elsewhere(state: Path) -> Callable[[], None]:
    """Take ``state``'s lock on another thread: to this one, another run holds it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(FileState(state).acquire).result(timeout=10)


def test_a_state_held_by_another_run_exits_2_with_one_clear_line(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    release = _locked_elsewhere(state)
    # Refused before anything is fetched: no server needed (port 9 is discard).
    _serve_env(clean_env, "http://127.0.0.1:9", "http://127.0.0.1:9")
    try:
        assert main(["sync", "--state", str(state)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith(f"huke-k3: state file {state} is in use by another run (")
        assert captured.err.count("\n") == 1
        assert "--wait" in captured.err
        assert main(["sync", "--state", str(state), "--wait", "0.2"]) == 2
        assert "is still in use after waiting 0.2s" in capsys.readouterr().err
    finally:
        release()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], False),
        (["--wait"], True),
        (["--wait", "30"], 30.0),
        (["--wait", "2.5"], 2.5),
        (["--wait", "10m"], 600.0),
        (["--wait", "0"], 0.0),
    ],
)
def test_wait_option(argv: list[str], expected: bool | float) -> None:
    args = build_parser().parse_args(["sync", "--state", "s.json", *argv])
    assert args.wait == expected
    assert type(args.wait) is type(expected)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_wait_option_rejects_what_is_not_a_wait(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--state", "s.json", "--wait", value]) == 2
    assert "--wait" in capsys.readouterr().err


def test_wait_without_state_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--wait", "5"]) == 2
    assert "--wait needs --state" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20h", timedelta(hours=20)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("30s", timedelta(seconds=30)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_parse_time() -> None:
    assert parse_time("2024-11-28T08:00:00Z") == datetime(2024, 11, 28, 8, tzinfo=timezone.utc)
    assert parse_time("2024-11-28T16:00:00+08:00") == datetime(2024, 11, 28, 8, tzinfo=timezone.utc)
    local = datetime(2024, 11, 28, 8).astimezone()
    naive = parse_time("2024-11-28T08:00")
    assert (naive, naive.utcoffset()) == (local, local.utcoffset())


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["sync"])
    assert args.on_existing == "skip"
    assert args.batch_size == 400
    assert args.window == timedelta(days=1)
    assert not args.dry_run
    assert not args.json


def test_sync_async_engine_over_loopback(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = Stage()
    trades = stage.generate(60, buyers=20, missing_cid_every=30)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        _serve_env(clean_env, huke_server.url, k3_server.url)
        assert main(["sync", "--async", "--since", "20h", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] is True
        assert report["total"] == 60
        assert report["counts"]["created"] == len(
            {t["buyerCid"] for t in trades if "buyerCid" in t}
        )
        assert main(["sync", "--async", "--since", "20h", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["counts"]["created"] == 0
    stage.customers()  # no number twice


def test_sync_async_with_missing_settings_exits_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("HUKE_APP_KEY", "key")
    clean_env.setenv("HUKE_APP_SECRET", "secret-value")
    assert main(["sync", "--async"]) == 2
    assert "K3CLOUD_SERVER_URL" in capsys.readouterr().err
