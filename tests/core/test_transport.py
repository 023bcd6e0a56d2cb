from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

import _huke_k3_core._transport as transport_module
from _huke_k3_core import (
    AsyncAPIClient,
    ConnectionFailedError,
    ErrorTypes,
    HTTPStatusError,
    Redactor,
    RequestTimeoutError,
    ResponseFormatError,
    RetryableResponse,
    RetryPolicy,
    SDKError,
    SyncAPIClient,
    dumps,
)
from _huke_k3_core.testing import Fault, FaultInjectingSimulator

SECRET = "s3cr3t-value-never-shown"


class DemoError(SDKError):
    pass


class DemoHTTPError(DemoError, HTTPStatusError):
    pass


class DemoConnectionError(DemoError, ConnectionFailedError):
    pass


class DemoTimeoutError(DemoConnectionError, RequestTimeoutError):
    pass


class DemoResponseError(DemoError, ResponseFormatError):
    pass


class BusyError(DemoError):
    pass


ERRORS = ErrorTypes(
    http_status=DemoHTTPError,
    connection=DemoConnectionError,
    timeout=DemoTimeoutError,
    response_format=DemoResponseError,
)


class _Demo:
    _errors = ERRORS
    _logger = logging.getLogger("demo_client")

    def _parse(self, response: httpx.Response) -> Any:
        body = self.decode_json(response)  # type: ignore[attr-defined]
        if body.get("busy"):
            raise RetryableResponse(BusyError("server busy"), retry_after=0.25)
        return body


class DemoClient(_Demo, SyncAPIClient):
    def __init__(self, http_client: httpx.Client | None = None, **kw: Any) -> None:
        super().__init__(
            base_url=kw.pop("base_url", "https://api.example.test/root"),
            timeout=kw.pop("timeout", 5.0),
            max_retries=kw.pop("max_retries", 2),
            retry=RetryPolicy(initial_delay=0.1, jitter=0.0),
            http_client=http_client,
            redactor=Redactor([SECRET]),
        )
        self.built = 0

    def call(self, body: Any, *, idempotent: bool = True) -> Any:
        def make() -> httpx.Request:
            self.built += 1
            return self._build_request("op/run", dumps(body), {"x-attempt": str(self.built)})

        return self._send(make, self._parse, idempotent=idempotent)


class AsyncDemoClient(_Demo, AsyncAPIClient):
    def __init__(self, http_client: httpx.AsyncClient | None = None, **kw: Any) -> None:
        super().__init__(
            base_url="https://api.example.test/root",
            timeout=5.0,
            max_retries=kw.pop("max_retries", 2),
            retry=RetryPolicy(initial_delay=0.1, jitter=0.0),
            http_client=http_client,
            redactor=Redactor([SECRET]),
        )

    async def call(self, body: Any, *, idempotent: bool = True) -> Any:
        return await self._send(
            lambda: self._build_request("op/run", dumps(body)), self._parse, idempotent=idempotent
        )


class Echo(FaultInjectingSimulator):
    def handle(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=request.content)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(transport_module.time, "sleep", recorded.append)

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(transport_module, "_async_sleep", fake_sleep)
    return recorded


@pytest.fixture
def echo() -> Echo:
    return Echo()


def make_client(echo: Echo, **kw: Any) -> DemoClient:
    return DemoClient(httpx.Client(transport=echo.transport()), **kw)


def test_success_sends_exact_json_bytes_to_joined_url(echo: Echo) -> None:
    client = make_client(echo)
    assert client.call({"名字": "张三"}) == {"名字": "张三"}
    request = echo.received[-1]
    assert str(request.url) == "https://api.example.test/root/op/run"
    assert request.content == '{"名字":"张三"}'.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("huke-k3-bridge/")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_statuses_are_retried_with_a_fresh_request(
    echo: Echo, sleeps: list[float], status: int
) -> None:
    echo.inject(Fault.http_status(status), times=2)
    client = make_client(echo)
    assert client.call({"a": 1}) == {"a": 1}
    assert echo.request_count == 3
    assert [r.headers["x-attempt"] for r in echo.received] == ["1", "2", "3"]
    assert sleeps == [0.1, 0.2]


def test_retry_after_is_honoured(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.http_status(429, retry_after=3))
    assert make_client(echo).call({}) == {}
    assert sleeps == [3.0]


def test_exhausted_retries_raise_typed_error_with_status_and_snippet(
    echo: Echo, sleeps: list[float]
) -> None:
    echo.inject(Fault.http_status(503, body=b"overloaded " + SECRET.encode()), times=3)
    with pytest.raises(DemoHTTPError) as info:
        make_client(echo).call({})
    assert info.value.status_code == 503
    assert "overloaded" in info.value.body
    assert SECRET not in str(info.value)
    assert SECRET not in info.value.body
    assert echo.request_count == 3


def test_client_errors_are_not_retried(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.http_status(400))
    with pytest.raises(DemoHTTPError, match="HTTP 400"):
        make_client(echo).call({})
    assert echo.request_count == 1
    assert sleeps == []


def test_non_idempotent_calls_are_not_retried_after_reaching_the_server(
    echo: Echo, sleeps: list[float]
) -> None:
    client = make_client(echo)
    echo.inject(Fault.http_status(503))
    with pytest.raises(DemoHTTPError):
        client.call({}, idempotent=False)
    echo.inject(Fault.reply_timeout())
    with pytest.raises(DemoTimeoutError) as info:
        client.call({}, idempotent=False)
    assert info.value.reached_server is True
    echo.inject(Fault.reset())
    with pytest.raises(DemoConnectionError):
        client.call({}, idempotent=False)
    assert echo.request_count == 3


