"""Request signing: the published vector, exact body bytes, fresh signatures, the eid header."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

import huke_client._auth as auth_module
from huke_client import HukeAuth, HukeClient
from huke_client.signing import body_sign, checksum
from huke_client.testing import FakeHuke, SimCode

from .conftest import APP_KEY, APP_SECRET, INSTANT, Clock

VECTOR_SIGN = "3d6055a498cab778429574604b810725"
VECTOR_CURTIME = 1592276090
VECTOR_CHECKSUM = (
    "849685B5801196A66ED06BD254399E5E9F33AB18550979A9B79AA6F545F78A481D8B5D299556E231FBE2F6D321A5"
    "0FFEDEA029E69B173478A8DF8A0CBD76898067AF2D3E4DCAACCCEE0697D488ECCAA3"
)


def test_checksum_reproduces_the_published_vector() -> None:
    assert checksum(APP_KEY, VECTOR_SIGN, VECTOR_CURTIME, APP_SECRET) == VECTOR_CHECKSUM
    assert checksum(APP_KEY, VECTOR_SIGN, str(VECTOR_CURTIME), APP_SECRET) == VECTOR_CHECKSUM


def test_sign_of_the_empty_body() -> None:
    assert body_sign(b"{}") == "99914b932bd37a50b983c5e7c90ae93b"


def _signed(auth: HukeAuth, content: bytes) -> httpx.Request:
    request = httpx.Request("POST", "https://huke.test/openapi/x", content=content)
    return next(auth.auth_flow(request))


def test_auth_sets_the_four_headers_from_the_vector() -> None:
    auth = HukeAuth(APP_KEY, APP_SECRET, clock=lambda: VECTOR_CURTIME + 0.999)
    signed = _signed(auth, b"{}")
    assert signed.headers["ur-appkey"] == APP_KEY
    assert signed.headers["ur-sign"] == "99914b932bd37a50b983c5e7c90ae93b"
    assert signed.headers["ur-curtime"] == str(VECTOR_CURTIME)  # whole seconds, truncated
    assert signed.headers["ur-checksum"] == checksum(
        APP_KEY, "99914b932bd37a50b983c5e7c90ae93b", VECTOR_CURTIME, APP_SECRET
    )
    assert "eid" not in signed.headers


def test_auth_sends_eid_only_when_configured() -> None:
    signed = _signed(HukeAuth(APP_KEY, APP_SECRET, eid="E-42", clock=lambda: 1.0), b"{}")
    assert signed.headers["eid"] == "E-42"


def test_aes_key_is_derived_once_per_secret_not_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = checksum(APP_KEY, "99914b932bd37a50b983c5e7c90ae93b", VECTOR_CURTIME, APP_SECRET)
    real = auth_module.derive_key
    calls: list[str] = []

    def counting(secret: str) -> bytes:
        calls.append(secret)
        return real(secret)

    monkeypatch.setattr(auth_module, "derive_key", counting)
    auth = HukeAuth(APP_KEY, APP_SECRET, clock=lambda: VECTOR_CURTIME)
    headers = [_signed(auth, b"{}").headers["ur-checksum"] for _ in range(3)]
    assert calls == [APP_SECRET]
    assert headers == [expected] * 3


def test_auth_rejects_empty_credentials() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        HukeAuth("", APP_SECRET)


def test_signature_covers_the_exact_non_ascii_bytes_sent(fake: FakeHuke) -> None:
    fake.add_route("customer/fields", lambda body: {"echo": body})
    body = {"buyerNick": "王小明🌸", "note": "（南京）"}
    with fake.client(retry=INSTANT) as client:
        assert client.request("customer/fields", body) == {"echo": body}

    sent = fake.received[-1]
    exact = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert sent.content == exact  # raw UTF-8, compact: no \u escapes, no spaces
    assert "王小明".encode() in sent.content
    assert sent.headers["ur-sign"] == hashlib.md5(exact).hexdigest()

    # The same headers over a re-serialisation of the same JSON do not verify.
    reserialised = json.dumps(body).encode("ascii")
    assert reserialised != exact
    assert hashlib.md5(reserialised).hexdigest() != sent.headers["ur-sign"]
    replay = httpx.Request("POST", sent.url, headers=sent.headers, content=reserialised)
    answer = fake.handle(replay).json()
    assert answer["code"] == SimCode.SIGN_MISMATCH
    assert answer["msg"] == "ur-sign is not the MD5 of the body received"


def test_lower_case_checksum_is_accepted_by_the_simulator(fake: FakeHuke, clock: Clock) -> None:
    auth = HukeAuth(APP_KEY, APP_SECRET, clock=clock)
    signed = _signed(auth, b"{}")
    signed.headers["ur-checksum"] = signed.headers["ur-checksum"].lower()
    request = httpx.Request(
        "POST", "https://huke.test/openapi/trade/none", headers=signed.headers, content=b"{}"
    )
    assert fake.handle(request).json()["code"] == SimCode.NOT_FOUND  # past the signature checks


def test_every_request_of_a_client_is_signed_afresh(fake: FakeHuke, clock: Clock) -> None:
    fake.add_route("customer/fields", lambda body: [])
    with HukeClient(
        APP_KEY,
        APP_SECRET,
        clock=clock,
        http_client=httpx.Client(transport=fake.transport()),
        retry=INSTANT,
    ) as client:
        client.request("customer/fields")
        client.request("customer/fields")
    first, second = fake.received
    assert first.headers["ur-curtime"] != second.headers["ur-curtime"]
    assert first.headers["ur-checksum"] != second.headers["ur-checksum"]
    assert first.content == second.content == b"{}"
