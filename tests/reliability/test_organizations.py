"""Issue 8.8 over loopback, for both engines: a customer allocated to other organisations exists
once per use organisation; the bridge looks a customer up in its own use organisation only,
reads every page, and updates that organisation's record, never another's."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from huke_k3_bridge import CustomerTransform, _calls

from .conftest import Engine, Stage, assert_accounted

QUERY = "ExecuteBillQuery"


def _orgs(stage: Stage) -> None:
    stage.k3.add_organization(2, "200")
    stage.k3.add_organization(3, "300")


def _allocated(stage: Stage, numbers: list[str]) -> None:
    """``numbers`` created by organisation 100 and allocated to 200 and 300."""
    stage.k3.seed("BD_Customer", [{"FNumber": n, "FName": f"old {n}"} for n in numbers])
    for number in numbers:
        stage.k3.allocate("BD_Customer", number, to_orgs=["200", "300"])


@pytest.mark.parametrize("org", ["100", "200", "300"])
def test_an_update_targets_the_use_organisations_record_only(
    stage: Stage, engine: Engine, org: str
) -> None:
    _orgs(stage)
    stage.generate()
    numbers = sorted(stage.winners())
    _allocated(stage, numbers)
    before = stage.customers_by_org()
    transform = CustomerTransform(use_org=org)
    report = stage.run(engine, transform=transform, on_existing="update")
    assert report.ok, str(report)
    after = stage.customers_by_org()
    for number in numbers:
        winner = stage.winners()[number]
        for other in {"100", "200", "300"} - {org}:
            assert after[other][number] == before[other][number], "another org's copy changed"
        assert after[org][number]["FName"] == winner["buyerNick"]
        assert after[org][number]["FCUSTID"] == before[org][number]["FCUSTID"]
    ids = {o.number: o.customer_id for o in report.by_status("updated")}
    assert ids == {n: str(before[org][n]["FCUSTID"]) for n in numbers}


def test_existence_is_judged_in_the_use_organisation(stage: Stage, engine: Engine) -> None:
    _orgs(stage)
    stage.generate()
    numbers = sorted(stage.winners())
    # Half the buyers exist in organisation 100 only; the sync saves to organisation 200.
    stage.k3.seed("BD_Customer", [{"FNumber": n, "FName": "x"} for n in numbers[::2]])
    report = stage.run(engine, transform=CustomerTransform(create_org="100", use_org="200"))
    assert report.ok, str(report)
    assert {o.number for o in report.by_status("created")} == set(numbers)
    assert set(stage.customers(use_org="200")) == set(numbers)
    queries = [json.loads(r.content)["data"] for r in stage.k3.received if QUERY in r.url.path]
    assert all("(FUseOrgId.FNumber = '200')" in q["FilterString"] for q in queries)


def test_a_lookup_reads_every_page(
    stage: Stage, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage.generate()
    numbers = sorted(stage.winners())
    stage.k3.seed("BD_Customer", [{"FNumber": n, "FName": "x"} for n in numbers])
    monkeypatch.setattr(_calls, "EXISTENCE_PAGE", 3)  # 32 existing customers: 11 pages a chunk
    report = stage.run(engine)
    assert report.ok, str(report)
    assert report.counts["created"] == 0
    assert report.counts["existed"] == len(numbers)
    assert_accounted(report, stage)


def _doubled_rows(operation: str, response: httpx.Response) -> httpx.Response:
    """A K/3 that holds every customer twice in one organisation (data from an old import)."""
    if operation != QUERY or response.status_code != 200:
        return response
    rows = json.loads(response.content)
    if rows and isinstance(rows[0], list) and rows[0] and isinstance(rows[0][0], dict):
        return response
    doubled: list[Any] = [row for cid, *rest in rows for row in ([cid, *rest], [cid + 1, *rest])]
    return httpx.Response(200, content=json.dumps(doubled).encode())


def test_two_records_of_one_number_in_one_organisation_are_never_guessed(
    stage: Stage, engine: Engine
) -> None:
    stage.generate()
    numbers = sorted(stage.winners())
    stage.k3.seed("BD_Customer", [{"FNumber": n, "FName": "x"} for n in numbers])
    stage.k3.rewrites.append(_doubled_rows)
    report = stage.run(engine, on_existing="update")
    assert not report.ok
    assert report.counts["updated"] == 0
    assert report.counts["failed"] == len(numbers)
    assert all("which one is this buyer's cannot be told" in str(o.reason) for o in report.failures)
    assert stage.k3.call_count("BatchSave") == 0