def test_non_idempotent_calls_retry_when_the_server_was_never_reached(
    echo: Echo, sleeps: list[float]
) -> None:
    echo.inject(Fault.connect_error())
    echo.inject(Fault.http_status(429))
    assert make_client(echo).call({"w": 1}, idempotent=False) == {"w": 1}
    assert echo.request_count == 3


def test_connect_error_after_retries_says_it_never_reached(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.connect_error(), times=3)
    with pytest.raises(DemoConnectionError) as info:
        make_client(echo).call({})
    assert info.value.reached_server is False
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeouts_and_resets_are_retried_when_idempotent(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.timeout())
    echo.inject(Fault.reset())
    assert make_client(echo).call({"x": 1}) == {"x": 1}
    assert echo.request_count == 3


def test_retryable_response_is_retried_then_its_error_raised(
    echo: Echo, sleeps: list[float]
) -> None:
    echo.inject(Fault.reply(b'{"busy": true}'), times=3)
    with pytest.raises(BusyError, match="server busy"):
        make_client(echo).call({}, idempotent=False)
    assert sleeps == [0.25, 0.25]


def test_body_that_is_not_json_is_a_format_error_with_snippet(echo: Echo) -> None:
    echo.inject(Fault.malformed_json())
    with pytest.raises(DemoResponseError, match="not JSON") as info:
        make_client(echo, max_retries=0).call({})
    assert '"code": 200' in info.value.body
    assert info.value.transient


def test_body_cut_short_is_retried_when_idempotent_only(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.malformed_json())
    assert make_client(echo).call({"r": 1}) == {"r": 1}
    echo.inject(Fault.malformed_json())
    with pytest.raises(DemoResponseError):
        make_client(echo).call({"w": 1}, idempotent=False)
    assert echo.request_count == 3


def test_zero_retries_means_one_attempt(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.http_status(500))
    with pytest.raises(DemoHTTPError):
        make_client(echo, max_retries=0).call({})
    assert echo.request_count == 1


def test_retry_is_logged_without_secrets(
    echo: Echo, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    echo.inject(Fault.http_status(503, body=SECRET.encode()))
    with caplog.at_level(logging.DEBUG, logger="demo_client"):
        make_client(echo).call({})
    assert any("retrying in 0.10s" in r.getMessage() for r in caplog.records)
    assert any("-> 200" in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_timeout_is_applied_per_request_even_with_a_user_client() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    client = DemoClient(
        httpx.Client(transport=httpx.MockTransport(handler), timeout=99), timeout=1.5
    )
    client.call({})
    assert seen[0]["read"] == 1.5


def test_pool_ownership(echo: Echo) -> None:
    own = DemoClient()
    own.close()
    assert own._http.is_closed

    user_http = httpx.Client(transport=echo.transport())
    with DemoClient(user_http) as client:
        copy = client.with_options(max_retries=0, timeout=2.0)
        assert copy._http is client._http
        assert copy.max_retries == 0
        assert client.max_retries == 2
        assert copy.timeout == httpx.Timeout(2.0)
        copy.close()
        assert not user_http.is_closed
    assert not user_http.is_closed
    user_http.close()


def test_with_options_copy_never_closes_the_shared_pool() -> None:
    client = DemoClient()
    client.with_options(max_retries=5).close()
    assert not client._http.is_closed
    client.close()
    assert client._http.is_closed


def test_bad_base_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        SyncAPIClient.__init__(
            DemoClient.__new__(DemoClient),
            base_url="ftp:/nowhere",
            timeout=1.0,
            max_retries=0,
            retry=None,
            http_client=None,
            redactor=Redactor(),
        )


async def test_async_client_has_the_same_behaviour(echo: Echo, sleeps: list[float]) -> None:
    echo.inject(Fault.http_status(503))
    echo.inject(Fault.timeout())
    async with AsyncDemoClient(httpx.AsyncClient(transport=echo.transport())) as client:
        assert await client.call({"a": "é"}) == {"a": "é"}
        echo.inject(Fault.http_status(503))
        with pytest.raises(DemoHTTPError):
            await client.call({}, idempotent=False)
    assert sleeps == [0.1, 0.2]
    assert echo.request_count == 4


def test_loopback_server_round_trip_and_reset(echo: Echo, sleeps: list[float]) -> None:
    with echo.serve() as server:
        client = DemoClient(httpx.Client(), base_url=server.url)
        echo.inject(Fault.reset())
        assert client.call({"k": "v"}) == {"k": "v"}
        assert client.call({"k": "w"}) == {"k": "w"}
        client._http.close()
    assert echo.request_count == 3
    assert server.connections_opened == 2  # the reset killed one connection; the next was reused


def test_loopback_server_hang_times_out() -> None:
    echo = Echo()
    echo.inject(Fault.timeout())
    with echo.serve(hang=1.0) as server, httpx.Client(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(server.url + "/x", content=b"{}")
        assert http.post(server.url + "/x", content=b"{}").status_code == 200


def test_loopback_server_disables_nagle_so_replies_are_not_delayed(echo: Echo) -> None:
    # Headers and body are separate writes; with Nagle on, the body waits for a delayed ACK.
    import socket

    with echo.serve() as server, httpx.Client() as http:
        http.post(server.url + "/x", content=b"{}")
        connections = list(server._server._open)
        assert len(connections) == 1  # the one request's, kept alive
        assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in connections)
