"""A login that fails (its reply garbled, a 5xx, a body that is no login reply) fails before the
caller's request is sent: the error says so (``request_sent=False``), and ``batch_save``
reports the rows failed and not sent, which the next run sends again, not uncertain (which would
have them looked up as possibly saved). The call's own reply damaged stays uncertain."""

from __future__ import annotations

import httpx
import pytest

from k3cloud_client import Customer, K3CloudError, PasswordLogin
from k3cloud_client.testing import TEST_ACCT_ID, TEST_USER_NAME, FakeK3Cloud

from .conftest import PASSWORD, Harness
from .test_adversarial_replies import Reply, body, garbled, saved_then_garbled, serve

LOGIN_FAILURES: dict[str, Reply] = {
    "garbled": garbled,
    "http-503": body(b"busy", 503),
    "not-a-login-reply": body(b"<html>maintenance</html>"),
}


def _password_client(harness: Harness, fake: FakeK3Cloud, operation: str, reply: Reply) -> object:
    auth = PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, PASSWORD)
    # Every attempt gets the reply: the login never succeeds, however often it is retried.
    return harness.client(transport=serve(fake, operation, *[reply] * 4), auth=auth, max_retries=1)


@pytest.mark.parametrize("failure", list(LOGIN_FAILURES))
def test_rows_of_a_batch_whose_login_always_fails_are_failed_not_uncertain(
    harness: Harness, fake: FakeK3Cloud, failure: str
) -> None:
    client = _password_client(harness, fake, "ValidateUser", LOGIN_FAILURES[failure])
    rows = [Customer("C1", "one"), Customer("C2", "two")]
    result = harness.call(client, "batch_save", "BD_Customer", rows)
    assert fake.call_count("BatchSave") == 0
    assert [(row.index, row.uncertain) for row in result.failed] == [(0, False), (1, False)]
    assert result.uncertain == []


@pytest.mark.parametrize("failure", list(LOGIN_FAILURES))
def test_the_error_of_a_login_that_always_fails_says_the_call_was_not_sent(
    harness: Harness, fake: FakeK3Cloud, failure: str
) -> None:
    client = _password_client(harness, fake, "ValidateUser", LOGIN_FAILURES[failure])
    with pytest.raises(K3CloudError) as caught:
        harness.call(client, "save", "BD_Customer", Customer("C1", "one"))
    assert fake.call_count("Save") == 0
    assert caught.value.request_sent is False


def test_the_error_of_a_call_whose_own_reply_is_garbled_says_it_was_sent(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    client = _password_client(harness, fake, "Save", saved_then_garbled)
    with pytest.raises(K3CloudError) as caught:
        harness.call(client, "save", "BD_Customer", Customer("C1", "one"))
    assert fake.call_count("Save") == 1
    assert caught.value.request_sent is True


def test_a_connection_never_made_is_a_request_not_sent(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = harness.client(transport=httpx.MockTransport(refuse), max_retries=0)
    with pytest.raises(K3CloudError) as caught:
        harness.call(client, "save", "BD_Customer", Customer("C1", "one"))
    assert caught.value.request_sent is False


def test_the_warning_for_a_batch_whose_login_failed_says_the_rows_were_not_sent(
    harness: Harness, fake: FakeK3Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    client = _password_client(harness, fake, "ValidateUser", garbled)
    harness.call(client, "batch_save", "BD_Customer", [Customer("C1", "one")])
    warnings = [r.getMessage() for r in caplog.records if r.name == "k3cloud_client"]
    assert any("failed as a whole (not sent: safe to send again)" in w for w in warnings), warnings
    assert not any("MAY have been saved" in w for w in warnings)
