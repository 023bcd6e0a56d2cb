"""Issue 9.10: the case of customer numbers is a setting. By default (K/3 Cloud's usual SQL Server
collation) "ABC" and "abc" are one customer; with case_sensitive_numbers=True they are two."""

from __future__ import annotations

from typing import Any

import pytest

from huke_k3_bridge import SyncReport, sync_customers

from .conftest import HOUR_MS, Stage
from .stubs import StubHuke, StubK3


def trades(*cids: str) -> list[dict[str, Any]]:
    return [{"tid": f"T{i}", "buyerNick": f"n{i}", "buyerCid": cid} for i, cid in enumerate(cids)]


def run(k3: StubK3, *cids: str, **options: Any) -> SyncReport:
    return sync_customers(
        StubHuke(trades(*cids)), k3, start=0, end=10_000, progress=False, **options
    )


def test_by_default_numbers_differing_in_case_are_one_customer() -> None:
    k3 = StubK3()  # compares without regard to case, as SQL Server's default collation does
    report = run(k3, "ABC", "abc", "Abc")
    assert [o.status for o in report.outcomes] == ["merged", "merged", "created"]
    assert list(k3.store) == ["Abc"]  # the latest trade wins, spelled as it spelled it
    assert len(k3.saves) == 1


def test_by_default_an_existing_customer_is_found_whatever_its_case() -> None:
    k3 = StubK3(existing=["ABC"])
    report = run(k3, "abc")
    assert [o.status for o in report.outcomes] == ["existed"]
    assert k3.saves == []


def test_case_sensitive_numbers_are_different_customers(stage: Stage) -> None:
    from huke_client.testing import fake_trade

    # FakeK3Cloud compares numbers with regard to case: a case-sensitive collation.
    stage.fake_k3.seed("BD_Customer", [{"FNumber": "ABC", "FName": "upper"}])
    stage.fake_huke.add_trades(
        [
            fake_trade(create_time=stage.now_ms - HOUR_MS + n, tid=f"T{n}", buyer_cid=cid)
            for n, cid in enumerate(["abc", "Abc", "ABC"])
        ]
    )
    report = stage.sync(case_sensitive_numbers=True)
    assert [(o.number, o.status) for o in report.outcomes] == [
        ("abc", "created"),
        ("Abc", "created"),
        ("ABC", "existed"),
    ]
    assert sorted(stage.customers()) == ["ABC", "Abc", "abc"]
    assert report.ok


@pytest.mark.parametrize("sensitive", [False, True])
def test_the_lookup_honours_the_setting(sensitive: bool) -> None:
    k3 = StubK3(existing=["ABC"])
    real = k3.execute_bill_query

    def case_sensitive_database(*args: Any, **kwargs: Any) -> list[list[Any]]:
        # The stub's database ignores case; answer as a case-sensitive one would when asked.
        rows = real(*args, **kwargs)
        return rows if not sensitive else [r for r in rows if r[1] == "abc"]

    k3.execute_bill_query = case_sensitive_database  # type: ignore[method-assign]
    report = run(k3, "abc", case_sensitive_numbers=sensitive)
    assert [o.status for o in report.outcomes] == (["created"] if sensitive else ["existed"])
