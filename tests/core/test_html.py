"""The notebooks' HTML helper: every value escaped, long cells cut, left-out rows counted."""

from __future__ import annotations

import html

from _huke_k3_core._html import Html, block, details, escape, pairs, paragraph, table

EVIL = "<script>alert('x')</script> & \"q\""


def test_every_value_is_escaped_wherever_it_goes() -> None:
    out = block(
        paragraph(EVIL, bold=EVIL),
        table([EVIL], [[EVIL]], caption=EVIL, more=2, more_hint=EVIL),
        pairs([(EVIL, EVIL)]),
        details(EVIL, EVIL),
        EVIL,
    )
    assert "<script>" not in out
    assert "'x'" not in out
    assert '"q"' not in out
    # Each of the eleven places holds the text, escaped as html.escape does it.
    assert out.count(html.escape(EVIL)) == 11


def test_markup_the_helpers_made_is_inserted_whole() -> None:
    inner = table(["a"], [["1"]])
    assert isinstance(inner, Html)
    folded = details("rows", inner, open=True)
    assert folded == f"<details open><summary>rows</summary>{inner}</details>"
    assert table(["cell"], [[paragraph("p")]]).count("<p>p</p>") == 1
    # Plain text that looks like markup is still text.
    assert details("s", "<b>x</b>") == "<details><summary>s</summary>&lt;b&gt;x&lt;/b&gt;</details>"


def test_none_is_an_empty_cell_and_numbers_are_text() -> None:
    assert escape(None) == ""
    assert table(["n", "none"], [[3, None]]).endswith(
        "<tbody><tr><td>3</td><td></td></tr></tbody></table>"
    )


def test_rows_left_out_are_counted_in_a_footer() -> None:
    assert "tfoot" not in table(["a"], [["1"]])
    one = table(["a", "b"], [["1", "2"]], more=1)
    assert one.endswith('<tfoot><tr><td colspan="2">1 more row not shown</td></tr></tfoot></table>')
    many = table(["a"], [], more=49_980, more_hint="see report.outcomes")
    assert "49980 more rows not shown: see report.outcomes" in many


def test_a_long_cell_is_cut_to_one_line() -> None:
    huge = "line one\nline two " + "x" * 100_000
    out = table(["h"], [[huge]], limit=50)
    cell = out.split("<td>")[1].split("</td>")[0]
    assert len(cell) == 50
    assert cell.startswith("line one line two x")
    assert cell.endswith("…")
    assert len(pairs([("k", huge)])) < 200


def test_a_caption_heads_the_table() -> None:
    assert table(["a"], [], caption="Trades").startswith("<table><caption>Trades</caption>")
