"""Exception types and messages a user (or a log alert) matched on before the structure pass."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from k3cloud_client import AsyncK3CloudClient, K3CloudClient

APP_ID = "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ"


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


def _k3(cls: Any) -> Any:
    http = (httpx.Client if cls is K3CloudClient else httpx.AsyncClient)(
        transport=httpx.MockTransport(_never)
    )
    return cls(
        "http://k3.test/k3cloud/",
        acct_id="A",
        user_name="u",
        app_id=APP_ID,
        app_secret="s",
        max_retries=0,
        http_client=http,
    )


@pytest.mark.parametrize(
    ("cls", "method", "keyword"),
    [
        (K3CloudClient, "execute_bill_query", "page_size"),
        (K3CloudClient, "execute_bill_query", "bogus"),
        (K3CloudClient, "bill_query", "max_pages"),
        (K3CloudClient, "iter_bill_query", "limit"),
        (AsyncK3CloudClient, "execute_bill_query", "bogus"),
        (AsyncK3CloudClient, "bill_query", "page_size"),
        (AsyncK3CloudClient, "iter_bill_query", "limit"),
    ],
)
def test_unexpected_query_keyword_message_names_the_class(
    cls: Any, method: str, keyword: str
) -> None:
    # 90a651c (Python's own TypeError): "K3CloudClient.execute_bill_query() got an unexpected
    # keyword argument 'bogus'". HEAD (QueryOptions.build): "execute_bill_query() got ...".
    expected = f"{cls.__name__}.{method}() got an unexpected keyword argument '{keyword}'"
    client = _k3(cls)

    def call() -> None:
        result = getattr(client, method)("BD_Customer", "FNumber", **{keyword: 5})
        if asyncio.iscoroutine(result):  # the async one-call methods raise when awaited (listed)
            asyncio.run(result)

    with pytest.raises(TypeError) as caught:
        call()
    assert str(caught.value) == expected
