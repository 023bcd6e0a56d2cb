"""The public surface: moved names that still work (with a warning), the options objects, the
typed page limit and the testing helpers shared with ``huke_client.testing``."""

from __future__ import annotations

import importlib
import json
from typing import Any

import httpx
import pytest

import k3cloud_client
import k3cloud_client.testing
from _huke_k3_core import testing as core_testing
from k3cloud_client import (
    Customer,
    K3CloudError,
    K3CloudPageLimitError,
    OperationRow,
    QueryOptions,
    SavedRow,
    SaveOptions,
)
from k3cloud_client.testing import FakeK3Cloud, customer_rows

from .conftest import Harness

MOVED = [
    ("converter", "k3cloud_client.models"),
    ("api_error", "k3cloud_client.errors"),
    ("login_sign", "k3cloud_client.signing"),
    ("signed_headers", "k3cloud_client.signing"),
]


@pytest.mark.parametrize(("name", "home"), MOVED)
def test_a_moved_name_warns_and_is_the_same_object(name: str, home: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"k3cloud_client\.{name} moved to {home}\.{name}"):
        old = getattr(k3cloud_client, name)
    assert old is getattr(importlib.import_module(home), name)
    assert name not in k3cloud_client.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        k3cloud_client.nope  # noqa: B018


def test_to_model_and_from_model_are_deprecated_names_of_to_wire_and_from_wire() -> None:
    customer = Customer("C001", "Acme", extra={"FShortName": "A"})
    with pytest.warns(DeprecationWarning, match=r"Customer\.to_model\(\) is renamed"):
        model = customer.to_model()
    assert model == customer.to_wire()
    with pytest.warns(DeprecationWarning, match=r"Customer\.from_model\(\) is renamed"):
        again = Customer.from_model(model)
    assert again == Customer.from_wire(model)
    assert again.to_wire() == model


def test_the_old_private_signing_module_still_imports() -> None:
    from k3cloud_client import _signing, signing

    assert _signing.decode_client_secret is signing.decode_client_secret


def test_operation_rows_are_saved_rows(harness: Harness, fake: FakeK3Cloud) -> None:
    assert OperationRow is SavedRow
    fake.seed("BD_Customer", customer_rows(2))
    client = harness.client(fake)
    rows = harness.call(client, "unaudit", "BD_Customer", numbers=["C00001"])
    assert rows == [SavedRow(0, 100001, "C00001")]
    assert isinstance(rows[0], OperationRow)


def test_the_testing_package_exports_the_shared_helpers() -> None:
    for name in ("Fault", "LoopbackServer", "serve", "MAX_JSON_DEPTH"):
        assert name in k3cloud_client.testing.__all__
        assert getattr(k3cloud_client.testing, name) is getattr(core_testing, name)
    for name in k3cloud_client.testing.__all__:
        assert hasattr(k3cloud_client.testing, name), name


# -- SaveOptions -------------------------------------------------------------------------------


def test_save_options_defaults_on_the_wire() -> None:
    assert list(SaveOptions().to_wire().items()) == [
        ("IsAutoSubmitAndAudit", False),
        ("IsVerifyBaseDataField", False),
        ("IsDeleteEntry", True),
        ("ValidateFlag", True),
        ("NumberSearch", True),
    ]


def test_save_options_from_keywords_put_unknown_ones_in_extra() -> None:
    options = SaveOptions.build(
        None,
        {"need_update_fields": ["FName"], "is_new_option": False, "extra": {"X": 1}},
    )
    assert options == SaveOptions(
        need_update_fields=("FName",), extra={"is_new_option": False, "X": 1}
    )
    wire = options.to_wire()
    assert wire["NeedUpDateFields"] == ["FName"]
    assert wire["IsNewOption"] is False
    assert wire["X"] == 1


def test_every_documented_batch_save_option_is_declared_and_sent_only_when_given() -> None:
    assert "IsEntryBatchFill" not in SaveOptions().to_wire()
    given = SaveOptions(
        is_entry_batch_fill=False,
        is_auto_adjust_field=True,
        ignore_interation_flag=True,
        is_control_precision=False,
        validate_repeat_json=True,
        sub_system_id="SAL",
    ).to_wire()
    assert {k: given[k] for k in list(given)[5:]} == {
        "IsEntryBatchFill": False,
        "IsAutoAdjustField": True,
        "IgnoreInterationFlag": True,
        "IsControlPrecision": False,
        "ValidateRepeatJson": True,
        "SubSystemId": "SAL",
    }


def test_keywords_given_with_options_take_precedence() -> None:
    base = SaveOptions(is_auto_submit_and_audit=True, extra={"a_b": 1})
    merged = SaveOptions.build(base, {"validate_flag": False, "c_d": 2})
    assert merged == SaveOptions(
        is_auto_submit_and_audit=True, validate_flag=False, extra={"a_b": 1, "c_d": 2}
    )
    assert SaveOptions.build(base, {}) is base


