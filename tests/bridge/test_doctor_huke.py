"""The doctor's Huke checks (``huke_checks``) against FakeHuke: what each reply shape, failure and
sample gives, and that no secret or personal value reaches a check."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from huke_client import HukeClient, RetryPolicy, SearchOptions, Trade
from huke_client.testing import FakeHuke, Fault, envelope_error, fake_trade, generate_trades
from huke_k3_bridge._doctor_huke import huke_checks
from huke_k3_bridge._doctor_report import Check, DoctorReport
from huke_k3_bridge._doctor_sample import mask_value

KEY, SECRET = "doctor-key", "doctor-huke-secret-31415926"
FAST = RetryPolicy(initial_delay=0, max_delay=0, max_retry_after=0)
CST = timezone(timedelta(hours=8))
END = datetime(2025, 3, 14, 12, 0, tzinfo=CST)
START = END - timedelta(hours=6)
IDS = ("huke.auth", "huke.shape", "huke.fields", "huke.buyer", "huke.sample")
PERSONAL = {
    "buyerNick": "王小明的店铺",
    "buyerCid": "wm7788996655",
    "receiverMobile": "13812345678",
    "receiverAddress": "南京市玄武区中山路88号",
    "buyerPhone": 13912345678,
}


def trades(n: int, **options: Any) -> list[dict[str, Any]]:
    return list(
        generate_trades(
            n, start=START + timedelta(minutes=1), end=END - timedelta(minutes=1), **options
        )
    )


def by_id(checks: Sequence[Check]) -> dict[str, Check]:
    assert [c.id for c in checks] == list(IDS)
    return {c.id: c for c in checks}


def run(fake: FakeHuke, **options: Any) -> tuple[dict[str, Check], list[Trade]]:
    with fake.client() as client:
        checks, sampled = huke_checks(client, start=START, end=END, **options)
    return by_id(checks), sampled


def shown(checks: Iterable[Check]) -> str:
    """Everything a user or a machine can see of ``checks``: text, JSON and reprs."""
    found = tuple(checks)
    report = DoctorReport(settings=(), checks=found, started_at=END, duration=0.0)
    return "\n".join(
        [str(report), report.to_json(), *(repr(c) for c in found), *(str(c) for c in found)]
    )


@contextmanager
def loopback(fake: FakeHuke, secret: str = SECRET) -> Iterator[HukeClient]:
    with (
        fake.serve() as server,
        HukeClient(KEY, secret, base_url=server.url + "/openapi", retry=FAST) as client,
    ):
        yield client


def test_every_check_passes_on_a_window_with_trades_over_loopback() -> None:
    fake = FakeHuke(KEY, SECRET, trades=trades(30, seed=4))
    with loopback(fake) as client:
        checks, sampled = huke_checks(client, start=START, end=END, page_size=20)
    found = by_id(checks)
    assert {i: c.status for i, c in found.items()} == {
        "huke.auth": "pass",
        "huke.shape": "pass",
        "huke.fields": "info",
        "huke.buyer": "pass",
        "huke.sample": "info",
    }
    assert [c.id for c in checks if not c.required] == ["huke.fields", "huke.sample"]
    assert "'list' (one of huke_client.pagination.LIST_KEYS)" in found["huke.shape"].summary
    assert "the total under 'total' (30)" in found["huke.shape"].summary
    assert found["huke.shape"].details["total_key"] == "total"
    assert len(sampled) == 20
    assert all(isinstance(t, Trade) and t.buyer_cid for t in sampled)
    fields = {f["field"]: f for f in found["huke.fields"].details["fields"]}
    assert fields["num"] == {
        "field": "num",
        "types": ["integer"],
        "present": 20,
        "filled": 20,
        "of": 20,
    }
    assert "buyerCid: string, filled 20/20" in found["huke.fields"].details["lines"]
    assert found["huke.buyer"].summary.startswith("every trade has a buyerCid (20/20)")
    assert DoctorReport(settings=(), checks=tuple(checks), started_at=END, duration=0).ok


def test_an_empty_window_warns_and_says_how_to_widen_it() -> None:
    found, sampled = run(FakeHuke(KEY, SECRET))
    assert sampled == []
    assert found["huke.auth"].status == found["huke.shape"].status == "pass"
    for check_id in ("huke.fields", "huke.buyer", "huke.sample"):
        assert found[check_id].status == "warn", found[check_id]
        assert found[check_id].fix == "run with --hours 72 (a window with trades)"
    window = "between 2025-03-14 06:00+08:00 and 2025-03-14 12:00+08:00"
    assert found["huke.fields"].summary == f"no trades {window}"
    assert "cannot tell" in found["huke.buyer"].summary


def test_a_wrong_app_secret_fails_auth_and_skips_the_rest() -> None:
    fake = FakeHuke(KEY, SECRET, trades=trades(5))
    with loopback(fake, secret="not-the-secret-2718") as client:
        checks, sampled = huke_checks(client, start=START, end=END)
    found = by_id(checks)
    auth = found["huke.auth"]
    assert auth.status == "fail"
    assert auth.required
    # The simulator's code and msg, quoted as received: Huke's codes are not public.
    assert "code 40004" in auth.summary
    assert "ur-checksum does not verify" in auth.summary
    assert auth.details["code"] == "40004"
    assert auth.fix is not None
    assert "HUKE_APP_KEY / HUKE_APP_SECRET" in auth.fix
    assert "clock" in auth.fix
    for check_id in IDS[1:]:
        assert found[check_id].status == "skip"
        assert found[check_id].summary == "not run: Huke authentication failed"
    assert sampled == []
    assert "not-the-secret-2718" not in shown(checks)


def test_an_unfamiliar_list_key_fails_shape_with_the_items_key_fix() -> None:
    fake = FakeHuke(KEY, SECRET, trades=trades(8, seed=2), items_key="tradeList")
    found, sampled = run(fake)
    shape = found["huke.shape"]
    assert shape.status == "fail"
    assert "array of 8 objects at data.tradeList" in shape.summary
    assert shape.fix == (
        "pass items_key='tradeList' (huke-k3 sync --items-key tradeList; "
        "SyncOptions(search=SearchOptions(items_key='tradeList')))"
    )
    assert shape.details["keys"] == {"tradeList": "array of 8 objects", "total": "integer"}
    assert "cannot find the items in data" in shape.details["client_error"]
    # The rest is read from the list found, and the trades come back for the K/3 dry run.
    assert found["huke.fields"].status == "info"
    assert found["huke.buyer"].status == "pass"
    assert found["huke.sample"].status == "info"
    listed = sorted(fake.trades, key=lambda t: int(t["createTime"]))
    assert [t.buyer_cid for t in sampled] == [t["buyerCid"] for t in listed]

    passed, sampled = run(fake, search=SearchOptions(items_key="tradeList"))
    assert passed["huke.shape"].status == "pass"
    assert "'tradeList' (the configured items_key)" in passed["huke.shape"].summary
    assert len(sampled) == 8


def test_a_list_too_deep_for_items_key_is_described_and_reported() -> None:
    fake = FakeHuke(KEY, SECRET)
    rows = trades(3)
    fake.add_route("trade/searchTrades", lambda body: {"result": {"rows": rows, "n": 3}})
    found, sampled = run(fake)
    shape = found["huke.shape"]
    assert shape.status == "fail"
    assert shape.details["trades_at"] == "data.result.rows"
    assert shape.fix is not None
    assert shape.fix.startswith("items_key cannot reach data.result.rows")
    assert "data.result: object {rows: array of 3 objects, n: integer}" in shape.details["lines"]
    assert len(sampled) == 3
    assert found["huke.buyer"].status == "pass"


def test_a_reply_with_no_list_of_trades_fails_shape_and_skips_the_rest() -> None:
    fake = FakeHuke(KEY, SECRET)
    fake.add_route("trade/searchTrades", lambda body: {"count": 0, "message": "ok"})
    found, sampled = run(fake)
    assert found["huke.shape"].status == "fail"
    assert "no list of objects" in found["huke.shape"].summary
    for check_id in IDS[2:]:
        assert found[check_id].status == "skip"
        assert "no list of trades" in found[check_id].summary
    assert sampled == []


def test_null_data_fails_shape_naming_null_first_page_is_empty() -> None:
    fake = FakeHuke(KEY, SECRET, trades=trades(3))
    fake.listing_fault("null_data")
    found, sampled = run(fake)
    assert found["huke.auth"].status == "pass"
    assert found["huke.shape"].status == "fail"
    assert "data is null or missing" in found["huke.shape"].summary
    assert "null_first_page_is_empty=True" in (found["huke.shape"].fix or "")
    assert sampled == []


@pytest.mark.parametrize(
    ("shape", "described"),
    [
        ("list", "data is a bare list (4 trades); no total: pagination ends on a short page"),
        (
            "object_no_total",
            "data is an object with the trades under 'list' (one of "
            "huke_client.pagination.LIST_KEYS), no total: pagination ends on a short page; "
            "other keys: none",
        ),
    ],
)
def test_other_known_shapes_pass_with_their_description(shape: str, described: str) -> None:
    found, sampled = run(FakeHuke(KEY, SECRET, trades=trades(4), data_shape=shape))
    assert found["huke.shape"].status == "pass"
    assert found["huke.shape"].summary == described
    assert len(sampled) == 4


def test_paging_fields_are_listed_with_their_types() -> None:
    fake = FakeHuke(KEY, SECRET)
    rows = trades(2)
    fake.add_route(
        "trade/searchTrades",
        lambda body: {"rows": rows, "totalCount": "2", "hasNext": False, "nextCursor": None},
    )
    shape = run(fake)[0]["huke.shape"]
    assert shape.status == "pass"
    assert "'rows'" in shape.summary
    assert "the total under 'totalCount' (2)" in shape.summary
    assert shape.details["other_keys"] == {"hasNext": "boolean", "nextCursor": "null"}


def test_trades_without_buyer_cid_fail_and_name_the_id_like_fields() -> None:
    rows = [
        fake_trade(create_time=START + timedelta(hours=1, minutes=i), buyer_cid=None, buyerId=i)
        for i in range(6)
    ]
    found, sampled = run(FakeHuke(KEY, SECRET, trades=rows))
    buyer = found["huke.buyer"]
    assert buyer.status == "fail"
    assert buyer.required
    assert "no trade of 6 has a buyerCid (the key is absent)" in buyer.summary
    # The buyer's fields first; the trade's own id listed, never proposed; "payment" is no id.
    assert "like ids: buyerId 6/6, tid 6/6" in buyer.summary
    assert "payment" not in buyer.summary
    assert buyer.fix is not None
    assert "FNumber='{{buyerId}}'" in buyer.fix
    assert len(sampled) == 6


def test_some_trades_without_buyer_cid_warn_with_the_count() -> None:
    found, _ = run(FakeHuke(KEY, SECRET, trades=trades(10, missing_cid_every=4)))
    buyer = found["huke.buyer"]
    assert buyer.status == "warn"
    assert buyer.summary.startswith("2 of 10 trades have no buyerCid: the sync will skip them")


def personal_trade() -> dict[str, Any]:
    # Personal fields first: an error quoting the start of the body quotes them.
    return {
        **PERSONAL,
        **fake_trade(
            create_time=START + timedelta(hours=2, minutes=30),
            tid="T-1",
            buyer_nick=None,
            buyer_cid=None,
        ),
        "orders": [{"title": "蚕丝被", "price": 1299.5}] * 5,
    }


def assert_nothing_personal(text: str) -> None:
    for value in PERSONAL.values():
        assert str(value) not in text
    assert "王小明" not in text
    assert "13812345678" not in text
    assert "中山路" not in text


@pytest.mark.parametrize("items_key", ["list", "tradeList"])
def test_personal_data_never_shows(items_key: str) -> None:
    """Neither on a page the client read nor one it could not (whose error quotes the body)."""
    fake = FakeHuke(KEY, SECRET, trades=[personal_trade()], items_key=items_key)
    found, sampled = run(fake)
    assert sampled[0].buyer_nick == PERSONAL["buyerNick"]  # the trades themselves are whole
    assert_nothing_personal(shown(found.values()))
    sample = found["huke.sample"].details["trade"]
    assert sample["buyerNick"] == "王•••(6)"
    assert sample["receiverMobile"] == "1•••(11)"
    assert sample["buyerPhone"] == 99999999999
    assert sample["createTime"] == "2025-03-14T08:00:00+08:00"
    assert sample["orders"][:3] == [{"title": "蚕•••(3)", "price": 9999.9}] * 3
    assert sample["orders"][3] == "… 2 more"


def test_mask_value_keeps_json_types_and_hides_values() -> None:
    masked = mask_value(
        {
            "name": "Lily",
            "empty": "",
            "n": -1234,
            "fee": 0.5,
            "ok": True,
            "none": None,
            "payTime": "2025-03-14 08:31:02",
            "created_at": "1741912262000",
            "deep": {"a": {"b": {"c": {"d": "x"}}}},
        }
    )
    assert masked == {
        "name": "L•••(4)",
        "empty": "",
        "n": -9999,
        "fee": 9.9,
        "ok": True,
        "none": None,
        "payTime": "2025-03-14 08…",
        "created_at": "2025-03-14T00:00:00+00:00",
        "deep": {"a": {"b": {"c": "object (1 key) …"}}},
    }


def test_a_server_quoting_the_secret_back_does_not_leak_it() -> None:
    fake = FakeHuke(KEY, SECRET, trades=trades(3))
    fake.inject(envelope_error(40100, f"bad signature; app secret on file: {SECRET}"))
    checks, _ = huke_checks(fake.client(), start=START, end=END)
    assert by_id(checks)["huke.auth"].status == "fail"
    assert SECRET not in shown(checks)
    assert "bad signature" in by_id(checks)["huke.auth"].summary

    # In the keys of a reply the client could not read, which the shape check shows.
    rows = trades(2)
    fake.add_route("trade/searchTrades", lambda body: {"tradeList": rows, f"echo {SECRET}": 1})
    checks, _ = huke_checks(fake.client(), start=START, end=END)
    assert by_id(checks)["huke.shape"].status == "fail"
    assert SECRET not in shown(checks)


def test_a_reply_that_is_not_the_envelope_fails_auth_naming_the_base_url() -> None:
    fake = FakeHuke(KEY, SECRET)
    fake.inject(Fault.reply(b'{"trades": []}'), times=2)
    found, _ = run(fake)
    auth = found["huke.auth"]
    assert auth.status == "fail"
    assert "not Huke's {code, msg, data} envelope: JSON object {trades: empty array}" in (
        auth.summary
    )
    assert auth.fix is not None
    assert "HUKE_BASE_URL" in auth.fix


def test_a_wrong_base_url_and_an_unreachable_host_fail_auth() -> None:
    fake = FakeHuke(KEY, SECRET)
    with fake.serve() as server, HukeClient(KEY, SECRET, base_url=server.url, retry=FAST) as c:
        checks, _ = huke_checks(c, start=START, end=END)
    auth = by_id(checks)["huke.auth"]
    assert auth.status == "fail"
    assert auth.details["status"] == 404
    assert auth.fix is not None
    assert auth.fix.startswith("check HUKE_BASE_URL")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/openapi"
    with HukeClient(KEY, SECRET, base_url=url, max_retries=0) as client:
        checks, _ = huke_checks(client, start=START, end=END)
    auth = by_id(checks)["huke.auth"]
    assert auth.status == "fail"
    assert "failed" in auth.summary
    assert auth.details["error"] == "HukeConnectionError"
    assert all(c.status == "skip" for c in checks[1:])


def test_details_are_plain_json() -> None:
    found, _ = run(FakeHuke(KEY, SECRET, trades=[personal_trade()]))
    for check in found.values():
        assert json.loads(json.dumps(check.to_dict())) == check.to_dict()


def test_fields_show_mixed_types_and_fill_and_count_what_does_not_fit() -> None:
    at = START + timedelta(hours=1)
    wide = {f"extra{i:02d}": i for i in range(45)}
    rows = [
        fake_trade(create_time=at, tid="A", memo="gift", **wide),
        fake_trade(create_time=at, tid="B", memo=None, **wide),
        fake_trade(create_time=at, tid="C", memo=7),
    ]
    rows[1]["memo"] = None  # fake_trade drops None: present, and null
    fields = run(FakeHuke(KEY, SECRET, trades=rows))[0]["huke.fields"]
    stats = {f["field"]: f for f in fields.details["fields"]}
    assert stats["memo"]["types"] == ["string", "null", "integer"]
    assert (stats["memo"]["present"], stats["memo"]["filled"]) == (3, 2)
    assert stats["extra00"]["filled"] == 2
    assert len(stats) == 6 + 1 + 45
    lines = fields.details["lines"]
    assert len(lines) == 40
    assert lines[-1] == "… 13 more fields (see details)"
    assert "memo: string|null|integer, filled 2/3" in lines
    assert "1 with mixed types" in fields.summary


PHONE = "13812345678"


def test_nested_keys_that_are_no_field_names_are_masked_in_the_sample_and_the_shape() -> None:
    """A trade's own fields are named as they are, but a key below them can be personal data
    (contacts keyed by phone number): it is masked like a value, and two keys that mask alike
    stay apart."""
    at = START + timedelta(hours=1)
    contacts = {PHONE: "张三丰家", "13987654321": "李四", "home_tel": 1, "x" * 100: 2}
    row = fake_trade(create_time=at, tid="T1", contacts=contacts)
    sample = run(FakeHuke(KEY, SECRET, trades=[row]))[0]["huke.sample"]
    assert sample.details["trade"]["contacts"] == {
        "1•••(11)": "张•••(4)",
        "1•••(11)#2": "李•••(2)",
        "home_tel": 9,
        "x•••(100)": 9,
    }
    assert sample.details["trade"]["tid"] == "T•••(2)"  # the trade's own fields keep their names

    fake = FakeHuke(KEY, SECRET)
    fake.add_route("trade/searchTrades", lambda body: {"byPhone": {PHONE: {"n": 1}}, "n": 1})
    found, _ = run(fake)
    shape = found["huke.shape"]
    assert shape.status == "fail"
    assert "data.byPhone: object {1•••(11): object (1 key)}" in shape.details["lines"]
    assert PHONE not in shown(found.values())


def test_buyer_cids_the_sync_rejects_are_no_buyer_cids() -> None:
    """'NaN' and blank buyerCids make every trade skipped by the sync (``junk_key``): the buyer
    check fails and names what it found, instead of 'every trade has a buyerCid'."""
    at = START + timedelta(hours=1)
    junk = ["NaN", "NaN", "  ", "inf"]
    rows = [fake_trade(create_time=at, tid=f"T{i}", buyer_cid=c) for i, c in enumerate(junk)]
    buyer = run(FakeHuke(KEY, SECRET, trades=rows))[0]["huke.buyer"]
    assert buyer.status == "fail", buyer
    assert "no trade of 4 has a usable buyerCid" in buyer.summary
    assert "the customer number 'NaN' is not a finite value (x2)" in buyer.summary
    assert "the customer number is blank (x1)" in buyer.summary
    assert buyer.details["buyerCid"]["usable"] == 0
    assert buyer.details["buyerCid"]["rejected"] == {
        "the customer number 'NaN' is not a finite value": 2,
        "the customer number is blank": 1,
        "the customer number 'inf' is not a finite value": 1,
    }

    rows.append(fake_trade(create_time=at, tid="T9", buyer_cid="wm1"))
    buyer = run(FakeHuke(KEY, SECRET, trades=rows))[0]["huke.buyer"]
    assert buyer.status == "warn"
    assert buyer.summary.startswith("4 of 5 have a buyerCid the sync rejects (")


def test_an_api_error_is_not_blamed_on_the_credentials_and_a_refused_page_size_says_so() -> None:
    """The simulator refuses pageSize over 100 (Huke's own limit is unknown): the fix names
    --sample, not the app secret. Any API error proves the request reached Huke."""
    found, _ = run(FakeHuke(KEY, SECRET, trades=trades(3)), page_size=1000)
    auth = found["huke.auth"]
    assert auth.status == "fail"
    assert auth.fix is not None
    assert "HUKE_APP_SECRET" not in auth.fix
    assert "--sample" in auth.fix
    assert "1000" in auth.fix

    fake = FakeHuke(KEY, SECRET)
    fake.inject(envelope_error(40100, "rate limited"))
    auth = run(fake)[0]["huke.auth"]
    assert auth.fix is not None
    assert auth.fix.startswith("the request reached Huke and was refused")
    assert "\n" not in auth.fix


def test_a_huge_server_message_or_key_is_cut_in_every_text() -> None:
    """A 1 MB msg, or a trade field named by 100 000 characters, is no 1 MB report."""
    fake = FakeHuke(KEY, SECRET)
    fake.inject(envelope_error(40100, "m" * 1_000_000))
    found, _ = run(fake)
    assert found["huke.auth"].status == "fail"
    assert len(shown(found.values())) < 10_000

    at = START + timedelta(hours=1)
    rows = [fake_trade(create_time=at, tid="T1", buyer_cid=None, **{"buyerId" + "y" * 100_000: 1})]
    found, _ = run(FakeHuke(KEY, SECRET, trades=rows))
    assert found["huke.buyer"].status == "fail"
    assert len(shown(found.values())) < 20_000
