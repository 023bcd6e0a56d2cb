"""The doctor's network checks (issue 12, item 1), against servers on 127.0.0.1 only: a plain
HTTP simulator with a chosen ``Date``, a closed port, TLS servers with certificates made here,
and an HTTP CONNECT proxy; names that must not resolve are answered by a stand-in resolver."""

from __future__ import annotations

import base64
import contextlib
import errno
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from _huke_k3_core.testing import LoopbackServer
from huke_k3_bridge._doctor_network import _tcp_failure, network_checks
from huke_k3_bridge._doctor_proxy import _environment_proxies
from huke_k3_bridge._doctor_report import Check, DoctorReport

PASSWORD = "pr0xy-Pa55-word"
TOKEN = base64.b64encode(f"doctor:{PASSWORD}".encode()).decode()


def _by_kind(checks: list[Check]) -> dict[str, Check]:
    assert [c.id for c in checks] == [f"network.huke.{k}" for k in ("dns", "tcp", "tls", "clock")]
    assert {c.section for c in checks} == {"network"}
    return {c.id.rsplit(".", 1)[1]: c for c in checks}


def _report(checks: list[Check]) -> DoctorReport:
    return DoctorReport(
        settings=(), checks=tuple(checks), started_at=datetime.now().astimezone(), duration=0.1
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dated(offset: float | None) -> Callable[[httpx.Request], httpx.Response]:
    """A handler whose ``Date`` is this machine's time moved by ``offset`` seconds."""

    def handle(request: httpx.Request) -> httpx.Response:
        headers = {} if offset is None else {"Date": formatdate(time.time() + offset, usegmt=True)}
        return httpx.Response(404, headers=headers, content=b"not here")

    return handle


# -- raw servers ----------------------------------------------------------------------------


class _Listener:
    """Accepts on 127.0.0.1 and hands each connection to ``handle`` in a thread of its own."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepting.join(2)
        self._sock.close()
        for worker in self._threads:
            worker.join(2)


def _read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65_536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


class _HTTPServer(_Listener):
    """Answers one request per connection, over TLS when given a context, with ``Date`` at
    ``offset`` seconds from this machine's clock (none when ``offset`` is ``None``)."""

    def __init__(self, tls: ssl.SSLContext | None = None, offset: float | None = 0.0) -> None:
        self.tls, self.offset = tls, offset
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        _read_head(conn)
        date = (
            ""
            if self.offset is None
            else f"Date: {formatdate(time.time() + self.offset, usegmt=True)}\r\n"
        )
        conn.sendall(
            f"HTTP/1.1 200 OK\r\n{date}Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )


class _ConnectProxy(_Listener):
    """An HTTP CONNECT proxy that wants ``doctor:<password>``; it quotes what it got when it
    refuses (as a careless proxy might), and relays for at most 5 s when it accepts."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.expected = "Basic " + base64.b64encode(f"doctor:{password}".encode()).decode()
        self.seen: list[tuple[str, str]] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        lines = _read_head(conn).decode("latin-1").split("\r\n")
        auth = next(
            (
                line.split(":", 1)[1].strip()
                for line in lines
                if line.lower().startswith("proxy-authorization:")
            ),
            "",
        )
        self.seen.append((lines[0], auth))
        if auth != self.expected:
            got = base64.b64decode(auth.split()[-1]).decode() if auth else "nothing"
            reply = f"HTTP/1.1 407 Proxy Authentication Required, got {got} ({auth})\r\n\r\n"
            conn.sendall(reply.encode())
            return
        host, port = lines[0].split()[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=2) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                ready, _, _ = select.select([conn, upstream], [], [], 0.1)
                for source in ready:
                    data = source.recv(65_536)
                    if not data:
                        return
                    (upstream if source is conn else conn).sendall(data)


# -- certificates ---------------------------------------------------------------------------


def _certificate(
    directory: Path, *, days: float = 90, names: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate valid for ``days`` more days (negative: expired), for
    ``names``: its PEM path, and a server context that sends it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(timezone.utc)
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=max(1.0, 1 - days)))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, **usage), critical=True
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    return cert_path, server


@contextlib.contextmanager
def _https(tmp_path: Path, **cert: Any) -> Iterator[tuple[str, Path]]:
    path, context = _certificate(tmp_path, **cert)
    with _HTTPServer(context) as server:
        yield f"https://127.0.0.1:{server.port}/openapi", path


# -- DNS ------------------------------------------------------------------------------------


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Any]]:
    """Names answered by the test instead of the machine's resolver (which may hang offline)."""
    real = socket.getaddrinfo
    answers: dict[str, Callable[[], Any]] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            found = answers[host]()
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in found]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_an_unresolvable_host_fails_dns_and_skips_the_rest(resolver: dict[str, Any]) -> None:
    def unknown() -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    resolver["doctor-test.invalid"] = unknown
    checks = _by_kind(network_checks("huke", "Huke", "https://doctor-test.invalid/openapi"))
    dns = checks["dns"]
    assert (dns.status, dns.required) == ("fail", True)
    assert "doctor-test.invalid cannot be resolved: Name or service not known" in dns.summary
    assert dns.fix == (
        "check the host name in HUKE_BASE_URL (base_url=); try `getent hosts doctor-test.invalid`"
    )
    assert isinstance(dns.details["ms"], float)
    for kind in ("tcp", "tls", "clock"):
        assert checks[kind].status == "skip"
        assert checks[kind].summary == "not run: no address to connect to"
    assert not _report(list(checks.values())).ok


def test_a_resolver_that_does_not_answer_is_given_up_after_the_timeout(
    resolver: dict[str, Any],
) -> None:
    released = threading.Event()
    resolver["slow.example"] = lambda: released.wait(5) and []
    started = time.monotonic()
    try:
        dns = network_checks("k3", "K/3 Cloud", "https://slow.example/k3cloud/", timeout=0.2)[0]
    finally:
        released.set()
    assert time.monotonic() - started < 1.5
    assert dns.id == "network.k3.dns"
    assert dns.title == "K/3 Cloud DNS"
    assert dns.status == "fail"
    assert "no answer from the resolver for slow.example within 0.2 s" in dns.summary
    assert "K3CLOUD_SERVER_URL" in (dns.fix or "")


# -- TCP ------------------------------------------------------------------------------------


def test_a_closed_port_is_refused_and_the_later_checks_skip() -> None:
    port = _closed_port()
    checks = _by_kind(network_checks("huke", "Huke", f"https://127.0.0.1:{port}/openapi"))
    assert checks["dns"].status == "pass"
    assert "127.0.0.1 is an IP address: no lookup needed" in checks["dns"].summary
    tcp = checks["tcp"]
    assert (tcp.status, tcp.details["error"], tcp.details["errno"]) == (
        "fail",
        "refused",
        errno.ECONNREFUSED,
    )
    assert f"127.0.0.1:{port} refused the connection" in tcp.summary
    assert "check the port in HUKE_BASE_URL (base_url=)" in (tcp.fix or "")
    assert checks["tls"].summary == f"not run: no connection to 127.0.0.1:{port}"
    assert checks["clock"].status == "skip"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
        (TimeoutError("timed out"), "timeout"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "timeout"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
        (OSError(errno.EACCES, "Permission denied"), "error"),
    ],
)
def test_refused_timed_out_and_unreachable_are_told_apart(error: OSError, kind: str) -> None:
    found, text = _tcp_failure(error, 5.0)
    assert found == kind
    if kind == "unreachable" or kind == "error":
        assert str(error.strerror) in text


