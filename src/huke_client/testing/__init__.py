"""``FakeHuke``: a strict simulator of Huke's open API, for tests and benchmarks.

Use it in-process (``httpx.Client(transport=fake.transport())``, or simply ``fake.client()``) or
behind a real socket on 127.0.0.1 (``with fake.serve() as server: ... server.url``).

It checks what the real service is known to check, with the real algorithm, and answers with the
``{"code", "msg", "data"}`` envelope over HTTP 200. It serves only
``POST /openapi/<module>/<action>`` (the documented base URL ``https://huke.163.com/openapi`` plus
the endpoint) and answers any other path with HTTP 404, so a wrong base URL fails in tests as in
production; a body that is not strict JSON (``NaN``, ``Infinity``, nesting deeper than
``MAX_JSON_DEPTH``) gets a ``BAD_REQUEST`` envelope. Huke's own error codes are not public: the
codes in ``SimCode`` are **the simulator's own**, chosen to be distinct; do not rely on them against
the real service. Where Huke's behaviour is unknown the simulator picks one documented behaviour:

* trades are matched on an epoch-millisecond field per ``timeType`` (``"1"`` -> ``createTime`` by
  default; ``time_field=`` changes it), the range is inclusive at both ends, and results are in
  ascending time order (stable for equal times, in the order trades were added);
* ``pageSize`` must be 1..``max_page_size`` (default 100; the real maximum is unknown);
* exactly one ``timeRanges`` entry is supported; ``source`` and ``dealerList`` are validated but
  do not filter (their real semantics are unknown);
* ``data`` is ``{items_key: [...], total_key: n}`` (``data_shape="object"``), the same without the
  total (``"object_no_total"``) or a bare list (``"list"``).

The store may change between two pages, as the real one does while a client pages through it:
``fake.on_page(hook)`` runs ``hook(served)`` after each ``trade/searchTrades`` page is made and
before it is answered, and ``fake.remove_trades(...)`` / ``fake.add_trades(...)`` change the store.

A page may also be misreported: ``fake.listing_fault(kind, page=2)`` answers matching pages with
no ``data``, a null one, no trades, one trade short, or another total (see ``ListingFault``),
until it has struck ``times`` pages or is cancelled.

Every reply (error envelopes, the 404 of an unknown path and fault replies included) carries a
``Date`` header read from ``clock``, the server's clock, in-process and behind ``serve``: set
``clock=`` apart from the caller's to show a skewed server.

Faults come from the shared machinery: ``fake.inject(Fault.http_status(503))``,
``fake.inject(envelope_error(40100, "rate limited"))`` and so on; so do ``LoopbackServer`` and
``serve`` (any simulator behind a socket) and ``MAX_JSON_DEPTH``, the same in
``k3cloud_client.testing``.

The package's modules, one job each: ``_fake`` (``FakeHuke``: the store and its endpoints),
``_http`` (routing, envelope, signature and body checks), ``_listing`` (pages as served and
misreported), ``_trades`` (synthetic trades).
"""

from __future__ import annotations

from _huke_k3_core.testing import MAX_JSON_DEPTH, Fault, LoopbackServer, serve

from ._fake import DATA_SHAPES, FakeHuke
from ._http import SimCode, envelope, envelope_error
from ._listing import LISTING_FAULT_KINDS, NO_DATA, ListingFault, ServedPage
from ._trades import fake_trade, generate_trades

__all__ = [
    "DATA_SHAPES",
    "LISTING_FAULT_KINDS",
    "MAX_JSON_DEPTH",
    "NO_DATA",
    "FakeHuke",
    "Fault",
    "ListingFault",
    "LoopbackServer",
    "ServedPage",
    "SimCode",
    "envelope",
    "envelope_error",
    "fake_trade",
    "generate_trades",
    "serve",
]
