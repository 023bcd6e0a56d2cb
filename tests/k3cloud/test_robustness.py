"""Whatever a server answers, the client raises its own typed errors, never a bare one."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k3cloud_client import K3CloudClient, K3CloudError, PasswordLogin
from k3cloud_client.testing import TEST_ACCT_ID, TEST_USER_NAME

from .conftest import FAST, SERVER_URL, credentials

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
_keys = st.sampled_from(
    [
        "Result",
        "ResponseStatus",
        "IsSuccess",
        "MsgCode",
        "Errors",
        "SuccessEntitys",
        "DIndex",
        "Id",
        "Number",
        "Message",
        "FieldName",
        "LoginResultType",
        "KDSVCSessionId",
        "x",
    ]
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=25,
)
# Bodies shaped like K/3 Cloud replies, with any content inside.
_replies = st.one_of(
    _json,
    st.builds(
        lambda s: {"Result": {"ResponseStatus": s}}, st.dictionaries(_keys, _json, max_size=6)
    ),
    st.builds(
        lambda s: [[{"Result": {"ResponseStatus": s}}]], st.dictionaries(_keys, _json, max_size=6)
    ),
)

CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("batch_save", ("BD_Customer", [{"FNumber": "A"}, {"FNumber": "B"}]), {}),
    ("save", ("BD_Customer", {"FNumber": "A"}), {}),
    ("audit", ("BD_Customer",), {"numbers": ["A"]}),
    ("view", ("BD_Customer",), {"number": "A"}),
    ("execute_bill_query", ("BD_Customer", "FNumber"), {}),
    ("bill_query", ("BD_Customer", "FNumber"), {}),
    ("execute", ("Draft", {"formid": "BD_Customer", "data": {}}), {}),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=_replies, call=st.sampled_from(CALLS))
def test_any_reply_gives_a_result_or_a_k3cloud_error(reply: Any, call: Any) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    client = K3CloudClient(
        SERVER_URL, **credentials(), retry=FAST, http_client=httpx.Client(transport=transport)
    )
    method, args, kwargs = call
    try:
        result = getattr(client, method)(*args, **kwargs)
    except K3CloudError:
        return
    if method == "batch_save":
        assert sorted(r.index for r in [*result.saved, *result.failed]) == [0, 1]


@settings(max_examples=100, deadline=None)
@given(reply=_json)
def test_any_login_reply_gives_a_session_or_a_k3cloud_error(reply: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "AuthService" in request.url.path:
            return httpx.Response(200, json=reply)
        return httpx.Response(200, json=[["A"]])

    client = K3CloudClient(
        SERVER_URL,
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        auth=PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, "password-1"),
        retry=FAST,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with contextlib.suppress(K3CloudError):
        assert client.execute_bill_query("BD_Customer", "FNumber") == [["A"]]