# -- plain HTTP and the clock ---------------------------------------------------------------


def test_a_loopback_simulator_in_step_passes_with_tls_as_info() -> None:
    with LoopbackServer(_dated(0)) as server:
        checks = _by_kind(network_checks("huke", "Huke", server.url + "/openapi"))
    assert [c.status for c in checks.values()] == ["pass", "pass", "info", "pass"]
    assert checks["tls"].required is False
    assert "loopback" in checks["tls"].summary
    clock = checks["clock"]
    assert "agrees with Huke's to about 1 s" in clock.summary
    assert abs(clock.details["skew_s"]) < 2
    for check in checks.values():
        if "ms" in check.details:
            assert isinstance(check.details["ms"], float)
    assert _report(list(checks.values())).ok


@pytest.mark.parametrize(
    ("offset", "status", "words"),
    [
        (30, "warn", "about 30 s behind Huke's"),
        (-30, "warn", "about 30 s ahead of Huke's"),
        (600, "fail", "about 600 s behind Huke's"),
        (-600, "fail", "about 600 s ahead of Huke's"),
    ],
)
def test_a_skewed_clock_warns_then_fails(offset: int, status: str, words: str) -> None:
    with LoopbackServer(_dated(offset)) as server:
        clock = network_checks("huke", "Huke", server.url)[3]
    assert (clock.status, clock.required) == (status, True)
    assert f"this machine's clock is {words}" in clock.summary
    assert "timedatectl set-ntp true" in (clock.fix or "")
    assert "w32tm /resync" in (clock.fix or "")
    assert "Huke signs each request with this machine's time" in (clock.fix or "")
    assert abs(clock.details["skew_s"] - offset) < 2
    assert _report([clock]).ok is (status == "warn")


