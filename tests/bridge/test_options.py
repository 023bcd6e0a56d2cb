"""A run's options as one object (issue 10.1): ``SyncOptions`` and the typed keywords are the
same run, checked once, in one place."""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from huke_k3_bridge import (
    AsyncSyncKwargs,
    SyncKwargs,
    SyncOptions,
    async_sync_customers,
    sync_customers,
    trade_to_customer,
)

from .conftest import CONFIRM_TIMEOUT, Stage
from .test_arguments import ASYNC_ONLY, BAD_ARGUMENTS

ASYNC_ONLY_KEYS = {"concurrency", "fetch_concurrency"}


def _options(stage: Stage, **changes: Any) -> SyncOptions:
    return SyncOptions(
        start=stage.start,
        end=stage.end,
        progress=False,
        confirm_timeout=CONFIRM_TIMEOUT,
        **changes,
    )


def test_the_keywords_are_the_options_fields() -> None:
    fields = {field.name for field in attrs.fields(SyncOptions) if field.init}
    assert set(AsyncSyncKwargs.__optional_keys__) == fields
    assert set(SyncKwargs.__optional_keys__) == fields - ASYNC_ONLY_KEYS
    assert not AsyncSyncKwargs.__required_keys__


def test_defaults_are_the_documented_ones() -> None:
    options = SyncOptions()
    assert (options.on_existing, options.batch_size, options.page_size) == ("skip", 400, 100)
    assert (options.concurrency, options.fetch_concurrency) == (8, 4)
    assert options.transform is trade_to_customer
    assert dict(options.save_flags) == {
        "IsAutoSubmitAndAudit": True,
        "IsVerifyBaseDataField": False,
    }


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS + ASYNC_ONLY)
def test_options_are_checked_when_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        SyncOptions(**kwargs)
    assert message in str(info.value)
    with pytest.raises(ValueError) as again:
        attrs.evolve(SyncOptions(), **kwargs)
    assert message in str(again.value)


def test_options_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        SyncOptions().batch_size = 1  # type: ignore[misc]


def test_an_options_object_runs_as_its_keywords_do(stage: Stage) -> None:
    trades = stage.generate(12, buyers=5)
    with stage.clients() as (huke, k3):
        report = sync_customers(huke, k3, options=_options(stage, batch_size=2))
    assert report.ok
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})
    created = report.counts["created"]
    batches = [len(body["data"]["Model"]) for body in stage.sent("BatchSave")]
    assert batches == [2] * (created // 2) + [1] * (created % 2)
    again = stage.sync(batch_size=2)
    assert again.counts["existed"] == report.counts["created"]


def test_keywords_beside_options_change_them(stage: Stage) -> None:
    stage.generate(6, buyers=3)
    with stage.clients() as (huke, k3):
        report = sync_customers(huke, k3, options=_options(stage), dry_run=True)
    assert report.dry_run
    assert not stage.sent("BatchSave")


def test_async_takes_an_options_object(stage: Stage) -> None:
    trades = stage.generate(12, buyers=5)
    options = _options(stage, concurrency=2, fetch_concurrency=3)
    report = anyio.run(lambda: stage.async_sync(options=options))
    assert report.ok
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})


@pytest.mark.parametrize("name", sorted(ASYNC_ONLY_KEYS | {"not_an_option"}))
def test_sync_refuses_a_keyword_it_does_not_take(stage: Stage, name: str) -> None:
    with stage.clients() as (huke, k3), pytest.raises(TypeError) as info:
        sync_customers(huke, k3, **{name: 2})  # type: ignore[arg-type]
    assert str(info.value) == f"sync_customers() got an unexpected keyword argument {name!r}"
    assert not stage.fake_huke.received


def test_async_refuses_a_keyword_it_does_not_take() -> None:
    async def run() -> None:
        await async_sync_customers(None, None, batch=1)  # type: ignore[arg-type,call-arg]

    with pytest.raises(TypeError) as info:
        anyio.run(run)
    assert str(info.value) == "async_sync_customers() got an unexpected keyword argument 'batch'"


def test_options_must_be_sync_options(stage: Stage) -> None:
    with stage.clients() as (huke, k3), pytest.raises(TypeError) as info:
        sync_customers(huke, k3, options={"batch_size": 2})  # type: ignore[arg-type]
    assert str(info.value) == "options must be a SyncOptions, not dict"
