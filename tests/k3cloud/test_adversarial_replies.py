"""Replies a misbehaving server (or a proxy in front of it) can send: every one is a typed
``K3CloudError`` saying what was received, and a write whose reply is lost is reported uncertain,
never sent again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from k3cloud_client import (
    Customer,
    K3CloudHTTPError,
    K3CloudResponseError,
    PasswordLogin,
)
from k3cloud_client.testing import TEST_ACCT_ID, TEST_USER_NAME, FakeK3Cloud

from .conftest import PASSWORD, Harness

GARBAGE = b"\x1f\x8b\x08garbage"
DEEP = b"[" * 5000 + b"]" * 5000
#: A reply for one request: a response, or None for the fake's own answer.
Reply = Callable[[httpx.Request, FakeK3Cloud], "httpx.Response | None"]


class _Raw(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body handed over undecoded (``content=`` would decode it in the handler already)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def garbled(request: httpx.Request, fake: FakeK3Cloud) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return httpx.Response(200, stream=_Raw(GARBAGE), headers=headers)


def saved_then_garbled(request: httpx.Request, fake: FakeK3Cloud) -> httpx.Response:
    fake(request)  # the server did the work; only its reply is damaged
    return garbled(request, fake)


def body(content: bytes, status: int = 200, **headers: str) -> Reply:
    return lambda request, fake: httpx.Response(status, content=content, headers=headers)


class Server:
    """The fake, except that requests to ``operation`` take the next of ``replies`` (then the
    fake answers again)."""

    def __init__(self, fake: FakeK3Cloud, operation: str, *replies: Reply) -> None:
        self.fake = fake
        self.operation = operation
        self.replies = list(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if f".{self.operation}." in request.url.path and self.replies:
            reply = self.replies.pop(0)(request, self.fake)
            if reply is not None:
                return reply
        return self.fake(request)


def serve(fake: FakeK3Cloud, operation: str, *replies: Reply) -> httpx.MockTransport:
    return httpx.MockTransport(Server(fake, operation, *replies))


def password_login() -> PasswordLogin:
    return PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)


def test_a_query_reply_nested_past_the_parser_is_a_response_error_naming_its_depth(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    client = harness.client(transport=serve(fake, "ExecuteBillQuery", *[body(DEEP)] * 3))
    with pytest.raises(K3CloudResponseError) as caught:
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert "nested 5000 levels deep" in str(caught.value)
    assert caught.value.body.startswith("[[[[")
    assert fake.call_count("ExecuteBillQuery") == 0  # answered for the fake, never reached it


def test_a_login_reply_nested_past_the_parser_is_a_response_error(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    client = harness.client(
        transport=serve(fake, "ValidateUser", body(DEEP)), auth=password_login()
    )
    with pytest.raises(K3CloudResponseError, match="ValidateUser answered"):
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")


def test_a_session_call_reply_nested_past_the_parser_is_a_response_error(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    # "MsgCode" in it: the session flow looks for a lost session in the reply before the client
    # reads it.
    deep = b'{"MsgCode": 1, "x": ' + DEEP + b"}"
    client = harness.client(
        transport=serve(fake, "ExecuteBillQuery", body(deep)), auth=password_login()
    )
    with pytest.raises(K3CloudResponseError, match="nested 5001 levels deep"):
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")


def test_a_query_reply_its_content_encoding_garbles_is_read_again(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.seed("BD_Customer", [{"FNumber": "C1", "FName": "one"}])
    client = harness.client(transport=serve(fake, "ExecuteBillQuery", saved_then_garbled))
    rows = harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert rows == [["C1"]]
    assert fake.call_count("ExecuteBillQuery") == 2


def test_a_batch_save_whose_reply_is_garbled_is_uncertain_and_not_sent_again(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    client = harness.client(transport=serve(fake, "BatchSave", saved_then_garbled))
    rows = [Customer("C1", "one"), Customer("C2", "two")]
    result = harness.call(client, "batch_save", "BD_Customer", rows)
    assert fake.call_count("BatchSave") == 1
    assert [(row.index, row.uncertain) for row in result.failed] == [(0, True), (1, True)]
    assert "Content-Encoding 'gzip'" in result.failed[0].message
    assert len(fake.records("BD_Customer")) == 2  # why they are uncertain, not failed


def test_a_garbled_login_reply_is_retried_even_for_a_write(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    # The login failed, not the save: the save was never sent, so sending it now is safe.
    client = harness.client(transport=serve(fake, "ValidateUser", garbled), auth=password_login())
    harness.call(client, "save", "BD_Customer", Customer("C1", "one"))
    assert fake.call_count("Save") == 1
    assert len(fake.records("BD_Customer")) == 1


@pytest.mark.parametrize("operation", ["ExecuteBillQuery", "ValidateUser"])
def test_a_redirect_is_an_http_error_naming_status_and_location(
    harness: Harness, fake: FakeK3Cloud, operation: str
) -> None:
    redirect = body(b"", 301, Location="https://k3.test/k3cloud/x.kdsvc?token=SECRET-T0K3N")
    client = harness.client(transport=serve(fake, operation, redirect), auth=password_login())
    with pytest.raises(K3CloudHTTPError) as caught:
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    error = caught.value
    assert error.status_code == 301
    assert error.location == "https://k3.test/k3cloud/x.kdsvc"
    assert "HTTP 301, a redirect to https://k3.test/k3cloud/x.kdsvc" in str(error)
    assert "start the base URL with https://" in str(error)  # the client's URL is http://
    assert "SECRET-T0K3N" not in str(error)
