"""What a notebook shows of trades: a short ``repr(trade)``, and a page as an HTML table."""

from __future__ import annotations

from typing import Any

from huke_client import Trade, TradePage
from huke_client.pagination import TRADE_ID_KEYS

WIRE = {
    "tid": "HK0000000000033",
    "buyerNick": "徐丽霞_88",
    "buyerCid": "wm0005deece66d",
    "createTime": 1717142716426,
    "payTime": 1717142800000,
    "payment": "6427.83",
    "status": "TRADE_FINISHED",
}


def test_a_trade_shows_its_id_buyer_and_time_and_counts_the_rest() -> None:
    assert repr(Trade.from_wire(WIRE)) == (
        "Trade(tid='HK0000000000033', buyer_nick='徐丽霞_88', buyer_cid='wm0005deece66d', "
        "createTime=1717142716426 (2024-05-31T08:05:16.426Z), 3 more wire fields)"
    )
    assert repr(Trade.from_wire({"id": 7, "buyerCid": 5, "createTime": 0, "x": 1})) == (
        "Trade(id=7, buyer_nick=None, buyer_cid='5', createTime=0 (1970-01-01T00:00:00Z), "
        "1 more wire field)"
    )
    assert repr(Trade(buyer_nick="n")) == "Trade(buyer_nick='n', buyer_cid=None)"


def test_the_id_is_the_first_id_key_the_trade_has() -> None:
    wire = {key: f"value of {key}" for key in reversed(TRADE_ID_KEYS)}
    for key in TRADE_ID_KEYS:
        assert repr(Trade.from_wire(wire)).startswith(f"Trade({key}='value of {key}', ")
        del wire[key]


def test_a_time_that_is_not_epoch_milliseconds_is_shown_as_it_came() -> None:
    def shown(value: Any) -> str:
        return repr(Trade.from_wire({"createTime": value})).split("createTime=")[1]

    assert shown("1717142716000") == "'1717142716000' (2024-05-31T08:05:16Z))"
    assert shown("9" * 5000) == "'" + "9" * 38 + "…)"
    assert shown("2024-05-31 16:05:16") == "'2024-05-31 16:05:16')"
    assert shown(True) == "True)"
    assert shown(-1) == "-1)"
    assert shown(10**20) == "100000000000000000000)"
    assert shown(1.5) == "1.5)"
    assert repr(Trade.from_wire({"payTime": 0, "tradeTime": 1000})).endswith(
        "tradeTime=1000 (1970-01-01T00:00:01Z), 1 more wire field)"
    )


def test_a_huge_trade_is_still_one_short_line() -> None:
    wire: dict[str, Any] = {f"field{i}": "x" * 1000 for i in range(5_000)}
    wire.update(
        tid="T\n" * 10_000,
        buyerNick="名" * 10_000,
        buyerCid="c" * 10_000,
        createTime="\u2028" * 500,
    )
    text = repr(Trade.from_wire(wire))
    assert "\n" not in text
    assert "\u2028" not in text
    assert len(text) < 250
    assert text.endswith("5000 more wire fields)")
    assert "buyer_cid='" + "c" * 38 + "…," in text


def test_equality_and_hash_still_follow_the_fields_and_raw() -> None:
    one, two = Trade.from_wire(WIRE), Trade.from_wire(dict(WIRE))
    assert one == two
    assert hash(one) == hash(two)
    assert one != Trade.from_wire({**WIRE, "payment": "0"})
    assert hash(one) == hash(Trade.from_wire({**WIRE, "payment": "0"}))  # raw is not hashed


def _page(trades: list[Trade], *, page: int = 1, total: int | None = None) -> TradePage:
    return TradePage(
        trades=trades, page=page, page_size=100, total=total, has_next=total is not None, raw=None
    )


def test_a_page_renders_a_summary_and_its_first_trades() -> None:
    trades = [Trade.from_wire({**WIRE, "tid": f"T{i}", "buyerCid": f"c{i}"}) for i in range(100)]
    html = _page(trades, page=3, total=1234)._repr_html_()
    summary, listing = html.split("\n")
    assert summary == (
        "<p><b>Huke trades, page 3:</b> 100 trades (page size 100), total 1234, "
        "more pages may follow</p>"
    )
    assert "<th>tid</th><th>buyerNick</th><th>buyerCid</th><th>createTime</th>" in listing
    assert listing.count("<tr><td>") == 20
    assert (
        "<tr><td>200</td><td>T0</td><td>徐丽霞_88</td><td>c0</td>"
        "<td>2024-05-31T08:05:16.426Z</td><td>3</td></tr>"
    ) in listing
    assert "T19" in listing
    assert "T20" not in listing
    assert "80 more rows not shown: see page.trades" in listing
    assert len(html) < 5000


def test_a_page_without_a_total_and_with_mixed_keys_says_so() -> None:
    trades = [
        Trade.from_wire({"tid": "A", "createTime": 0}),
        Trade.from_wire({"orderId": "B", "payTime": "yesterday"}),
    ]
    html = _page(trades)._repr_html_()
    assert "2 trades (page size 100), total unknown, the last page" in html
    assert "<th>id</th>" in html
    assert "<th>time</th>" in html
    assert "<td>tid: A</td>" in html
    assert "<td>orderId: B</td>" in html
    assert "<td>createTime: 1970-01-01T00:00:00Z</td>" in html
    assert "<td>payTime: yesterday</td>" in html
    assert "tfoot" not in html


def test_what_huke_sent_is_escaped_in_the_page() -> None:
    evil = Trade.from_wire({"tid": "<img src=x onerror=alert(1)>", "buyerNick": "<script>"})
    html = _page([evil])._repr_html_()
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