def test_a_skew_of_a_few_seconds_passes_and_says_so() -> None:
    with LoopbackServer(_dated(3)) as server:
        clock = network_checks("huke", "Huke", server.url)[3]
    assert clock.status == "pass"
    assert "this machine's clock is about 3 s behind Huke's" in clock.summary


def test_max_clock_skew_sets_where_a_skew_fails() -> None:
    with LoopbackServer(_dated(-20)) as server:
        lenient = network_checks("k3", "K/3 Cloud", server.url)[3]
        strict = network_checks("k3", "K/3 Cloud", server.url, max_clock_skew=10)[3]
        strictest = network_checks("k3", "K/3 Cloud", server.url, max_clock_skew=2)[3]
    with LoopbackServer(_dated(-3)) as server:
        below_the_pass_line = network_checks("k3", "K/3 Cloud", server.url, max_clock_skew=1)[3]
    assert (lenient.status, strict.status, strictest.status) == ("warn", "fail", "fail")
    assert below_the_pass_line.status == "fail"
    assert "ahead of K/3 Cloud's" in strict.summary
    assert "more than the 10 s allowed" in strict.summary
    assert "x-api-timestamp" in (strict.fix or "")


def test_no_date_header_warns_and_is_not_required() -> None:
    with _HTTPServer(offset=None) as server:
        clock = network_checks("huke", "Huke", f"http://127.0.0.1:{server.port}/")[3]
    assert (clock.status, clock.required) == ("warn", False)
    assert "sent no Date header (HTTP 200)" in clock.summary
    assert _report([clock]).ok


def test_plain_http_to_a_remote_host_warns(resolver: dict[str, Any]) -> None:
    resolver["huke.example"] = lambda: ["127.0.0.1"]
    with LoopbackServer(_dated(0)) as server:
        port = server.url.rsplit(":", 1)[1]
        checks = _by_kind(network_checks("huke", "Huke", f"http://huke.example:{port}/openapi"))
    assert checks["dns"].status == "pass"
    assert checks["dns"].details["addresses"] == ["127.0.0.1"]
    assert "huke.example: 1 address, 127.0.0.1" in checks["dns"].summary
    tls = checks["tls"]
    assert (tls.status, tls.required) == ("warn", False)
    assert tls.summary == "plain HTTP: no TLS; credentials and data travel unencrypted"
    assert tls.fix == "use https:// if the server offers it"
    assert checks["clock"].status == "pass"


# -- TLS ------------------------------------------------------------------------------------


def test_a_self_signed_certificate_fails_without_trust(tmp_path: Path) -> None:
    with _https(tmp_path) as (url, _):
        checks = _by_kind(network_checks("huke", "Huke", url, timeout=2))
    tls = checks["tls"]
    assert (tls.status, tls.required) == ("fail", True)
    assert tls.details["verify_code"] in (18, 19)
    assert "certificate not accepted: self" in tls.summary  # "self-signed" / "self signed"
    # What the failure was about, read from the certificate without trusting it.
    assert "it is for CN=localhost (SAN localhost, 127.0.0.1)" in tls.summary
    assert "SSL_CERT_FILE" in (tls.fix or "")
    assert checks["clock"].status == "skip"


