"""Organisations and allocation (分配): per-org records, ``Allocate``, org-scoped numbers and
queries over ``FUseOrgId`` / ``FCreateOrgId`` / ``FMASTERID``, through the real clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k3cloud_client import (
    Customer,
    DataNotFoundError,
    InvalidParameterError,
    OperationNotAllowedError,
    SavedRow,
    ValidationFailedError,
    filters,
)
from k3cloud_client.testing import (
    DEFAULT_ORGANIZATIONS,
    DUPLICATE_NUMBER_MESSAGE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

from .conftest import Harness

ORGS = {1: "100", 2: "200", 3: "300"}
KEYS = "FCUSTID,FNumber,FUseOrgId,FUseOrgId.FNumber,FCreateOrgId,FCreateOrgId.FNumber,FMASTERID"


def make_fake(**options: Any) -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        **{"organizations": ORGS, **options},
    )


@pytest.fixture
def orgs_fake() -> FakeK3Cloud:
    return make_fake()


def by_org(fake: FakeK3Cloud, number: str) -> dict[str, dict[str, Any]]:
    """The records numbered ``number``, by use organisation number."""
    records = [r for r in fake.records("BD_Customer") if r["FNumber"] == number]
    return {r["FUseOrgId"]["FNumber"]: r for r in records}


def last_body(fake: FakeK3Cloud, operation: str) -> dict[str, Any]:
    request = [r for r in fake.received if r.url.path.endswith(f".{operation}.common.kdsvc")][-1]
    body: dict[str, Any] = json.loads(request.content)
    return body


# -- saving ----------------------------------------------------------------------------------------


def test_a_new_customer_lands_in_its_use_org_and_is_its_own_master(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    client = harness.client(orgs_fake)
    result = harness.call(
        client,
        "batch_save",
        "BD_Customer",
        [
            Customer("C1", "in 200", create_org="200", use_org="200"),
            {"FNumber": "C2", "FName": "no org given"},
            {"FNumber": "C3", "FName": "create org only", "FCreateOrgId": {"FNumber": 300}},
        ],
    )
    assert result.ok
    (c1,) = by_org(orgs_fake, "C1").values()
    assert (c1["FCreateOrgId"], c1["FUseOrgId"]) == ({"FNumber": "200"}, {"FNumber": "200"})
    assert c1["FMASTERID"] == c1["FCUSTID"] == result.saved[0].id
    assert set(by_org(orgs_fake, "C2")) == {"100"}  # the default organisation
    (c3,) = by_org(orgs_fake, "C3").values()
    assert (c3["FCreateOrgId"], c3["FUseOrgId"]) == ({"FNumber": "300"}, {"FNumber": "300"})


def test_a_number_is_unique_per_use_organisation(harness: Harness, orgs_fake: FakeK3Cloud) -> None:
    client = harness.client(orgs_fake)
    result = harness.call(
        client,
        "batch_save",
        "BD_Customer",
        [
            Customer("N1", "a", create_org="100", use_org="100"),
            Customer("N1", "b", create_org="200", use_org="200"),  # another org: allowed
            Customer("N1", "c", create_org="100", use_org="100"),  # same org, same call
        ],
    )
    # Both are stored, but one call with two rows of one number cannot say which result is
    # whose (the reply's Number is all that verifies a row): both are uncertain, never guessed.
    assert result.saved == []
    first, second, refused = result.failed
    assert [(first.index, first.uncertain), (second.index, second.uncertain)] == [
        (0, True),
        (1, True),
    ]
    assert "several rows numbered 'N1'" in first.message
    assert (refused.index, refused.msg_code, refused.field_name) == (2, 11, "FNumber")
    assert refused.message == DUPLICATE_NUMBER_MESSAGE.format(number="N1")
    with pytest.raises(ValidationFailedError) as info:  # same org, a later call
        harness.call(
            client, "save", "BD_Customer", Customer("N1", "d", create_org="200", use_org="200")
        )
    assert info.value.msg_code == 11
    assert info.value.message == DUPLICATE_NUMBER_MESSAGE.format(number="N1")
    assert {org: r["FName"] for org, r in by_org(orgs_fake, "N1").items()} == {
        "100": "a",
        "200": "b",
    }


def test_account_scope_refuses_a_number_used_in_any_organisation(harness: Harness) -> None:
    fake = make_fake(number_scope="account")
    client = harness.client(fake)
    harness.call(client, "save", "BD_Customer", Customer("S1", "a"), is_auto_submit_and_audit=True)
    with pytest.raises(ValidationFailedError, match=r"\[S1\]在当前系统中已经被使用"):
        harness.call(
            client, "save", "BD_Customer", Customer("S1", "b", create_org="200", use_org="200")
        )
    # Allocated copies are the same customer, not a second use of the number.
    assert len(fake.allocate("BD_Customer", "S1", to_orgs=["200", "300"])) == 2
    with pytest.raises(ValueError, match="already exists in organisation 300"):
        fake.seed("BD_Customer", [{"FNumber": "S1", "FName": "x", "FUseOrgId": "300"}])


def test_an_unknown_organisation_is_refused(harness: Harness, orgs_fake: FakeK3Cloud) -> None:
    client = harness.client(orgs_fake)
    result = harness.call(
        client,
        "batch_save",
        "BD_Customer",
        [
            Customer("U1", "u", create_org="100", use_org="999"),
            Customer("U2", "v", create_org="998", use_org="998"),
        ],
    )
    assert [(f.index, f.msg_code, f.field_name, f.message) for f in result.failed] == [
        (0, 9, "FUseOrgId", "字段“使用组织”的值[999]在系统中不存在"),
        (1, 9, "FCreateOrgId", "字段“创建组织”的值[998]在系统中不存在"),
    ]
    assert orgs_fake.records("BD_Customer") == []
    with pytest.raises(ValueError, match=r"\[400\]在系统中不存在"):
        orgs_fake.seed("BD_Customer", [{"FNumber": "U3", "FName": "w", "FUseOrgId": "400"}])


# -- Allocate --------------------------------------------------------------------------------------


def test_allocate_copies_the_record_to_each_target_organisation(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    (master,) = orgs_fake.seed("BD_Customer", [{"FNumber": "A1", "FName": "acme"}])
    client = harness.client(orgs_fake)
    copies = harness.call(client, "allocate", "BD_Customer", ids=[master], to_orgs=[2, 3])
    assert [(r.index, r.number) for r in copies] == [(0, "A1"), (1, "A1")]
    assert last_body(orgs_fake, "Allocate") == {
        "formid": "BD_Customer",
        "data": {"PkIds": str(master), "TOrgIds": "2,3", "IsAutoSubmitAndAudit": False},
    }
    records = by_org(orgs_fake, "A1")
    assert set(records) == {"100", "200", "300"}
    assert {r["FMASTERID"] for r in records.values()} == {master}
    assert {r["FCreateOrgId"]["FNumber"] for r in records.values()} == {"100"}
    assert [records["200"]["FCUSTID"], records["300"]["FCUSTID"]] == [r.id for r in copies]
    assert len({r["FCUSTID"] for r in records.values()}) == 3
    assert records["200"]["FName"] == "acme"
    # A copy starts un-audited in its organisation unless the call audits it.
    assert (records["100"]["FDocumentStatus"], records["200"]["FDocumentStatus"]) == ("C", "A")
    (b1,) = orgs_fake.seed("BD_Customer", [{"FNumber": "B1", "FName": "b"}])
    harness.call(
        client, "allocate", "BD_Customer", ids=[b1], to_orgs=[2], is_auto_submit_and_audit=True
    )
    assert by_org(orgs_fake, "B1")["200"]["FDocumentStatus"] == "C"


def test_allocating_to_an_organisation_that_has_it_fails_that_pair_only(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    a, b = orgs_fake.seed("BD_Customer", customer_rows(2))
    orgs_fake.allocate("BD_Customer", "C00001", to_orgs=["200"])
    client = harness.client(orgs_fake)
    with pytest.raises(ValidationFailedError) as info:
        harness.call(client, "allocate", "BD_Customer", ids=[a, b], to_orgs=[2, 1, 3])
    # Pairs in order (record, organisation): (a,2) (a,1) (a,3) (b,2) (b,1) (b,3).
    assert [(e.d_index, e.message) for e in info.value.errors] == [
        (0, "[C00001]已分配到组织[200]"),
        (1, "[C00001]已分配到组织[100]"),
        (4, "[C00002]已分配到组织[100]"),
    ]
    assert info.value.msg_code == 11
    assert set(by_org(orgs_fake, "C00001")) == {"100", "200", "300"}
    assert set(by_org(orgs_fake, "C00002")) == {"100", "200", "300"}


def test_allocate_refuses_what_cannot_be_allocated(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    client = harness.client(orgs_fake)
    draft = harness.call(client, "save", "BD_Customer", Customer("D1", "not audited"))
    (master,) = orgs_fake.seed("BD_Customer", [{"FNumber": "M1", "FName": "m"}])
    (copy_id,) = orgs_fake.allocate("BD_Customer", "M1", to_orgs=["200"])

    def refusal(ids: list[Any], to_orgs: list[Any]) -> tuple[int | None, str]:
        with pytest.raises((ValidationFailedError, DataNotFoundError)) as info:
            harness.call(client, "allocate", "BD_Customer", ids=ids, to_orgs=to_orgs)
        return info.value.msg_code, info.value.errors[0].message

    assert refusal([draft.id], [2]) == (11, "[D1]未审核，不允许分配")
    assert refusal([copy_id], [3]) == (11, "[M1]不是创建组织的数据，不允许分配")
    assert refusal([999], [2]) == (10, "内码为[999]的数据不存在")
    # TOrgIds are internal ids: an organisation number is not one.
    assert refusal([master], ["300"]) == (10, "组织内码为[300]的组织不存在")
    assert set(by_org(orgs_fake, "M1")) == {"100", "200"}
    with pytest.raises(OperationNotAllowedError):
        harness.call(client, "allocate", "BD_Material", ids=[1], to_orgs=[2])
    with pytest.raises(InvalidParameterError, match="PkIds"):
        harness.call(client, "execute", "Allocate", {"formid": "BD_Customer", "data": {}})


def test_allocate_meets_an_independent_record_of_the_same_number(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    (master,) = orgs_fake.seed("BD_Customer", [{"FNumber": "X1", "FName": "ours"}])
    orgs_fake.seed("BD_Customer", [{"FNumber": "X1", "FName": "theirs", "FUseOrgId": "200"}])
    client = harness.client(orgs_fake)
    with pytest.raises(ValidationFailedError) as info:
        harness.call(client, "allocate", "BD_Customer", ids=[master], to_orgs=[2])
    assert info.value.errors[0].message == DUPLICATE_NUMBER_MESSAGE.format(number="X1")
    assert by_org(orgs_fake, "X1")["200"]["FName"] == "theirs"


def test_allocate_arguments_are_checked_before_sending(orgs_fake: FakeK3Cloud) -> None:
    client = Harness("sync").client(orgs_fake)
    with pytest.raises(ValueError, match="ids="):
        client.allocate("BD_Customer", ids="100001", to_orgs=[2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="to_orgs="):
        client.allocate("BD_Customer", ids=[100001], to_orgs=[])
    with pytest.raises(TypeError, match="repeats a named argument"):
        client.allocate("BD_Customer", ids=[1], to_orgs=[2], pk_ids="3")
    assert orgs_fake.call_count("Allocate") == 0


def test_the_fakes_helpers_refuse_what_allocate_refuses(orgs_fake: FakeK3Cloud) -> None:
    orgs_fake.seed("BD_Customer", [{"FNumber": "H1", "FName": "h"}])
    with pytest.raises(ValueError, match="unknown organisation number '900'"):
        orgs_fake.allocate("BD_Customer", "H1", to_orgs=["900"])
    with pytest.raises(ValueError, match="no record numbered 'H2'"):
        orgs_fake.allocate("BD_Customer", "H2", to_orgs=["200"])
    orgs_fake.allocate("BD_Customer", "H1", to_orgs=["200"])
    with pytest.raises(ValueError, match=r"已分配到组织\[200\]"):
        orgs_fake.allocate("BD_Customer", "H1", to_orgs=["200"])
    with pytest.raises(ValueError, match="不是创建组织的数据"):
        orgs_fake.allocate("BD_Customer", "H1", to_orgs=["300"], from_org="200")


# -- queries ---------------------------------------------------------------------------------------


def test_queries_read_and_filter_both_forms_of_the_org_keys(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    (master,) = orgs_fake.seed("BD_Customer", [{"FNumber": "Q1", "FName": "q"}])
    (copy_id,) = orgs_fake.allocate("BD_Customer", "Q1", to_orgs=["200"])
    client = harness.client(orgs_fake)

    def rows(where: str) -> list[list[Any]]:
        found: list[list[Any]] = harness.call(
            client, "execute_bill_query", "BD_Customer", KEYS, filter_string=where
        )
        return found

    # The bare field is the organisation's internal id; ``.FNumber`` its number.
    in_200 = [[copy_id, "Q1", 2, "200", 1, "100", master]]
    assert rows("FNumber = 'Q1'") == [[master, "Q1", 1, "100", 1, "100", master], *in_200]
    assert rows("FUseOrgId.FNumber = '200'") == in_200
    assert rows("FUseOrgId = 2") == in_200
    assert rows("FUseOrgId = '200'") == []  # an id compared with a number: the classic slip
    assert rows("FCreateOrgId.FNumber = '100' and FMASTERID = " + str(master)) == [
        [master, "Q1", 1, "100", 1, "100", master],
        *in_200,
    ]
    # What the bridge sends: the numbers, restricted to the customer's use organisation.
    lookup = filters.and_(
        filters.in_("FNumber", ["Q1", "Q9"]), filters.eq("FUseOrgId.FNumber", "200")
    )
    assert lookup == "(FNumber in ('Q1','Q9')) and (FUseOrgId.FNumber = '200')"
    assert harness.call(
        client, "execute_bill_query", "BD_Customer", "FCUSTID,FNumber", filter_string=lookup
    ) == [[copy_id, "Q1"]]
    assert harness.call(
        client,
        "bill_query",
        "BD_Customer",
        ["FNumber", "FUseOrgId", "FUseOrgId.FNumber"],
        filter_string="FUseOrgId in (1, 2)",
        order_string="FUseOrgId.FNumber desc",
    ) == [
        {"FNumber": "Q1", "FUseOrgId": 2, "FUseOrgId.FNumber": "200"},
        {"FNumber": "Q1", "FUseOrgId": 1, "FUseOrgId.FNumber": "100"},
    ]


def test_a_single_org_fake_reads_org_keys_the_same_way(harness: Harness, fake: FakeK3Cloud) -> None:
    assert fake.organizations == dict(DEFAULT_ORGANIZATIONS) == {1: "100"}
    (only,) = fake.seed("BD_Customer", [{"FNumber": "S1", "FName": "s"}])
    client = harness.client(fake)
    assert harness.call(
        client, "execute_bill_query", "BD_Customer", KEYS, filter_string="FUseOrgId = 1"
    ) == [[only, "S1", 1, "100", 1, "100", only]]


def test_paging_over_several_organisations_is_complete(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    orgs_fake.seed("BD_Customer", customer_rows(25))
    for n in range(1, 26, 2):  # the odd ones are also used by 200
        orgs_fake.allocate("BD_Customer", f"C{n:05d}", to_orgs=["200"])
    client = harness.client(orgs_fake)
    everything = harness.collect(
        client, "iter_bill_query", "BD_Customer", "FNumber,FUseOrgId.FNumber", page_size=7
    )
    assert len(everything) == 25 + 13
    before = orgs_fake.call_count("ExecuteBillQuery")
    in_200 = harness.collect(
        client,
        "iter_bill_query",
        "BD_Customer",
        "FNumber,FUseOrgId.FNumber",
        filter_string="FUseOrgId.FNumber = '200'",
        order_string="FNumber",
        page_size=4,
    )
    assert in_200 == [[f"C{n:05d}", "200"] for n in range(1, 26, 2)]
    assert orgs_fake.call_count("ExecuteBillQuery") - before == 4  # 4 + 4 + 4 + 1 rows


# -- updates and operations by number --------------------------------------------------------------


def test_an_update_by_fcustid_changes_that_organisations_copy_only(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    orgs_fake.seed("BD_Customer", [{"FNumber": "P1", "FName": "old", "FDescription": "keep"}])
    (copy_id,) = orgs_fake.allocate("BD_Customer", "P1", to_orgs=["200"])
    client = harness.client(orgs_fake)
    update = Customer("P1", "new in 200", create_org="100", use_org="200", id=copy_id)
    result = harness.call(
        client, "batch_save", "BD_Customer", [update], need_update_fields=["FName"]
    )
    assert result.saved == [SavedRow(0, copy_id, "P1")]
    records = by_org(orgs_fake, "P1")
    assert (records["100"]["FName"], records["200"]["FName"]) == ("old", "new in 200")
    assert records["200"]["FDescription"] == "keep"
    # A whole-model update naming another organisation would move the record: refused.
    moved = Customer("P1", "moved", create_org="100", use_org="100", id=copy_id)
    result = harness.call(client, "batch_save", "BD_Customer", [moved])
    (failed,) = result.failed
    assert (failed.msg_code, failed.field_name) == (11, "FUseOrgId")
    assert failed.message == "字段“使用组织”保存后不允许修改"
    assert by_org(orgs_fake, "P1")["200"]["FName"] == "new in 200"


def test_operations_by_number_pick_the_organisation_given(
    harness: Harness, orgs_fake: FakeK3Cloud
) -> None:
    (master,) = orgs_fake.seed("BD_Customer", [{"FNumber": "V1", "FName": "v"}])
    (copy_id,) = orgs_fake.allocate("BD_Customer", "V1", to_orgs=["200"], audited=False)
    client = harness.client(orgs_fake)
    assert harness.call(client, "view", "BD_Customer", number="V1")["Id"] == master
    assert harness.call(client, "view", "BD_Customer", number="V1", create_org_id=2)["Id"] == (
        copy_id
    )
    done = harness.call(client, "submit", "BD_Customer", numbers=["V1"], create_org_id=2)
    assert done == [SavedRow(0, copy_id, "V1")]
    assert by_org(orgs_fake, "V1")["200"]["FDocumentStatus"] == "B"
    with pytest.raises(DataNotFoundError, match=r"\[7\]"):
        harness.call(client, "view", "BD_Customer", number="V1", create_org_id=7)
    # Forms without organisations ignore it.
    generic = harness.call(client, "save", "BD_Material", {"FNumber": "G1", "FName": "g"})
    assert harness.call(client, "view", "BD_Material", number="G1", create_org_id=2)["Id"] == (
        generic.id
    )


def test_the_constructor_checks_the_organisation_table() -> None:
    for options, message in [
        ({"organizations": {}}, "at least one"),
        ({"organizations": {1: "100", 2: "100"}}, "must differ"),
        ({"organizations": {0: "100"}}, "positive integers"),
        ({"organizations": {1: ""}}, "non-empty"),
        ({"default_org": "900"}, "default_org"),
        ({"number_scope": "global"}, "number_scope"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_fake(**options)
    fake = make_fake(default_org="300")
    fake.seed("BD_Customer", [{"FNumber": "Z", "FName": "z"}])
    assert set(by_org(fake, "Z")) == {"300"}
    fake.add_organization(4, "400")
    assert fake.organizations == {**ORGS, 4: "400"}
    fake.allocate("BD_Customer", "Z", to_orgs=["400"])
    assert set(by_org(fake, "Z")) == {"300", "400"}
    with pytest.raises(ValueError, match="must differ"):
        fake.add_organization(5, "400")
