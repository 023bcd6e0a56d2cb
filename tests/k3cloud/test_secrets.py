"""No secret (app secret, password, session id) in reprs, errors or logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from _huke_k3_core.testing import Fault
from k3cloud_client import (
    AppSecretLogin,
    K3CloudClient,
    K3CloudError,
    K3CloudHTTPError,
    LoginError,
    PasswordLogin,
    SignLogin,
)
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

from .conftest import PASSWORD, SERVER_URL, Harness, credentials

ENCODED_CLIENT_SECRET = TEST_APP_ID.split("_")[1]


def assert_clean(text: str, *extra: str) -> None:
    for secret in (TEST_APP_SECRET, PASSWORD, ENCODED_CLIENT_SECRET, *extra):
        assert secret not in text


def test_client_reprs(fake: FakeK3Cloud) -> None:
    signed = Harness("sync").client(fake)
    by_password = Harness("async").client(
        fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)
    )
    for client in (signed, by_password):
        assert_clean(repr(client))
    assert repr(signed).startswith("K3CloudClient(server_url='http://k3.test/k3cloud/'")


def test_session_id_not_in_repr_after_login(fake: FakeK3Cloud) -> None:
    auth = SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET)
    client = Harness("sync").client(fake, auth=auth)
    client.execute_bill_query("BD_Customer", "FNumber")
    (session_id,) = fake.session_ids()
    assert session_id not in repr(client)
    assert "session='***'" in repr(auth)


@pytest.mark.parametrize(
    "auth",
    [
        None,
        PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD),
        AppSecretLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET),
    ],
)
def test_error_bodies_echoing_secrets_are_redacted(fake: FakeK3Cloud, auth: object) -> None:
    client = Harness("sync").client(fake, **({"auth": auth} if auth else {}), password=PASSWORD)
    client.execute_bill_query("BD_Customer", "FNumber")  # log in, if it logs in
    sessions = fake.session_ids()
    echo = f"bad app_secret={TEST_APP_SECRET} password={PASSWORD} sid={' '.join(sessions)}"
    fake.inject(Fault.reply(echo.encode(), status=400, content_type="text/plain"))
    with pytest.raises(K3CloudHTTPError) as info:
        client.execute_bill_query("BD_Customer", "FNumber")
    assert "***" in str(info.value)
    assert_clean(str(info.value), *sessions)
    assert_clean(info.value.body, *sessions)


def test_login_error_echoing_the_password_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"LoginResultType": 0, "Message": f"wrong: {PASSWORD}"})

    client = K3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        password=PASSWORD,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(LoginError) as info:
        client.view("BD_Customer", number="x")
    assert str(info.value) == "ValidateUser refused the login (LoginResultType 0): wrong: ***"


def test_logs_hold_no_secret(fake: FakeK3Cloud, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = Harness("sync").client(
        fake, auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)
    )
    client.execute_bill_query("BD_Customer", "FNumber")
    sessions = fake.session_ids()
    fake.expire_sessions()
    fake.inject(
        Fault.http_status(503, body=f"oops {PASSWORD} {sessions[0]}".encode()), path="BatchSave"
    )
    fake.inject(Fault.timeout(), path="ExecuteBillQuery")
    client.execute_bill_query("BD_Customer", "FNumber")
    result = client.batch_save("BD_Customer", [{"FNumber": "A", "FName": "a"}])
    sessions += fake.session_ids()
    # The one row failed with its chunk, and the 503's body was quoted with the secrets masked.
    assert (result.saved, [row.number for row in result.failed]) == ([], ["A"])
    assert "***" in result.failed[0].message
    assert caplog.records  # the retries and the failed chunk were logged
    assert_clean(caplog.text, *sessions)
    for row in result.failed:
        assert_clean(row.message, *sessions)


def test_signed_header_errors_hold_no_secret() -> None:
    wrong = FakeK3Cloud(
        acct_id="other", user_name=TEST_USER_NAME, app_id=TEST_APP_ID, app_secret="0" * 32
    )
    client = Harness("sync").client(wrong, **credentials())
    with pytest.raises(K3CloudError) as info:
        client.view("BD_Customer", number="x")
    assert_clean(str(info.value))
