"""The doctor's network checks for one service: DNS, TCP, TLS and the clock, against its URL.

Each check probes what the client's own connection meets: the proxy httpx would use for the
URL (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) when one applies, the
certificate verification httpx would do, and the server's ``Date`` header for the clock. Every
network operation is bounded by ``timeout`` (the clock's request as a whole, however slowly a
server sends), and every text is scrubbed of the proxies' and the URL's passwords and their
``Basic`` tokens: a proxy or server that quotes them back does not put them in the report.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from _huke_k3_core import http_date, one_line, plural, safe_url

from ._deadline import within
from ._doctor_proxy import Proxy, TunnelRefused, authority, open_tunnel, port_of, proxy_for
from ._doctor_redact import environment_secrets, scrub_checks
from ._doctor_report import Check, CheckStatus
from ._doctor_tls import (
    SYNC_CLOCK,
    certificate_facts,
    names,
    ssl_context,
    unverified_context,
    verification_fix,
)

__all__ = ["CLOCK_PASS", "EXPIRY_WARN_DAYS", "network_checks"]

#: Clock skew (seconds) within which the clock check passes; up to ``max_clock_skew`` it warns.
CLOCK_PASS = 5.0
#: A certificate that expires within this many days makes the TLS check warn.
EXPIRY_WARN_DAYS = 14
_SECTION = "network"
_TITLES = {"dns": "DNS", "tcp": "TCP connection", "tls": "TLS", "clock": "clock"}
#: Where each service's URL is set, for the fixes.
_SETTINGS = {"huke": "HUKE_BASE_URL (base_url=)", "k3": "K3CLOUD_SERVER_URL (server_url=)"}
#: Why a skewed clock matters, per service.
_SIGNED_WITH_TIME = {
    "huke": "Huke signs each request with this machine's time (ur-curtime), so a skewed clock "
    "fails authentication",
    "k3": "K/3 Cloud's signed requests carry this machine's time (x-api-timestamp), so a skewed "
    "clock can fail authentication",
}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}

Address = tuple[Any, ...]  # one getaddrinfo entry: (family, type, proto, canonname, sockaddr)


def network_checks(
    service: str,
    label: str,
    url: str | httpx.URL,
    *,
    verify: bool | str | ssl.SSLContext = True,
    timeout: float = 5.0,
    max_clock_skew: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> list[Check]:
    """The checks ``network.<service>.dns``, ``.tcp``, ``.tls`` and ``.clock``, in that order.

    ``verify`` is as httpx's ``verify=``; ``environ`` holds the proxy variables (default
    ``os.environ``). A check whose predecessor failed is ``skip``, saying why.
    """
    target = httpx.URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError(
            f"network_checks needs an absolute http(s) URL, got {safe_url(target)!r} "
            f"({type(url).__name__})"
        )
    probe = _Probe(
        service=service,
        label=label,
        target=target,
        verify=verify,
        timeout=timeout,
        max_clock_skew=max_clock_skew,
        proxy=proxy_for(target, environ),
    )
    return list(scrub_checks(probe.run(), environment_secrets([target], environ)))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


@attrs.define
class _Probe:
    """One service's checks, run in order, each on what the one before it found."""

    service: str
    label: str
    target: httpx.URL
    verify: bool | str | ssl.SSLContext
    timeout: float
    max_clock_skew: float
    proxy: Proxy | None
    _context: ssl.SSLContext | None = attrs.field(init=False, default=None)
    #: The address the TCP check connected to: (family, type, proto, sockaddr).
    _reached: Address | None = attrs.field(init=False, default=None)

    @property
    def host(self) -> str:
        return self.target.host

    @property
    def port(self) -> int:
        return port_of(self.target)

    @property
    def setting(self) -> str:
        return _SETTINGS.get(self.service, f"the {self.label} URL setting")

    @property
    def via(self) -> str:
        return f"; via proxy {self.proxy.shown} ({self.proxy.source})" if self.proxy else ""

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl_context(self.verify)
        return self._context

    def check(
        self,
        kind: str,
        status: CheckStatus,
        summary: str,
        *,
        fix: str | None = None,
        required: bool = True,
        **details: Any,
    ) -> Check:
        return Check(
            id=f"{_SECTION}.{self.service}.{kind}",
            section=_SECTION,
            title=f"{self.label} {_TITLES[kind]}",
            status=status,
            summary=summary,
            fix=fix,
            required=required,
            details=details,
        )

    def skip(self, kind: str, why: str) -> Check:
        """``kind`` not run; an ``http://`` URL's TLS check says what the URL says all the same."""
        if kind == "tls" and (plain := self.plain_http()) is not None:
            return plain
        return self.check(kind, "skip", f"not run: {why}")

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> list[Check]:
        rest = ("tcp", "tls", "clock")
        if self.proxy is not None and self.proxy.url is None:
            summary = f"a proxy applies to {self.host}, but its setting is {self.proxy.shown}"
            fix = f"correct {self.proxy.source} (http://host:port) or unset it"
            dns = self.check("dns", "fail", summary, fix=fix)
            return [dns, *(self.skip(k, "the proxy setting cannot be read") for k in rest)]
        dns, addresses = self.dns()
        if not addresses:
            return [dns, *(self.skip(k, "no address to connect to") for k in rest)]
        tcp, sock = self.tcp(addresses)
        if sock is None:
            where = self.where()
            return [dns, tcp, *(self.skip(k, f"no connection to {where}") for k in rest[1:])]
        with sock:
            tls = self.tls(sock)
        if tls.status == "fail":
            why = "the TLS check failed, and an HTTP request would fail the same way"
            return [dns, tcp, tls, self.skip("clock", why)]
        return [dns, tcp, tls, self.clock()]

    def where(self) -> str:
        if self.proxy is not None:
            return f"the proxy {authority(self.proxy.host, self.proxy.port)}"
        return authority(self.host, self.port)

    # -- DNS -------------------------------------------------------------------------------

    def dns(self) -> tuple[Check, list[Address]]:
        if self.proxy is not None:
            host, port, what = self.proxy.host, self.proxy.port, "the proxy's host "
        else:
            host, port, what = self.host, self.port, ""
        where = self.proxy.source if self.proxy is not None else self.setting
        fix = f"check the host name in {where}; try `getent hosts {host}`"
        started = time.perf_counter()
        if _is_ip(host):
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=_NUMERIC)
            summary = f"{what}{host} is an IP address: no lookup needed{self.via}"
            ms = _ms(time.perf_counter() - started)
            return self.check("dns", "pass", summary, ms=ms, addresses=[host]), found
        try:
            found = _resolve(host, port, self.timeout)
        except TimeoutError:
            ms = _ms(time.perf_counter() - started)
            summary = f"no answer from the resolver for {what}{host} within {self.timeout:g} s"
            return self.check("dns", "fail", summary + self.via, fix=fix, ms=ms), []
        except (OSError, UnicodeError) as error:
            ms = _ms(time.perf_counter() - started)
            reason = getattr(error, "strerror", None) or str(error)
            summary = f"{what}{host} cannot be resolved: {reason} ({ms:g} ms){self.via}"
            return self.check("dns", "fail", summary, fix=fix, ms=ms, error=reason), []
        ms = _ms(time.perf_counter() - started)
        addresses = list(dict.fromkeys(str(entry[4][0]) for entry in found))
        shown = ", ".join(addresses[:4])
        if len(addresses) > 4:
            shown += f" and {len(addresses) - 4} more"
        counted = plural(len(addresses), "address", "addresses")
        summary = f"{what}{host}: {counted}, {shown} ({ms:g} ms){self.via}"
        return self.check("dns", "pass", summary, ms=ms, addresses=addresses), found

    # -- TCP -------------------------------------------------------------------------------

    def tcp(self, addresses: list[Address]) -> tuple[Check, socket.socket | None]:
        """Connect to each address in turn, as a client does, until one answers."""
        deadline = time.monotonic() + self.timeout
        failures: list[tuple[str, str, str, OSError, float]] = []
        what = "the proxy at " if self.proxy is not None else ""
        for family, socktype, proto, _, sockaddr in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            where = authority(str(sockaddr[0]), sockaddr[1])
            sock = socket.socket(family, socktype, proto)
            sock.settimeout(remaining)
            started = time.perf_counter()
            try:
                sock.connect(sockaddr)
            except OSError as error:
                seconds = time.perf_counter() - started
                sock.close()
                failures.append((where, *_tcp_failure(error, self.timeout), error, seconds))
                continue
            ms = _ms(time.perf_counter() - started)
            self._reached = (family, socktype, proto, sockaddr)
            summary = f"connected to {what}{where} in {ms:g} ms{self.via}"
            return self.check("tcp", "pass", summary, ms=ms, address=where), sock
        if not failures:
            summary = f"no address could be tried within {self.timeout:g} s{self.via}"
            return self.check("tcp", "fail", summary, fix=self.tcp_fix("timeout")), None
        summary = what + "; ".join(f"{w} {text} ({_ms(s):g} ms)" for w, _, text, _, s in failures)
        # A client ends on the last address: its failure is the one to fix.
        _, kind, _, last, seconds = failures[-1]
        check = self.check(
            "tcp",
            "fail",
            summary + self.via,
            fix=self.tcp_fix(kind),
            ms=_ms(seconds),
            error=kind,
            errno=last.errno,
            attempts=[w for w, *_ in failures],
        )
        return check, None

    def tcp_fix(self, kind: str) -> str:
        if self.proxy is not None:
            host, port = self.proxy.host, self.proxy.port
            where = f"the proxy in {self.proxy.source}"
        else:
            host, port, where = self.host, self.port, f"the port in {self.setting}"
        if kind == "refused":
            return (
                f"check {where} and that the server runs there; a firewall may reject port {port}"
            )
        if kind == "timeout":
            return (
                f"a firewall drops traffic to port {port}, or the host is reachable only over a "
                f"VPN: check both; try `nc -vz {host} {port}`"
            )
        if kind == "unreachable":
            return "no route to the host: connect the VPN it needs, or check this machine's network"
        return f"check the network path to {authority(host, port)} (firewall, VPN) and {where}"

    def connect_again(self, deadline: float) -> socket.socket:
        """A new connection to where the TCP check got (through the proxy's tunnel, if any)."""
        assert self._reached is not None
        family, kind, proto, sockaddr = self._reached
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.connect(sockaddr)
            if self.proxy is not None:
                open_tunnel(sock, self.proxy, self.host, self.port, deadline)
        except BaseException:
            sock.close()
            raise
        return sock

    # -- TLS -------------------------------------------------------------------------------

    def plain_http(self) -> Check | None:
        """The TLS check of an ``http://`` URL: what the URL says, connected or not."""
        if self.target.scheme != "http":
            return None
        if _is_loopback(self.host):
            summary = f"plain HTTP to {self.host}, a loopback address (a simulator or a tunnel)"
            return self.check("tls", "info", summary, required=False)
        summary = "plain HTTP: no TLS; credentials and data travel unencrypted"
        fix = "use https:// if the server offers it"
        return self.check("tls", "warn", summary, fix=fix, required=False)

    def tls(self, sock: socket.socket) -> Check:
        plain = self.plain_http()
        if plain is not None:
            return plain
        if self.proxy is not None and not self.proxy.tunnels:
            summary = (
                f"through the proxy {self.proxy.shown}, TLS is checked by the {self.label} checks"
            )
            return self.check("tls", "info", summary, required=False)
        try:
            context = self.context()
        except OSError as error:  # ssl.SSLError included: a CA file that is missing or no PEM
            summary = f"the CA certificates in verify={self.verify!r} cannot be loaded: {error}"
            fix = "pass verify= the path of a PEM file (or directory) of CA certificates"
            return self.check("tls", "fail", summary, fix=fix, error=str(error))
        deadline = time.monotonic() + self.timeout
        started = time.perf_counter()
        try:
            if self.proxy is not None:
                open_tunnel(sock, self.proxy, self.host, self.port, deadline)
            # An SSL socket's timeout bounds each of its operations as a whole (the handshake
            # too, however slowly the server sends it), unlike a plain socket's reads.
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=self.host) as tls:
                ms = _ms(time.perf_counter() - started)
                version, cipher = tls.version() or "?", (tls.cipher() or ("?",))[0]
                der = tls.getpeercert(binary_form=True)
        except TunnelRefused as refused:
            return self.tunnel_refused(refused)
        except ssl.SSLCertVerificationError as error:
            return self.not_verified(error, deadline, _ms(time.perf_counter() - started))
        except TimeoutError:
            ms = _ms(time.perf_counter() - started)
            target = authority(self.host, self.port)
            summary = f"no TLS handshake from {target} within {self.timeout:g} s{self.via}"
            fix = f"the port takes connections but speaks no TLS: check the scheme and port in {self.setting}"
            return self.check("tls", "fail", summary, fix=fix, ms=ms, error="timeout")
        except OSError as error:  # ssl.SSLError included
            ms = _ms(time.perf_counter() - started)
            reason = str(getattr(error, "reason", None) or error.strerror or error)
            target = authority(self.host, self.port)
            summary = f"TLS handshake with {target} failed: {reason}{self.via}"
            fix = (
                f"check that {self.setting} has the scheme and port where the server speaks TLS "
                "(a plain-HTTP port answers WRONG_VERSION_NUMBER); a firewall may block TLS"
            )
            return self.check("tls", "fail", summary, fix=fix, ms=ms, error=reason)
        facts = certificate_facts(der) if der else {}
        verified = self.context().verify_mode != ssl.CERT_NONE
        details = {"ms": ms, "version": version, "cipher": cipher, "verified": verified, **facts}
        found = f"{version}, {cipher}; certificate for {names(facts)}"
        if not verified:
            summary = f"{found}, NOT verified (verify=False); {ms:g} ms{self.via}"
            fix = "verify the certificate: verify=True, or the path of its CA's PEM file"
            return self.check("tls", "warn", summary, fix=fix, **details)
        matches = f"matches {self.host}" if self.context().check_hostname else "host not checked"
        days = facts.get("days_left")
        expiry = f"expires in {plural(days, 'day')}" if isinstance(days, int) else "expiry unknown"
        summary = f"{found} {matches}, {expiry}; {ms:g} ms{self.via}"
        if isinstance(days, int) and days < EXPIRY_WARN_DAYS:
            on = str(facts["not_after"])[:10]
            fix = f"the certificate expires on {on}: ask {self.label}'s operator to renew it"
            return self.check("tls", "warn", summary, fix=fix, **details)
        return self.check("tls", "pass", summary, **details)

    def not_verified(
        self, error: ssl.SSLCertVerificationError, deadline: float, ms: float
    ) -> Check:
        message = str(error.verify_message or error.reason or error).rstrip(".")
        facts = self.peek_certificate(deadline)
        summary = f"certificate not accepted: {message}"
        if facts:
            issuer = facts.get("issuer_cn") or "?"
            until = str(facts.get("not_after", "?"))[:10]
            summary += f"; it is for {names(facts)}, issued by {issuer}, valid until {until}"
        fix = verification_fix(
            error.verify_code, label=self.label, setting=self.setting, host=self.host
        )
        details = {"ms": ms, "error": message, "verify_code": error.verify_code, **facts}
        return self.check("tls", "fail", summary + self.via, fix=fix, **details)

    def peek_certificate(self, deadline: float) -> dict[str, Any]:
        """The certificate the server sends, read unverified: what a failed verification was
        about. Empty when it cannot be had within the time left."""
        try:
            with (
                self.connect_again(deadline) as sock,
                unverified_context().wrap_socket(sock, server_hostname=self.host) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except (OSError, TunnelRefused):
            return {}
        return certificate_facts(der) if der else {}

    def tunnel_refused(self, refused: TunnelRefused) -> Check:
        assert self.proxy is not None
        target = authority(self.host, self.port)
        summary = f"the proxy {self.proxy.shown} answered CONNECT {target} with {refused.line!r}"
        if refused.status == 407 and self.proxy.url is not None and self.proxy.url.userinfo:
            fix = f"the proxy rejects the credentials in {self.proxy.source}: correct them"
        elif refused.status == 407:
            fix = f"the proxy wants credentials: set {self.proxy.source} to http://user:password@host:port"
        else:
            fix = f"ask the proxy's operator to allow {target}, or name {self.host} in NO_PROXY"
        return self.check(
            "tls", "fail", summary, fix=fix, error=refused.line, status_code=refused.status
        )

    # -- clock -----------------------------------------------------------------------------

    def clock(self) -> Check:
        """Skew = the server's ``Date`` less the middle of the request that fetched it."""
        proxy = self.proxy.url if self.proxy is not None else None
        uses_tls = "https" in (self.target.scheme, proxy.scheme if proxy is not None else "")
        started = time.perf_counter()
        try:
            head = _fetch_head(
                self.target,
                verify=self.context() if uses_tls else False,
                proxy=proxy,
                timeout=self.timeout,
            )
        except TimeoutError:
            ms = _ms(time.perf_counter() - started)
            summary = (
                f"could not read {self.label}'s time: no answer within {self.timeout:g} s "
                f"(its headers had not all come){self.via}"
            )
            fix = f"see the {self.label} checks: the clock is compared once a request is answered"
            return self.check(
                "clock", "warn", summary, fix=fix, required=False, ms=ms, error="timeout"
            )
        except (httpx.HTTPError, ImportError, OSError) as error:
            ms = _ms(time.perf_counter() - started)
            name = type(error).__name__
            summary = f"could not read {self.label}'s time: {name}: {one_line(str(error), 160)}"
            fix = f"see the {self.label} checks: the clock is compared once a request is answered"
            return self.check(
                "clock", "warn", summary + self.via, fix=fix, required=False, ms=ms, error=name
            )
        sent, answered, status_code, dates = head
        details: dict[str, Any] = {"ms": _ms(answered - sent), "status_code": status_code}
        signed = _SIGNED_WITH_TIME.get(self.service, "signed requests carry this machine's time")
        if not dates:
            summary = f"{self.label} sent no Date header (HTTP {status_code}): no clock to compare"
            fix = f"compare this machine's clock with a time server; {signed}"
            return self.check(
                "clock", "warn", summary + self.via, fix=fix, required=False, **details
            )
        date = one_line(dates[0], 60)
        server = http_date(dates[0])
        if server is None:
            summary = f"{self.label}'s Date header {date!r} cannot be read (HTTP {status_code})"
            fix = f"compare this machine's clock with a time server; {signed}"
            return self.check(
                "clock", "warn", summary + self.via, fix=fix, required=False, date=date, **details
            )
        # A Date is the server's time cut to the second (its middle is half a second on), written
        # at some moment of the round trip: the estimate is off by up to half of each.
        skew = server + 0.5 - (sent + answered) / 2
        uncertainty = 0.5 + (answered - sent) / 2
        details.update(skew_s=round(skew, 2), uncertainty_s=round(uncertainty, 2), date=date)
        seconds = round(abs(skew))
        direction = f"behind {self.label}'s" if skew > 0 else f"ahead of {self.label}'s"
        found = f"this machine's clock is about {seconds} s {direction} (Date: {date})"
        fix = f"{SYNC_CLOCK}; {signed}"
        if abs(skew) > self.max_clock_skew:
            summary = f"{found}: more than the {self.max_clock_skew:g} s allowed{self.via}"
            return self.check("clock", "fail", summary, fix=fix, **details)
        if abs(skew) > CLOCK_PASS:
            summary = f"{found}: more than {CLOCK_PASS:g} s{self.via}"
            return self.check("clock", "warn", summary, fix=fix, **details)
        if seconds <= 1:
            found = f"this machine's clock agrees with {self.label}'s to about 1 s (Date: {date})"
        return self.check("clock", "pass", found + self.via, **details)


_NUMERIC = socket.AI_NUMERICHOST
#: How long the clock's request may take to end once its deadline has shut its socket.
_GRACE = 0.5


def _fetch_head(
    target: httpx.URL,
    *,
    verify: bool | ssl.SSLContext,
    proxy: httpx.URL | None,
    timeout: float,
) -> tuple[float, float, int, list[str]]:
    """GET ``target`` as httpx does: when it was sent and answered (``time.time()``), the status
    and the ``Date`` headers. ``TimeoutError`` unless the answer's head is in within ``timeout``.

    httpx's timeouts bound each read, so a server that sends its head a byte at a time would
    hold the request for as long as it likes: the request runs in a thread, and at the deadline
    its sockets are shut down, which ends the read it waits in.
    """
    opened: list[socket.socket] = []
    lock = threading.Lock()
    gave_up = threading.Event()
    outcome: dict[str, Any] = {}

    def trace(event: str, info: Mapping[str, Any]) -> None:
        # A TLS connection's socket replaces the TCP one (it takes over its descriptor); while
        # the TLS handshake runs, neither is at hand, but its socket timeout bounds it whole.
        if not event.endswith(("connect_tcp.complete", "start_tls.complete")):
            return
        sock = getattr(info.get("return_value"), "get_extra_info", lambda _: None)("socket")
        if isinstance(sock, socket.socket):
            with lock:
                opened.append(sock)
                late = gave_up.is_set()
            if late:
                _shut(sock)

    def fetch() -> None:
        try:
            # trust_env=False: the proxy is the one the checks found (from ``environ``), not
            # whatever os.environ holds.
            with httpx.Client(
                verify=verify, timeout=timeout, trust_env=False, proxy=proxy
            ) as client:
                sent = time.time()
                with client.stream("GET", target, extensions={"trace": trace}) as response:
                    answered = time.time()
                    dates = response.headers.get_list("Date")
                    outcome["head"] = (sent, answered, response.status_code, dates)
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    worker = threading.Thread(target=fetch, name="doctor-clock", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        with lock:
            gave_up.set()
            shut = list(opened)
        for sock in shut:
            _shut(sock)
        worker.join(_GRACE)
        raise TimeoutError(f"no answer from {safe_url(target)} within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    head: tuple[float, float, int, list[str]] = outcome["head"]
    return head


def _shut(sock: socket.socket) -> None:
    """End what ``sock``'s connection is waiting for, in whatever thread waits (an ``SSLSocket``'s
    own ``shutdown`` would first drop its TLS state under the reading thread's feet)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _resolve(host: str, port: int, timeout: float) -> list[Address]:
    """``getaddrinfo`` bounded by ``timeout`` (it has no timeout of its own): a resolver that does
    not answer in time raises ``TimeoutError``, its lookup left to end in a daemon thread."""

    def late(seconds: float) -> list[Address]:
        raise TimeoutError(f"no answer for {host} within {seconds:g} s")

    return within(
        timeout,
        lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
        late,
        name="doctor-dns",
    )


def _tcp_failure(error: OSError, timeout: float) -> tuple[str, str]:
    """How a connect failed (``refused``, ``timeout``, ``unreachable`` or ``error``), in words."""
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "refused", "refused the connection: nothing listens there, or a firewall rejects it"
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return "timeout", f"did not answer within {timeout:g} s (timed out): packets are dropped"
    if error.errno in _UNREACHABLE:
        return "unreachable", f"is unreachable: {error.strerror or error}"
    return "error", f"failed: {error.strerror or error}"