@pytest.mark.parametrize("as_context", [False, True])
def test_a_trusted_certificate_passes(tmp_path: Path, as_context: bool) -> None:
    with _https(tmp_path) as (url, pem):
        verify: str | ssl.SSLContext = (
            ssl.create_default_context(cafile=str(pem)) if as_context else str(pem)
        )
        checks = _by_kind(network_checks("huke", "Huke", url, verify=verify, timeout=2))
    tls = checks["tls"]
    assert tls.status == "pass", tls.summary
    assert tls.details["version"].startswith("TLSv1.")
    assert tls.details["days_left"] == 89
    assert tls.details["san"] == ["localhost", "127.0.0.1"]
    assert "127.0.0.1) matches 127.0.0.1, expires in 89 days;" in tls.summary
    assert tls.details["cipher"] in tls.summary
    assert checks["clock"].status == "pass"


def test_a_certificate_that_expires_soon_warns(tmp_path: Path) -> None:
    with _https(tmp_path, days=5.5) as (url, pem):
        tls = network_checks("huke", "Huke", url, verify=str(pem), timeout=2)[2]
    assert tls.status == "warn"
    assert "expires in 5 days" in tls.summary
    assert "ask Huke's operator to renew it" in (tls.fix or "")


def test_an_expired_certificate_fails(tmp_path: Path) -> None:
    with _https(tmp_path, days=-3) as (url, pem):
        tls = network_checks("huke", "Huke", url, verify=str(pem), timeout=2)[2]
    assert (tls.status, tls.details["verify_code"]) == ("fail", 10)
    assert "expired" in tls.summary
    assert "renew" in (tls.fix or "")


def test_a_certificate_for_another_host_fails(tmp_path: Path) -> None:
    with _https(tmp_path, names=("other.example",)) as (url, pem):
        tls = network_checks("huke", "Huke", url, verify=str(pem), timeout=2)[2]
    assert tls.status == "fail"
    assert tls.details["verify_code"] in (62, 64)
    assert "it is for CN=other.example (SAN other.example)" in tls.summary
    assert "use a host name the certificate names in HUKE_BASE_URL" in (tls.fix or "")


def test_a_ca_file_that_cannot_be_loaded_fails_tls(tmp_path: Path) -> None:
    with _https(tmp_path) as (url, _):
        tls = network_checks("huke", "Huke", url, verify=str(tmp_path / "missing.pem"))[2]
    assert tls.status == "fail"
    assert "missing.pem" in tls.summary
    assert "cannot be loaded" in tls.summary


def test_verify_false_warns_that_nothing_was_verified(tmp_path: Path) -> None:
    with _https(tmp_path) as (url, _):
        tls = network_checks("huke", "Huke", url, verify=False, timeout=2)[2]
    assert tls.status == "warn"
    assert "NOT verified (verify=False)" in tls.summary


def test_a_tls_port_spoken_to_in_plain_http_fails_the_handshake() -> None:
    with LoopbackServer(_dated(0)) as server:
        tls = network_checks("huke", "Huke", server.url.replace("http:", "https:"), timeout=2)[2]
    assert tls.status == "fail"
    assert "TLS handshake with 127.0.0.1" in tls.summary
    assert "scheme and port" in (tls.fix or "")


# -- proxies --------------------------------------------------------------------------------


