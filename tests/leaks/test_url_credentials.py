"""A password in the base URL (``https://user:pw@host``) is masked in config errors
(``shown_url``) but shown by the client reprs and by httpx's INFO log line of every request;
and ``shown_url`` misses a password holding ``/`` or ``@``."""

import logging

import httpx
import pytest

from huke_client import HukeClient
from k3cloud_client import K3CloudClient, K3CloudError
from k3cloud_client.testing import TEST_ACCT_ID, TEST_USER_NAME

PW = "url-pass-0123"


def test_reprs() -> None:
    huke = HukeClient(
        "key", "adv-huke-secret-0123456789", base_url=f"http://u:{PW}@127.0.0.1:9/openapi"
    )
    k3 = K3CloudClient(
        f"http://u:{PW}@127.0.0.1:9/k3cloud/",
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        password="adv-password-1",
    )
    assert PW not in repr(huke) + repr(k3), repr(huke) + repr(k3)


def test_httpx_request_log(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"code": 200, "data": []}))
    client = HukeClient(
        "key",
        "adv-huke-secret-0123456789",
        max_retries=0,
        base_url=f"http://u:{PW}@127.0.0.1:9/openapi",
        http_client=httpx.Client(transport=ok),
    )
    client.search_trades(start=0, end=1)
    logged = [r.getMessage() for r in caplog.records if PW in r.getMessage()]
    assert not logged, logged


@pytest.mark.parametrize("password", ["pa/ss-0123", "p@ss-0123"])
def test_config_error_for_password_with_slash_or_at(password: str) -> None:
    with pytest.raises(K3CloudError) as info:
        K3CloudClient(
            f"https://u:{password}@k3.example:99999/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            password="adv-password-1",
        )
    tail = password.split("/")[-1].split("@")[-1]
    assert tail not in str(info.value), str(info.value)
