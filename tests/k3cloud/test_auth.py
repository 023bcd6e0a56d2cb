"""Session logins: lazy login, session kept, renewal on MsgCode 1, one login per loss under
concurrency."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import httpx
import pytest

from _huke_k3_core import RetryPolicy
from _huke_k3_core.testing import Fault
from k3cloud_client import (
    AppSecretLogin,
    AsyncK3CloudClient,
    Customer,
    K3CloudClient,
    K3CloudResponseError,
    LoginError,
    PasswordLogin,
    SessionLostError,
    SignedHeaderAuth,
    SignLogin,
)
from k3cloud_client.signing import login_sign
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

from .conftest import FAST, PASSWORD, SERVER_URL, Harness

NOW = 1_700_000_000.0


def logins() -> dict[str, Any]:
    return {
        "ValidateUser": PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD),
        "LoginByAppSecret": AppSecretLogin(
            TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET
        ),
        "LoginBySign": SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET),
    }


@pytest.mark.parametrize("service", ["ValidateUser", "LoginByAppSecret", "LoginBySign"])
def test_each_login_logs_in_lazily_once_and_sends_the_session(
    harness: Harness, fake: FakeK3Cloud, service: str
) -> None:
    client = harness.client(fake, auth=logins()[service])
    assert fake.login_count == 0  # lazily: nothing before the first call
    harness.call(client, "batch_save", "BD_Customer", [Customer("C1", "one")])
    rows = harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert rows == [["C1"]]
    assert fake.call_count(service) == 1
    assert fake.login_count == 1
    business = [r for r in fake.received if "DynamicFormService" in r.url.path]
    (session_id,) = fake.session_ids()
    for request in business:
        assert request.headers["kdservice-sessionid"] == session_id
        assert f"kdservice-sessionid={session_id}" in request.headers["Cookie"]
        assert "X-Kd-Appkey" not in request.headers  # a session, not signed headers


def test_login_request_bodies_match_the_reference() -> None:
    sent: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"LoginResultType": 0, "Message": "nope"})

    for auth in logins().values():
        if isinstance(auth, SignLogin):
            auth = SignLogin(
                TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, clock=lambda: NOW
            )
        client = K3CloudClient(
            SERVER_URL,
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            auth=auth,
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        )
        with pytest.raises(LoginError):
            client.view("BD_Customer", number="C1")
    prefix = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.AuthService."
    assert sent == [
        (
            prefix + "ValidateUser.common.kdsvc",
            {"parameters": [TEST_ACCT_ID, TEST_USER_NAME, PASSWORD, 2052]},
        ),
        (
            prefix + "LoginByAppSecret.common.kdsvc",
            {"parameters": [TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, 2052]},
        ),
        (
            prefix + "LoginBySign.common.kdsvc",
            {
                "parameters": [
                    TEST_ACCT_ID,
                    TEST_USER_NAME,
                    TEST_APP_ID,
                    1700000000,
                    "91020350abf9d30f0d7316b6db1c5a14eba2bde38b42cc8e8ca8b10aa0ef783d",
                    2052,
                ]
            },
        ),
    ]


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, "wrong-password"), "用户名或密码错误！"),
        (PasswordLogin("other-acct", TEST_USER_NAME, PASSWORD), "数据中心不存在"),
        (
            AppSecretLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, "f" * 32),
            "第三方系统登录授权验证失败：应用 ID 或应用密钥错误",
        ),
        (SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, "f" * 32), "签名验证失败"),
        (
            SignLogin(
                TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, clock=lambda: 1000.0
            ),
            "签名已过期（时间戳与服务器时间相差过大）",
        ),
    ],
)
def test_a_refused_login_raises_login_error(
    harness: Harness, fake: FakeK3Cloud, auth: Any, message: str
) -> None:
    client = harness.client(fake, auth=auth)
    with pytest.raises(LoginError) as info:
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert info.value.result_type == 0
    assert info.value.message == message
    assert info.value.service == type(auth).service
    assert fake.call_count("ExecuteBillQuery") == 0


def test_login_result_minus_5_is_usable_and_session_id_falls_back_to_the_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "AuthService" in request.url.path:
            return httpx.Response(200, json={"LoginResultType": -5, "KDSVCSessionId": "sid-body-1"})
        assert request.headers["kdservice-sessionid"] == "sid-body-1"
        assert request.headers["Cookie"] == "kdservice-sessionid=sid-body-1"
        return httpx.Response(200, json=[["C1"]])

    client = K3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        password=PASSWORD,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert client.execute_bill_query("BD_Customer", "FNumber") == [["C1"]]


def test_the_cookie_wins_over_the_body_and_all_login_cookies_are_sent(fake: FakeK3Cloud) -> None:
    fake.session_id_in_body = False  # the cookie is then the only source
    client = Harness("sync").client(
        fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)
    )
    client.execute_bill_query("BD_Customer", "FNumber")
    query = next(r for r in fake.received if "ExecuteBillQuery" in r.url.path)
    assert "ASP.NET_SessionId=" in query.headers["Cookie"]
    assert query.headers["kdservice-sessionid"] == fake.session_ids()[0]


def test_a_login_without_any_session_id_is_a_response_error(fake: FakeK3Cloud) -> None:
    fake.session_id_in_body = False
    fake.session_cookie = False
    client = Harness("sync").client(
        fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)
    )
    with pytest.raises(K3CloudResponseError, match="sent no session id"):
        client.execute_bill_query("BD_Customer", "FNumber")


def test_session_expired_mid_run_is_renewed_transparently(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        if "BatchSave" in request.url.path and fake.call_count("BatchSave") == 1:
            fake.expire_sessions()  # the session dies right after the first chunk
        return response

    client = harness.client(
        transport=httpx.MockTransport(handler),
        auth=SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET),
    )
    customers = [Customer(f"C{n:04d}", f"Customer {n}") for n in range(1000)]
    result = harness.call(
        client, "batch_save", "BD_Customer", customers, chunk_size=400, **_sequential(harness)
    )
    assert result.ok
    assert [row.index for row in result.saved] == list(range(1000))
    assert fake.login_count == 2
    # 3 chunks, the second one sent twice (refused with MsgCode 1, then replayed).
    assert fake.call_count("BatchSave") == 4
    assert len(fake.records("BD_Customer")) == 1000


def test_a_server_refusing_every_new_session_costs_two_logins_then_session_lost() -> None:
    lost = {
        "Result": {
            "ResponseStatus": {"IsSuccess": False, "MsgCode": 1, "Errors": [{"Message": "x"}]}
        }
    }
    counts = {"login": 0, "call": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if "AuthService" in request.url.path:
            counts["login"] += 1
            return httpx.Response(200, json={"LoginResultType": 1, "KDSVCSessionId": "s-12345678"})
        counts["call"] += 1
        return httpx.Response(200, json=lost)

    client = K3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        password=PASSWORD,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(SessionLostError) as info:
        client.view("BD_Customer", number="C1")
    assert info.value.msg_code == 1
    assert counts == {"login": 2, "call": 2}


def test_signed_headers_need_no_login(harness: Harness, fake: FakeK3Cloud) -> None:
    client = harness.client(fake)
    assert isinstance(client.auth, SignedHeaderAuth)
    harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert fake.login_count == 0
    assert fake.auth_failures == []


def test_concurrent_threads_after_a_session_loss_cause_exactly_one_login(
    fake: FakeK3Cloud,
) -> None:
    fake.seed("BD_Customer", [{"FNumber": "C1", "FName": "one"}])
    threads_count = 8
    with fake.serve(latency=0.05) as server:
        client = K3CloudClient(
            server.url + "/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            auth=SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET),
            retry=FAST,
        )
        with client:
            client.execute_bill_query("BD_Customer", "FNumber")
            assert fake.login_count == 1
            fake.expire_sessions()
            barrier = threading.Barrier(threads_count)
            results: list[Any] = []

            def work() -> None:
                barrier.wait()
                results.append(client.execute_bill_query("BD_Customer", "FNumber"))

            threads = [threading.Thread(target=work) for _ in range(threads_count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
    assert results == [[["C1"]]] * threads_count
    assert fake.login_count == 2  # the first login, and ONE renewal
    # Every thread met the lost session (sent twice), yet only one logged in again.
    assert fake.call_count("ExecuteBillQuery") == 1 + 2 * threads_count


async def test_concurrent_tasks_after_a_session_loss_cause_exactly_one_login(
    fake: FakeK3Cloud,
) -> None:
    fake.seed("BD_Customer", [{"FNumber": "C1", "FName": "one"}])
    tasks = 8
    with fake.serve(latency=0.05) as server:
        async with AsyncK3CloudClient(
            server.url + "/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            password=PASSWORD,
            retry=FAST,
        ) as client:
            # No session yet: concurrent first calls also log in once.
            results: list[Any] = []

            async def work() -> None:
                results.append(await client.execute_bill_query("BD_Customer", "FNumber"))

            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(work)
            assert fake.login_count == 1
            fake.expire_sessions()
            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(work)
    assert results == [[["C1"]]] * (2 * tasks)
    assert fake.login_count == 2
    assert fake.call_count("ExecuteBillQuery") == tasks + 2 * tasks


def test_a_login_that_times_out_does_not_make_a_write_uncertain(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    # The login failed, so the write was never sent: retrying it is safe.
    fake.inject(Fault.timeout(), path="ValidateUser")
    client = harness.client(fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD))
    result = harness.call(client, "batch_save", "BD_Customer", [Customer("C1", "one")])
    assert result.ok
    assert fake.call_count("ValidateUser") == 2
    assert fake.call_count("BatchSave") == 1


def test_a_login_answering_503_is_retried_even_for_a_write(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.inject(Fault.http_status(503), path="ValidateUser")
    client = harness.client(fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD))
    result = harness.call(client, "batch_save", "BD_Customer", [Customer("C1", "one")])
    assert result.ok
    assert fake.call_count("ValidateUser") == 2


def test_a_failed_login_stops_the_remaining_chunks(harness: Harness, fake: FakeK3Cloud) -> None:
    client = harness.client(
        fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, "wrong"), retry=RetryPolicy()
    )
    customers = [Customer(f"C{n}", "x") for n in range(10)]
    result = harness.call(
        client, "batch_save", "BD_Customer", customers, chunk_size=3, **_sequential(harness)
    )
    assert [row.index for row in result.failed] == list(range(10))
    assert not result.saved
    assert all(not row.uncertain for row in result.failed)
    assert "用户名或密码错误！" in result.failed[0].message
    assert result.failed[9].message.startswith("not sent: an earlier call failed with ")
    # One login attempt only: repeating a refused login could lock the account.
    assert fake.login_count == 1


def _sequential(harness: Harness) -> dict[str, Any]:
    return {"concurrency": 1} if harness.is_async else {}


def test_auth_reprs_hide_secrets() -> None:
    for auth in logins().values():
        assert PASSWORD not in repr(auth)
        assert TEST_APP_SECRET not in repr(auth)
    signed = SignedHeaderAuth(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET)
    assert repr(signed) == (
        "SignedHeaderAuth(acct_id='5db25ac8d2b819', user_name='webapi', app_id='204399_***', "
        "app_secret='***', lcid=2052, org_num=0)"
    )


def test_login_sign_is_what_sign_login_sends() -> None:
    auth = SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, clock=lambda: NOW)
    parameters = auth._parameters()
    assert parameters[4] == login_sign(
        TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, 1700000000
    )


# -- the session lost again and again under concurrency (issue 9, item 9) -------------------------


class _Dropping:
    """Serves ``fake`` as a network would (calls overlap: each is answered a few scheduler turns
    after it arrives) and ends every session on every second business call, on arrival.

    It checks, as calls arrive, what the auth must guarantee for the replay of a lost call to
    work however the calls interleave: no call carries a session older than the newest login (no
    re-login while calls with the lost session are still out), and a new session carries one
    call, answered, before any other uses it."""

    def __init__(self, fake: FakeK3Cloud) -> None:
        self.fake = fake
        self.calls = 0
        self.drops = 0
        self.logins = 0
        self.newest: str | None = None
        self.answered: set[str] = set()
        self.pending: dict[str, int] = {}
        self.violations: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if "AuthService" in request.url.path:
            response = self.fake(request)
            self.logins += 1
            self.newest = json.loads(response.content).get("KDSVCSessionId")
            return response
        carried = request.headers.get("kdservice-sessionid", "")
        if carried != self.newest:
            self.violations.append(f"call {self.calls + 1} carried a replaced session")
        elif carried not in self.answered and self.pending.get(carried):
            self.violations.append(f"call {self.calls + 1} shared a session not yet tried")
        self.calls += 1
        if self.calls % 2 == 0:
            self.fake.expire_sessions()
            self.drops += 1
        self.pending[carried] = self.pending.get(carried, 0) + 1
        for _ in range(3):  # the others send theirs meanwhile
            await anyio.sleep(0)
        response = self.fake(request)
        self.pending[carried] -= 1
        self.answered.add(carried)
        return response


@pytest.mark.parametrize("service", ["ValidateUser", "LoginByAppSecret", "LoginBySign"])
async def test_concurrent_saves_survive_the_session_dropped_on_every_second_call(
    fake: FakeK3Cloud, service: str
) -> None:
    server = _Dropping(fake)
    customers = [Customer(f"C{n:02d}", f"Customer {n}") for n in range(45)]
    async with AsyncK3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        auth=logins()[service],
        retry=FAST,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
    ) as client:
        result = await client.batch_save("BD_Customer", customers, chunk_size=3, concurrency=4)
    assert result.failed == []
    assert [row.index for row in result.saved] == list(range(45))
    assert sorted(r["FNumber"] for r in fake.records("BD_Customer")) == [
        c.number for c in customers
    ]
    assert server.violations == []
    # Every refused call was replayed (none was carried out), and logins followed the losses.
    refused = server.calls - 15
    assert refused >= server.drops
    assert server.logins <= 1 + server.drops
    assert fake.call_count("BatchSave") == server.calls


async def test_concurrent_calls_give_up_when_every_new_session_is_refused() -> None:
    lost = {
        "Result": {
            "ResponseStatus": {"IsSuccess": False, "MsgCode": 1, "Errors": [{"Message": "x"}]}
        }
    }
    counts = {"login": 0, "call": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0)
        if "AuthService" in request.url.path:
            counts["login"] += 1
            session = f"s-{counts['login']:08d}"
            return httpx.Response(200, json={"LoginResultType": 1, "KDSVCSessionId": session})
        counts["call"] += 1
        return httpx.Response(200, json=lost)

    tasks = 4
    errors: list[Exception] = []
    async with AsyncK3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        password=PASSWORD,
        retry=FAST,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as client:

        async def work() -> None:
            try:
                await client.view("BD_Customer", number="C1")
            except SessionLostError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(work)
    # Two new sessions refused before serving a call: the first caller gives up with the
    # server's refusal, and the callers queued meanwhile with it, sending nothing.
    assert counts == {"login": 2, "call": 2}
    assert len(errors) == tasks
    assert [e.message for e in errors].count("x") == 1
    for error in errors:
        assert error.msg_code == 1
        if error.message != "x":
            assert error.message.startswith("not sent: K/3 Cloud refused the last 2 new sessions")
            assert error.operation == "View"


class _DroppingServer(FakeK3Cloud):
    """``FakeK3Cloud`` on a socket that ends every session on every second BatchSave it gets."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._saves = 0
        self._count = threading.Lock()
        self.drops = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if "BatchSave" in request.url.path:
            with self._count:
                self._saves += 1
                if self._saves % 2 == 0:
                    self.drops += 1
                    self.expire_sessions()
        return super().__call__(request)


def test_threads_sharing_a_sync_client_survive_the_session_dropped_on_every_second_save() -> None:
    server = _DroppingServer(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        password=PASSWORD,
    )
    threads_count, per_thread = 5, 9
    results: list[Any] = []
    with (
        server.serve(latency=0.005) as served,
        K3CloudClient(
            served.url + "/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD),
            retry=FAST,
        ) as client,
    ):
        barrier = threading.Barrier(threads_count)

        def work(thread: int) -> None:
            customers = [Customer(f"T{thread}-{n}", "x") for n in range(per_thread)]
            barrier.wait()
            results.append(client.batch_save("BD_Customer", customers, chunk_size=3))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(results) == threads_count
    assert all(result.ok for result in results)
    assert len(server.records("BD_Customer")) == threads_count * per_thread
    assert 1 < server.login_count <= 1 + server.drops
