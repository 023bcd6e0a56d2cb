"""Issue 9.1: no secret, nor any value derived from one, leaves the clients or the bridge.

Whole syncs run over loopback, with every login kind, against simulators that quote each
request's headers, cookies and body back in their error messages (per-row errors, whole-call
errors, HTTP error bodies, refused logins, Huke error envelopes), with every logger at DEBUG and
the CLI too. The secrets looked for are the test's credentials and every derived value the
simulators actually received or handed out: signatures, login signs, session ids and cookies,
the app id's secret part. None may appear in the report (text, JSON, HTML), an outcome's reason,
an exception (str, repr, attributes, causes), a log record or the CLI's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from huke_client import AsyncHukeClient, HukeClient, HukeError
from huke_k3_bridge import SyncReport
from huke_k3_bridge.__main__ import main as cli_main
from k3cloud_client import (
    AppSecretLogin,
    AsyncK3CloudClient,
    K3CloudClient,
    K3CloudError,
    PasswordLogin,
    SignLogin,
)
from k3cloud_client._signing import decode_client_secret
from k3cloud_client.testing import (
    PASSPORT_FAILURE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

from .conftest import (
    HUKE_KEY,
    HUKE_SECRET,
    K3_CREDENTIALS,
    RETRY,
    HookedHuke,
    HookedK3,
    Stage,
    k3_operation,
)

MASK = "***"
ENCODED_PART = TEST_APP_ID.split("_", 1)[1]
#: Passwords: one shorter than any substring rule would mask (a whole token only), one that
#: JSON escapes (the echoed body shows it as ``\"`` and ``\\``).
SHORT_PASSWORD = "p@5s"
QUOTED_PASSWORD = 'pa"ss\\wörd-42'
LOGINS = ("ValidateUser", "LoginByAppSecret", "LoginBySign")
#: Where a login request carries its secret: index into ``parameters``.
_LOGIN_SECRET_AT = {"ValidateUser": 2, "LoginByAppSecret": 3, "LoginBySign": 4}
AUTHS = ("signed", "password-short", "password-quoted", "appsecret", "sign")
#: How the K/3 simulator echoes: per-row BatchSave errors, a whole-call BatchSave error, a query
#: error dressed as a row, an HTTP 400 BatchSave body, a refused login (or passport failure).
MODES = ("rows", "save", "query", "http", "login")


def quote_request(request: httpx.Request, *, as_json: bool) -> str:
    """What an over-helpful server writes into its error: every header and the whole body."""
    body = request.content.decode("utf-8", errors="replace")
    if as_json:
        return "请求无效: " + json.dumps({"headers": dict(request.headers), "body": body})
    # The last headers first: the signatures and cookies, within what an error snippet keeps.
    items = reversed(request.headers.multi_items())
    headers = "; ".join(f"{name}: {value}" for name, value in items)
    return f"请求无效 headers [{headers}] body {body}"


class EchoK3(HookedK3):
    """``FakeK3Cloud`` whose errors quote the request; remembers the session values it issued."""

    def __init__(self, *, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.echoes = 0
        #: Every session id and cookie value the logins handed out.
        self.issued: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        operation = k3_operation(request)
        echoed = self._echo(operation, request)
        if echoed is not None:
            self.echoes += 1
            return echoed
        response = super().handle(request)
        if operation in LOGINS:
            for header in response.headers.get_list("set-cookie"):
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                self.issued += [morsel.value for morsel in jar.values()]
            session = json.loads(response.content).get("KDSVCSessionId")
            if session:
                self.issued.append(session)
        return response

    def _echo(self, operation: str, request: httpx.Request) -> httpx.Response | None:
        mode = self.mode
        if mode == "login" and operation in LOGINS:
            refused = {"LoginResultType": 0, "Message": quote_request(request, as_json=True)}
            return httpx.Response(200, json=refused)
        if mode == "login" and "X-Kd-Appkey" in request.headers:
            text = f"{PASSPORT_FAILURE}: {quote_request(request, as_json=False)}"
            return httpx.Response(500, text=text)
        if operation == "BatchSave" and mode == "rows":
            rows = json.loads(request.content)["data"]["Model"]
            errors = [
                {
                    "FieldName": "FName",
                    "DIndex": i,
                    "Message": quote_request(request, as_json=bool(i % 2)),
                }
                for i in range(len(rows))
            ]
            return httpx.Response(200, json=_status(errors, msg_code=11))
        if operation == "BatchSave" and mode == "save":
            errors = [{"FieldName": None, "Message": quote_request(request, as_json=False)}]
            return httpx.Response(200, json=_status(errors, msg_code=8))
        if operation == "ExecuteBillQuery" and mode == "query":
            errors = [{"FieldName": None, "Message": quote_request(request, as_json=True)}]
            return httpx.Response(200, json=[[_status(errors, msg_code=8)]])
        if operation == "BatchSave" and mode == "http":
            return httpx.Response(400, text=quote_request(request, as_json=False))
        return None


def _status(errors: list[dict[str, Any]], *, msg_code: int) -> dict[str, Any]:
    status = {
        "ErrorCode": 500,
        "IsSuccess": False,
        "Errors": errors,
        "SuccessEntitys": [],
        "SuccessMessages": [],
        "MsgCode": msg_code,
    }
    return {"Result": {"ResponseStatus": status}}


class EchoHuke(HookedHuke):
    """``FakeHuke`` whose every answer is an error envelope quoting the request."""

    def __init__(self, *args: Any, echo: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.echo = echo

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.echo:
            return super().handle(request)
        envelope = {"code": 4001, "msg": quote_request(request, as_json=False), "data": None}
        return httpx.Response(200, json=envelope)


class EchoStage(Stage):
    """A ``Stage`` on the echoing simulators, with every K/3 login kind."""

    def __init__(self, *, mode: str, password: str = QUOTED_PASSWORD, huke_echo: bool = False):
        super().__init__(transport="inprocess")  # served below, on the echoing simulators
        self.password = password
        self.huke = EchoHuke(HUKE_KEY, HUKE_SECRET, echo=huke_echo)
        self.k3 = EchoK3(mode=mode, **K3_CREDENTIALS, password=password)
        self.transport = "loopback"
        try:
            huke_server = self.huke.serve()
            self._servers.append(huke_server)
            k3_server = self.k3.serve()
            self._servers.append(k3_server)
        except BaseException:
            self.close()
            raise
        self.huke_url = f"{huke_server.url}/openapi"  # the real route: the fake 404s others
        self.k3_url = f"{k3_server.url}/k3cloud/"

    def _k3_options(self, auth: Any, timeout: float, retries: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "acct_id": TEST_ACCT_ID,
            "user_name": TEST_USER_NAME,
            "timeout": timeout,
            "retry": RETRY,
            "max_retries": retries,
        }
        if auth == "signed":
            options.update(app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)
        elif auth.startswith("password"):
            options["password"] = self.password
        elif auth == "appsecret":
            options["auth"] = AppSecretLogin(
                TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET
            )
        else:
            options["auth"] = SignLogin(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET)
        return options

    def k3_client(self, auth: str, *, use_async: bool = False) -> Any:
        cls = AsyncK3CloudClient if use_async else K3CloudClient
        return cls(self.k3_url, **self._k3_options(auth, 5.0, 1))

    def secrets(self) -> set[str]:
        """The credentials, and every derived value the simulators received or issued."""
        found = {
            TEST_APP_SECRET,
            ENCODED_PART,
            decode_client_secret(ENCODED_PART),
            self.password,
            HUKE_SECRET,
            *self.k3.issued,
        }
        for request in list(self.k3.received):
            headers = request.headers
            for name in ("x-kd-signature", "x-api-signature", "kdservice-sessionid"):
                if headers.get(name):
                    found.add(headers[name])
            for header in headers.get_list("cookie"):
                for part in header.split(";"):
                    found.add(part.partition("=")[2].strip())
            operation = k3_operation(request)
            if operation in LOGINS:
                parameters = json.loads(request.content)["parameters"]
                found.add(parameters[_LOGIN_SECRET_AT[operation]])
        for request in list(self.huke.received):
            found.update({request.headers["ur-sign"], request.headers["ur-checksum"]})
        found.discard("")
        return found


def forms(secret: str) -> set[str]:
    """A secret as a text may show it: as is, or escaped inside JSON, once or twice."""
    found = {secret}
    for _ in range(2):
        found |= {json.dumps(f, ensure_ascii=a)[1:-1] for f in found for a in (False, True)}
    return found


def assert_clean(texts: dict[str, str], secrets: set[str]) -> None:
    leaks = [
        (where, form)
        for where, text in texts.items()
        for secret in secrets
        for form in forms(secret)
        if form in text
    ]
    assert not leaks, f"secrets leaked: {leaks[:5]}"


def exception_texts(exc: BaseException, where: str) -> dict[str, str]:
    """str and repr of an exception, its text attributes and its causes."""
    texts: dict[str, str] = {}
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts[f"{where} str"] = str(current)
        texts[f"{where} repr"] = repr(current)
        for name in ("body", "message", "msg"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                texts[f"{where}.{name}"] = value
        for i, detail in enumerate(getattr(current, "errors", None) or []):
            texts[f"{where}.errors[{i}]"] = f"{detail!r} {dict(detail.raw)!r} {detail.message}"
        where += ".__cause__"
        current = current.__cause__ or current.__context__
    return texts


def report_texts(report: SyncReport) -> dict[str, str]:
    texts = {
        "to_json": report.to_json(),
        "str": str(report),
        "repr": repr(report),
        "errors": "\n".join(report.errors),
    }
    to_html = getattr(report, "to_html", None)
    if to_html is not None:
        texts["html"] = to_html()
    for outcome in report.outcomes:
        texts[f"outcome {outcome.position}"] = f"{outcome.reason} {outcome!r}"
    return texts


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> dict[str, str]:
        formatter = logging.Formatter()
        out = {}
        for i, record in enumerate(self.records):
            text = record.getMessage()
            if record.exc_info:
                text += formatter.formatException(record.exc_info)
            out[f"log {i} {record.name}"] = text
        return out


_LOGGERS = (
    "",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "huke_client",
    "k3cloud_client",
    "huke_k3_bridge",
)


@pytest.fixture
def debug_logs() -> Iterator[Records]:
    """Every logger at DEBUG, propagating to a handler on the root logger that keeps them all."""
    handler = Records()
    saved = []
    for name in _LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level, log.propagate, log.disabled))
        log.setLevel(logging.DEBUG)
        log.propagate = True
        log.disabled = False
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for log, level, propagate, disabled in saved:
            log.setLevel(level)
            log.propagate = propagate
            log.disabled = disabled


def password_of(auth: str) -> str:
    return SHORT_PASSWORD if auth == "password-short" else QUOTED_PASSWORD


def direct_calls(stage: EchoStage, auth: str, use_async: bool) -> dict[str, str]:
    """The clients called directly: every error they raise, every row they fail."""
    texts: dict[str, str] = {}
    models = [{"FNumber": f"D{i}", "FName": f"直接 {i}"} for i in range(3)]

    async def run_async() -> None:
        async with stage.k3_client(auth, use_async=True) as k3:
            try:
                result = await k3.batch_save("BD_Customer", models)
                collect_result(result)
            except K3CloudError as exc:
                texts.update(exception_texts(exc, "async batch_save"))
            try:
                await k3.execute_bill_query("BD_Customer", "FNumber")
            except K3CloudError as exc:
                texts.update(exception_texts(exc, "async query"))

    def collect_result(result: Any) -> None:
        for row in result.failed:
            texts[f"failed row {row.index}"] = f"{row.message} {row!r}"
        texts["responses"] = json.dumps(result.responses, ensure_ascii=False)

    if use_async:
        asyncio.run(run_async())
        return texts
    with stage.k3_client(auth) as k3:
        try:
            collect_result(k3.batch_save("BD_Customer", models))
        except K3CloudError as exc:
            texts.update(exception_texts(exc, "batch_save"))
        for name, call in (
            ("query", lambda: k3.execute_bill_query("BD_Customer", "FNumber")),
            ("save", lambda: k3.save("BD_Customer", models[0])),
        ):
            try:
                call()
            except K3CloudError as exc:
                texts.update(exception_texts(exc, name))
    return texts


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("auth", AUTHS)
def test_a_server_echoing_every_request_learns_nothing_back(
    auth: str, mode: str, debug_logs: Records
) -> None:
    # Both engines, split across the cases (every auth and mode meets both) to stay quick.
    engine = "async" if (AUTHS.index(auth) + MODES.index(mode)) % 2 else "sync"
    stage = EchoStage(mode=mode, password=password_of(auth))
    try:
        stage.generate(18, buyers=6, missing_cid_every=None)
        if mode == "rows":
            # Session ids change mid-run: every other lookup finds the session gone.
            lookups = iter(range(10_000))
            stage.on_k3(
                lambda op, _: (
                    op == "ExecuteBillQuery"
                    and next(lookups) % 2 == 1
                    and stage.k3.expire_sessions()
                )
            )
        report = stage.run(engine, auth=auth, retries=1)  # type: ignore[arg-type]
        texts = {**report_texts(report), **direct_calls(stage, auth, engine == "async")}
        texts.update(debug_logs.texts())
        assert_clean(texts, stage.secrets())
        # ...and not because nothing was said: the echoes reached the report and the logs.
        assert stage.k3.echoes, "the simulator never echoed"
        assert MASK in report.to_json(), "the echo never reached the report"
        messages = [r.getMessage() for r in debug_logs.records if r.name.startswith("httpcore")]
        if auth != "signed" and mode != "login":
            # The session cookie arrives in a response header httpcore logs at DEBUG.
            assert any("set-cookie" in m.lower() and MASK in m for m in messages)
    finally:
        stage.close()


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_a_huke_echoing_every_request_learns_nothing_back(engine: str, debug_logs: Records) -> None:
    stage = EchoStage(mode="none", huke_echo=True)
    try:
        stage.generate(6, buyers=3, missing_cid_every=None)
        report = stage.run(engine, retries=1)  # type: ignore[arg-type]
        texts = report_texts(report)
        client_cls = AsyncHukeClient if engine == "async" else HukeClient
        options = {"base_url": stage.huke_url, "retry": RETRY, "max_retries": 0}
        try:
            if engine == "async":

                async def fetch() -> None:
                    async with AsyncHukeClient(HUKE_KEY, HUKE_SECRET, **options) as huke:
                        await huke.search_trades(start=stage.start, end=stage.end)

                asyncio.run(fetch())
            else:
                with client_cls(HUKE_KEY, HUKE_SECRET, **options) as huke:
                    huke.search_trades(start=stage.start, end=stage.end)
        except HukeError as exc:
            texts.update(exception_texts(exc, "search_trades"))
        else:
            pytest.fail("the echoing Huke answered a search")
        texts.update(debug_logs.texts())
        assert_clean(texts, stage.secrets())
        assert MASK in report.to_json(), "the echo never reached the report"
    finally:
        stage.close()


@pytest.mark.parametrize(
    ("auth", "mode", "flags"),
    [
        ("signed", "rows", ["--json"]),
        ("password-short", "save", []),
        ("password-quoted", "login", ["--json", "--async"]),
    ],
)
def test_the_cli_prints_no_secret(
    auth: str,
    mode: str,
    flags: list[str],
    debug_logs: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stage = EchoStage(mode=mode, password=password_of(auth))
    try:
        stage.generate(12, buyers=4, missing_cid_every=None)
        environ = {
            "HUKE_APP_KEY": HUKE_KEY,
            "HUKE_APP_SECRET": HUKE_SECRET,
            "HUKE_BASE_URL": stage.huke_url,
            "K3CLOUD_SERVER_URL": stage.k3_url,
            "K3CLOUD_ACCT_ID": TEST_ACCT_ID,
            "K3CLOUD_USER_NAME": TEST_USER_NAME,
        }
        if auth == "signed":
            environ.update(K3CLOUD_APP_ID=TEST_APP_ID, K3CLOUD_APP_SECRET=TEST_APP_SECRET)
        else:
            environ["K3CLOUD_PASSWORD"] = stage.password
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        start = datetime.fromtimestamp(stage.start / 1000, timezone.utc).isoformat()
        end = datetime.fromtimestamp(stage.end / 1000, timezone.utc).isoformat()
        out, err = io.StringIO(), io.StringIO()
        argv = ["-vv", "sync", "--start", start, "--end", end, "--no-progress", *flags]
        argv += ["--batch-size", "4"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli_main(argv)
        texts = {"stdout": out.getvalue(), "stderr": err.getvalue(), **debug_logs.texts()}
        assert_clean(texts, stage.secrets())
        assert status == 1, texts["stderr"]  # failures, reported
        assert stage.k3.echoes
        assert MASK in texts["stdout"] + texts["stderr"], "the echo never reached the output"
    finally:
        stage.close()


def test_re_logins_do_not_grow_the_redactor_and_the_live_session_stays_masked() -> None:
    fake = FakeK3Cloud(acct_id=TEST_ACCT_ID, user_name=TEST_USER_NAME, password=QUOTED_PASSWORD)
    auth = PasswordLogin(TEST_ACCT_ID, TEST_USER_NAME, QUOTED_PASSWORD)
    client = K3CloudClient(
        "http://k3.test/k3cloud/",
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        auth=auth,
        http_client=httpx.Client(transport=fake.transport()),
    )
    sizes = []
    for _ in range(60):
        fake.expire_sessions()
        client.execute_bill_query("BD_Customer", "FNumber")
        sizes.append(auth.redactor.size)
    assert auth.login_count == 60
    assert max(sizes) == sizes[20] == sizes[-1]  # bounded: full after a few logins, then flat
    (live,) = fake.session_ids()
    assert auth.redactor(f"sid={live};") == f"sid={MASK};"