def test_options_must_be_an_options_object() -> None:
    with pytest.raises(TypeError, match="options= takes a SaveOptions, not dict"):
        SaveOptions.build({"validate_flag": False}, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options= takes a QueryOptions, not SaveOptions"):
        QueryOptions.build(SaveOptions(), {}, method="bill_query")  # type: ignore[arg-type]


def _sent_bodies(harness: Harness, fake: FakeK3Cloud, method: str, *args: Any, **kwargs: Any):
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return fake(request)

    client = harness.client(transport=httpx.MockTransport(handler))
    harness.call(client, method, *args, **kwargs)
    return sent


@pytest.mark.parametrize("method", ["batch_save", "save"])
def test_options_object_and_keywords_send_the_same_body(
    harness: Harness, fake: FakeK3Cloud, method: str
) -> None:
    keywords: dict[str, Any] = {
        "need_return_fields": ["FNumber"],
        "is_auto_submit_and_audit": True,
        "is_entry_batch_fill": False,
    }
    model: Any = [Customer("C1", "a")] if method == "batch_save" else Customer("C1", "a")
    by_keywords = _sent_bodies(harness, fake, method, "BD_Customer", model, **keywords)
    by_object = _sent_bodies(
        harness,
        fake,
        method,
        "BD_Customer",
        Customer("C2", "b") if method == "save" else [Customer("C2", "b")],
        options=SaveOptions(
            need_return_fields=["FNumber"],
            is_auto_submit_and_audit=True,
            extra={"is_entry_batch_fill": False},
        ),
    )
    data_keywords = {k: v for k, v in by_keywords[0]["data"].items() if k != "Model"}
    data_object = {k: v for k, v in by_object[0]["data"].items() if k != "Model"}
    assert data_keywords == data_object
    assert list(data_keywords)[-1] == "IsEntryBatchFill"
    assert data_keywords["NeedReturnFields"] == ["FNumber"]


# -- QueryOptions and the page limit ------------------------------------------------------------


def test_query_options_object_equals_keywords(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.seed("BD_Customer", customer_rows(5))
    client = harness.client(fake)
    options = QueryOptions(filter_string="FNumber <> 'C00002'", order_string="FNumber", limit=2)
    by_object = harness.call(
        client, "execute_bill_query", "BD_Customer", "FNumber", options=options
    )
    by_keywords = harness.call(
        client,
        "execute_bill_query",
        "BD_Customer",
        "FNumber",
        filter_string="FNumber <> 'C00002'",
        order_string="FNumber",
        limit=2,
    )
    assert by_object == by_keywords == [["C00001"], ["C00003"]]
    pages = harness.collect(client, "iter_bill_query", "BD_Customer", "FNumber", options=options)
    assert pages == [["C00001"], ["C00003"], ["C00004"], ["C00005"]]


@pytest.mark.parametrize(
    ("method", "keyword"),
    [
        ("execute_bill_query", "page_size"),
        ("execute_bill_query", "max_pages"),
        ("bill_query", "filter"),
        ("iter_bill_query", "limit"),
    ],
)
def test_a_keyword_a_query_does_not_take_is_a_type_error_at_the_call(
    harness: Harness, method: str, keyword: str
) -> None:
    client = harness.client(FakeK3Cloud(acct_id="a", user_name="u"))
    # iter_bill_query raises at the call itself, before any iteration, as Python would.
    call = getattr(client, method) if method == "iter_bill_query" else harness.call
    arguments = () if method == "iter_bill_query" else (client, method)
    with pytest.raises(TypeError, match=rf"{method}\(\) got an unexpected keyword argument"):
        call(*arguments, "BD_Customer", "FNumber", **{keyword: 1})


def test_the_page_limit_error_says_which_query_and_where(harness: Harness) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=[["A"]] * 5))
    with pytest.raises(K3CloudPageLimitError) as caught:
        harness.collect(
            harness.client(transport=transport),
            "iter_bill_query",
            "BD_Customer",
            "FNumber",
            page_size=5,
            max_pages=3,
            start_row=10,
        )
    error = caught.value
    assert isinstance(error, K3CloudError)
    assert str(error) == (
        "ExecuteBillQuery returned full pages 3 times (max_pages); narrow the filter or raise "
        "max_pages"
    )
    assert (error.max_pages, error.operation, error.start_row) == (
        3,
        "ExecuteBillQuery BD_Customer",
        25,
    )


def test_iter_bill_query_pages_through_execute_bill_query(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    # A subclass that overrides execute_bill_query (to record or to throttle) sees every page,
    # with the keyword arguments it always got.
    fake.seed("BD_Customer", customer_rows(5))
    seen: list[dict[str, Any]] = []
    base = harness.client(fake)

    class Recording(type(base)):  # type: ignore[misc]
        def execute_bill_query(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(kwargs)
            return super().execute_bill_query(*args, **kwargs)

    client = harness.client(fake)
    client.__class__ = Recording
    rows = harness.collect(
        client, "iter_bill_query", "BD_Customer", "FNumber", order_string="FNumber", page_size=2
    )
    assert len(rows) == 5
    assert seen == [
        {
            "filter_string": "",
            "order_string": "FNumber",
            "start_row": start,
            "limit": 2,
            "top_row_count": 0,
        }
        for start in (0, 2, 4)
    ]