def test_https_is_checked_through_a_connect_proxy(tmp_path: Path) -> None:
    with _https(tmp_path) as (url, pem), _ConnectProxy() as proxy:
        environ = {"HTTPS_PROXY": f"http://doctor:{PASSWORD}@127.0.0.1:{proxy.port}"}
        checks = _by_kind(network_checks("huke", "Huke", url, verify=str(pem), environ=environ))
    shown = f"via proxy http://***@127.0.0.1:{proxy.port} (HTTPS_PROXY)"
    assert [c.status for c in checks.values()] == ["pass", "pass", "pass", "pass"]
    for check in checks.values():
        assert shown in check.summary
    assert "the proxy's host 127.0.0.1" in checks["dns"].summary
    assert f"connected to the proxy at 127.0.0.1:{proxy.port}" in checks["tcp"].summary
    target = url.split("/")[2]
    # The TLS check's tunnel and the clock's request (httpx's own tunnel), both authenticated.
    assert proxy.seen == [(f"CONNECT {target} HTTP/1.1", f"Basic {TOKEN}")] * 2


@pytest.mark.parametrize("case", ["refused", "rejected", "tunnelled", "unreadable"])
def test_the_proxy_password_never_shows(tmp_path: Path, case: str) -> None:
    with _https(tmp_path) as (url, pem), _ConnectProxy(password="another") as rejecting:
        port = {"refused": _closed_port(), "rejected": rejecting.port}.get(case, 0)
        value = f"http://doctor:{PASSWORD}@127.0.0.1:{port}"
        if case == "tunnelled":
            with _ConnectProxy() as proxy:
                value = f"http://doctor:{PASSWORD}@127.0.0.1:{proxy.port}"
                checks = network_checks(
                    "huke", "Huke", url, verify=str(pem), environ={"https_proxy": value}
                )
        else:
            if case == "unreadable":
                value = f"http://doctor:{PASSWORD}@[127.0.0.1"
            checks = network_checks(
                "huke", "Huke", url, verify=str(pem), environ={"https_proxy": value}
            )
    report = _report(checks)
    texts = [str(report), report.to_json(), repr(checks)]
    for text in texts:
        assert PASSWORD not in text
        assert TOKEN not in text
    assert "https_proxy" in str(report)
    if case == "rejected":
        tls = checks[2]
        assert tls.status == "fail"
        assert "407 Proxy Authentication Required" in tls.summary
        assert "***" in tls.summary  # the password it quoted back, masked
        assert "rejects the credentials in https_proxy" in (tls.fix or "")
    if case == "unreadable":
        assert checks[0].status == "fail"
        assert "https_proxy" in (checks[0].fix or "")


def test_no_proxy_and_the_scheme_decide_whether_a_proxy_applies(tmp_path: Path) -> None:
    dead = f"http://doctor:{PASSWORD}@127.0.0.1:{_closed_port()}"
    with _https(tmp_path) as (url, pem):
        bypassed = network_checks(
            "huke",
            "Huke",
            url,
            verify=str(pem),
            environ={"HTTPS_PROXY": dead, "NO_PROXY": "localhost,127.0.0.1"},
        )
        proxied = network_checks("huke", "Huke", url, verify=str(pem), environ={"ALL_PROXY": dead})
    with LoopbackServer(_dated(0)) as server:
        plain = network_checks("huke", "Huke", server.url, environ={"HTTPS_PROXY": dead})
    assert [c.status for c in bypassed] == ["pass", "pass", "pass", "pass"]
    assert "proxy" not in bypassed[1].summary
    assert proxied[1].status == "fail"
    assert "the proxy at 127.0.0.1" in proxied[1].summary
    assert "(ALL_PROXY)" in proxied[1].summary
    assert [c.status for c in plain] == ["pass", "pass", "info", "pass"]


def test_lower_case_proxy_variables_win_as_urllib_reads_them() -> None:
    environ = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "NO_PROXY": "x"}
    assert _environment_proxies(environ) == {"https": "http://lower:2", "no": "x"}
    assert _environment_proxies({"HTTPS_PROXY": "http://upper:1", "https_proxy": ""}) == {}
    cgi = {"HTTP_PROXY": "http://injected:1", "REQUEST_METHOD": "GET"}
    assert _environment_proxies(cgi) == {}


# -- deadlines and dates --------------------------------------------------------------------


