"""Which proxy httpx would use for a URL, and an HTTP CONNECT tunnel through it: for the
doctor's network checks, which probe the proxy when one applies."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Mapping

import attrs
import httpx

from _huke_k3_core import one_line

from ._doctor_redact import basic_tokens

DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
_HEAD_LIMIT = 16_384


@attrs.frozen
class Proxy:
    """The proxy for a URL, as the environment sets it."""

    #: Where it was set (``"HTTPS_PROXY"``, ``"the system's proxy settings"``).
    source: str
    #: Its URL, credentials included; ``None`` when the setting is no usable URL.
    url: httpx.URL | None = attrs.field(repr=False)
    #: The URL as shown: scheme, host and port; credentials as ``***``.
    shown: str

    @property
    def host(self) -> str:
        return self.url.host if self.url is not None else ""

    @property
    def port(self) -> int:
        return port_of(self.url) if self.url is not None else 0

    @property
    def tunnels(self) -> bool:
        """Whether TLS to the target can be checked through it here: a plain ``http://`` proxy
        (an ``https://`` or SOCKS proxy would need a client of its own)."""
        return self.url is not None and self.url.scheme == "http"


def port_of(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS.get(url.scheme, 80)


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def proxy_for(target: httpx.URL, environ: Mapping[str, str] | None) -> Proxy | None:
    """The proxy httpx would use for ``target``: ``<scheme>_proxy`` before ``all_proxy``, none
    when ``NO_PROXY`` names the host (or holds ``*``).

    httpx reads these through ``urllib.request.getproxies`` (system settings too, on macOS and
    Windows, when ``environ`` is not given); its own ``NO_PROXY`` matching is private, so this
    uses ``urllib.request.proxy_bypass_environment``, which differs only in corner cases (a
    leading dot: ``.example.com`` exempts ``example.com`` itself here, not in httpx).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    table = urllib.request.getproxies() if environ is None else _environment_proxies(environ)
    scheme = target.scheme if table.get(target.scheme) else "all"
    value = table.get(scheme)
    if not value:
        return None
    no_proxy = table.get("no", "")
    host = target.host
    if any(part.strip() == "*" for part in no_proxy.split(",")):
        return None
    # Not in typeshed, though public since Python 3.4 and what getproxies' callers use.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if no_proxy and bypass(host if ":" in host else authority(host, port_of(target)), table):
        return None
    source = _variable(env, scheme, value)
    try:
        parsed = httpx.URL(value if "://" in value else f"http://{value}")
    except (httpx.InvalidURL, ValueError):
        # The error's text would quote the value, password and all.
        return Proxy(source=source, url=None, shown=f"the value of {source}, no valid URL")
    if not parsed.host:
        return Proxy(source=source, url=None, shown=f"the value of {source}, which names no host")
    credentials = "***@" if parsed.userinfo else ""
    shown = f"{parsed.scheme}://{credentials}{authority(parsed.host, port_of(parsed))}"
    return Proxy(source=source, url=parsed, shown=shown)


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``urllib.request.getproxies_environment`` over ``environ``: a lower-case name wins over
    its upper-case twin (an empty one unsets it), and ``HTTP_PROXY`` is ignored under CGI."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name[:-6].lower()] = value
            else:
                proxies.pop(name[:-6].lower(), None)
    return proxies


def _variable(environ: Mapping[str, str], scheme: str, value: str) -> str:
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        if environ.get(name) == value:
            return name
    return "the system's proxy settings"


class TunnelRefused(Exception):
    """The proxy answered CONNECT with something other than 200."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        #: The status code (0 when the answer had none).
        self.status = status
        #: Its status line, shortened.
        self.line = line


def open_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int, deadline: float) -> None:
    """Ask the proxy ``sock`` is connected to for a tunnel to ``host:port`` (HTTP CONNECT, with
    the proxy's credentials as httpx sends them); ``TunnelRefused`` unless it answers 200."""
    assert proxy.url is not None
    target = authority(host, port)
    head = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.url.userinfo:
        token = basic_tokens(proxy.url.username, proxy.url.password)[0]
        head.append(f"Proxy-Authorization: Basic {token}")
    sock.settimeout(_left(deadline))
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    received = b""
    while b"\r\n\r\n" not in received:
        if len(received) > _HEAD_LIMIT:
            raise TunnelRefused(0, "an answer to CONNECT whose headers do not end")
        sock.settimeout(_left(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the proxy closed the connection after CONNECT")
        received += chunk
    line = one_line(received.split(b"\r\n", 1)[0], 120)
    parts = line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status != 200:
        raise TunnelRefused(status, line)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)
