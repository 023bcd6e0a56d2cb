"""The reference's test vectors, byte for byte, and app id validation."""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3cloud_client import K3CloudConfigError, SignedHeaderAuth
from k3cloud_client.signing import (
    app_data,
    decode_client_secret,
    login_sign,
    sig,
    signed_headers,
    split_app_id,
    string_to_sign,
)
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

PATH = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc"
URL = "http://localhost" + PATH
TS = 1700000000


def vector_headers(org_num: int) -> dict[str, str]:
    return signed_headers(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        lcid=2052,
        org_num=org_num,
        path=PATH,
        timestamp=TS,
    )


def test_vector_1_intermediate_values() -> None:
    assert decode_client_secret(split_app_id(TEST_APP_ID)[1]) == "31ecfd13effe724e7e78fc17f8f94b66"
    assert string_to_sign(PATH, "1700000000", "1700000000") == (
        "POST\n%2Fk3cloud%2FKingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc"
        "\n\nx-api-nonce:1700000000\nx-api-timestamp:1700000000\n"
    )
    assert app_data(TEST_ACCT_ID, TEST_USER_NAME, 2052, 0) == "5db25ac8d2b819,webapi,2052,0"


def test_vector_1_headers() -> None:
    assert vector_headers(0) == {
        "X-Api-ClientID": "204399",
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": "1700000000",
        "x-api-nonce": "1700000000",
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": "NzBlNzhhYjEyYzc0MjJmYTBhNjUyYzliNGFmMGVmMjg2ZTYyNWYzOGQ0MDE4ODc4YWEwZGRhZjRiNjc4YzVjMA==",
        "X-Kd-Appkey": TEST_APP_ID,
        "X-Kd-Appdata": "NWRiMjVhYzhkMmI4MTksd2ViYXBpLDIwNTIsMA==",
        "X-Kd-Signature": "OWQ2YWVhM2JmOGVlYWEzYjVlZGI0NzM3MjlmYzA4NTkyYjhiMTAwNTgxODk5MmQ5NWIxMzBjZTQxNjk5ZWFiYg==",
    }


def test_vector_org_100() -> None:
    headers = vector_headers(100)
    assert headers["X-Kd-Appdata"] == "NWRiMjVhYzhkMmI4MTksd2ViYXBpLDIwNTIsMTAw"
    assert headers["X-Kd-Signature"] == (
        "MTc3OGY2ZTRjYzI3ZmNmNmU3NzYxMGYyNzBlMjFmYmQ5YTRmZGEyNWQ5YzZiNzNkMDBiMmY1MGNiMTcwNGJlZQ=="
    )
    # The org does not enter the path signature.
    assert headers["X-Api-Signature"] == vector_headers(0)["X-Api-Signature"]


def test_login_by_sign_vector() -> None:
    assert (
        login_sign(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, TS)
        == "91020350abf9d30f0d7316b6db1c5a14eba2bde38b42cc8e8ca8b10aa0ef783d"
    )


def test_signed_header_auth_signs_the_request_path_at_the_clock_time() -> None:
    auth = SignedHeaderAuth(
        TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET, clock=lambda: TS + 0.9
    )
    request = httpx.Request("POST", URL + "?ignored=1")
    signed = next(auth.auth_flow(request))
    assert {k: signed.headers[k] for k in vector_headers(0)} == vector_headers(0)


def test_sig_is_base64_of_lowercase_hex() -> None:
    decoded = base64.b64decode(sig("message", "key")).decode()
    assert decoded == decoded.lower()
    assert len(decoded) == 64


@pytest.mark.parametrize(
    "app_id",
    [
        "",
        "204399",
        "204399_",
        "abc_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ",  # client id not digits
        "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tq",  # 31 characters
        "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJX",  # 33 characters
        "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1t=J",  # '=' inside
        "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ_1",
    ],
)
def test_malformed_app_id_is_a_clear_error_at_construction(app_id: str) -> None:
    with pytest.raises(K3CloudConfigError, match=r"app_id must look like '<digits>_<32 base64"):
        SignedHeaderAuth(TEST_ACCT_ID, TEST_USER_NAME, app_id or "x", TEST_APP_SECRET)


def test_missing_app_secret_is_a_clear_error() -> None:
    with pytest.raises(K3CloudConfigError, match="app_secret is required"):
        SignedHeaderAuth(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, "")


@given(st.binary(min_size=24, max_size=24))
def test_client_secret_decoding_is_an_involution(raw: bytes) -> None:
    # XOR with the fixed key twice gives the input back: the decoding is exactly that XOR.
    encoded = base64.b64encode(raw).decode()
    once = decode_client_secret(encoded)
    assert decode_client_secret(once) == encoded