class _Trickler(_Listener):
    """Reads what the client sends first, sends ``opening``, then one byte every 0.2 s: each
    read of the client's ends well within its timeout, and the answer never does."""

    def __init__(self, opening: bytes, byte: bytes) -> None:
        self.opening, self.byte = opening, byte
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65_536)
        conn.sendall(self.opening)
        while not self._stop.is_set():
            conn.sendall(self.byte)
            self._stop.wait(0.2)


def _within(limit: float, run: Callable[[], list[Check]]) -> tuple[list[Check], float]:
    """``run()`` in a thread (a hang fails the test instead of holding it): its checks, and how
    long it took."""
    found: list[list[Check]] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: found.append(run()), daemon=True)
    worker.start()
    worker.join(limit)
    assert found, f"the checks were still running after {limit:g} s"
    return found[0], time.monotonic() - started


def test_a_head_sent_a_byte_at_a_time_ends_the_clock_check_at_its_timeout() -> None:
    with _Trickler(b"HTTP/1.1 200 OK\r\nX-Pad: ", b"a") as server:
        checks, elapsed = _within(
            6, lambda: network_checks("huke", "Huke", f"http://127.0.0.1:{server.port}/", timeout=1)
        )
        clock = checks[3]
        # The deadline shut the request's socket: no thread is left reading from it.
        assert not [t for t in threading.enumerate() if t.name == "doctor-clock"]
    assert elapsed < 2.5
    assert (clock.status, clock.required) == ("warn", False)
    assert "no answer within 1 s" in clock.summary
    assert clock.details["error"] == "timeout"


def test_a_tls_handshake_sent_a_byte_at_a_time_ends_the_tls_check_at_its_timeout() -> None:
    """The TLS check relies on an SSL socket's timeout bounding its handshake as a whole (a
    plain socket's bounds each read): a handshake record that announces 16 KB, then comes a
    byte at a time, ends it at its timeout all the same."""
    with _Trickler(b"\x16\x03\x03\x40\x00", b"\x00") as server:
        checks, elapsed = _within(
            6,
            lambda: network_checks("huke", "Huke", f"https://127.0.0.1:{server.port}/", timeout=1),
        )
    assert elapsed < 2.5
    tls = _by_kind(checks)["tls"]
    assert tls.status == "fail"
    assert "no TLS handshake from 127.0.0.1" in tls.summary
    assert "within 1 s" in tls.summary
    assert checks[3].status == "skip"


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's local time is UTC+8 (where a date read as local time is 8 hours off)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is Unix only")
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert time.localtime().tm_gmtoff == 8 * 3600
        yield
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("zone", [" -0000", "", " GMT", " +0800"])
def test_a_date_in_minus_0000_or_without_a_zone_is_utc(shanghai: None, zone: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        now = time.time() + (8 * 3600 if zone == " +0800" else 0)
        date = time.strftime("%a, %d %b %Y %H:%M:%S", time.gmtime(now)) + zone
        return httpx.Response(404, headers={"Date": date})

    with LoopbackServer(handle) as server:
        clock = network_checks("k3", "K/3 Cloud", server.url)[3]
    assert clock.status == "pass", clock.summary
    assert abs(clock.details["skew_s"]) < 2


def test_the_basic_token_of_the_urls_password_never_shows() -> None:
    """httpx sends a URL's userinfo as ``Authorization: Basic <user:password>``; a server that
    quotes it (in its ``Date`` here) shows neither the password nor the token."""
    password = "Ur1-Passw0rd"
    token = base64.b64encode(f"u:{password}".encode()).decode()

    def echo(request: httpx.Request) -> httpx.Response:
        quoted = request.headers.get("authorization", "none")
        return httpx.Response(200, headers={"Date": f"{quoted} {token.rstrip('=')}"})

    with LoopbackServer(echo) as server:
        url = server.url.replace("http://", f"http://u:{password}@") + "/openapi"
        clock = network_checks("huke", "Huke", url)[3]
    assert clock.status == "warn"
    assert "Basic ***" in clock.summary
    report = _report([clock])
    for text in (str(report), report.to_json(), report._repr_html_()):
        assert password not in text
        assert token.rstrip("=") not in text
