"""``FakeK3Cloud``: a strict, in-memory K/3 Cloud Web API for tests.

It verifies what the real server verifies (the signed headers with the real algorithm, the
session of the session logins), stores forms in memory with ``BD_Customer``'s rules (one record
per use organisation, ``FNumber`` unique per use organisation, ``Allocate`` copying a record to
other organisations, per-row ``DIndex`` results, updates by ``FCUSTID``, document status), answers
``ExecuteBillQuery``/``BillQuery`` over the store with a real FilterString parser (never ``eval``),
and injects faults on demand. Use it behind ``httpx.MockTransport`` (``fake.transport()``) or a
real socket (``with fake.serve() as server: server.url``). Thread-safe.

It serves only the real routes, ``/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>
.common.kdsvc`` (the ``k3cloud`` folder in any case, as IIS does), and answers any other path with
HTTP 404, so a wrong server URL fails in tests as it does in production. Every malformed request
gets a K/3-shaped error reply, never a dropped connection: a body that is not strict JSON
(``NaN``, ``Infinity``, numbers beyond a double, nesting deeper than ``MAX_JSON_DEPTH``) or field
lists that are not lists of text get MsgCode 8; a ``FilterString`` nested deeper than
``MAX_FILTER_DEPTH`` parentheses gets MsgCode 4.

```python
from k3cloud_client import Customer, K3CloudClient
from k3cloud_client.testing import FakeK3Cloud, TEST_APP_ID, TEST_APP_SECRET
import httpx

fake = FakeK3Cloud(acct_id="acct", user_name="api", app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)
client = K3CloudClient(
    "http://k3.test/k3cloud/", acct_id="acct", user_name="api", app_id=TEST_APP_ID,
    app_secret=TEST_APP_SECRET, http_client=httpx.Client(transport=fake.transport()),
)
```

For what a first run against a real account checks:

* every reply carries a ``Date`` header from the fake's ``clock`` (the server's clock, which
  ``clock=`` may set apart from the caller's), in-process and behind ``serve``;
* ``fake.deny("BD_Customer", "query")`` takes a right away from the user as a K/3 role would
  (``PERMISSIONS`` lists them: ``query``, ``save``, ``submit``, ``audit``, ``delete``,
  ``allocate``), ``fake.allow(...)`` gives it back: a denied operation gets MsgCode 2 with
  ``NO_PERMISSION_MESSAGE`` (a query in its error-as-a-row shape), which the clients raise as
  ``PermissionDeniedError``;
* ``ORG_Organizations`` (``ORG_FORM_ID``) answers queries with the organisations (``FOrgID``,
  ``FNumber``, ``FName``; ``add_organization(id, number, name=...)`` adds one), read-only.

``Fault``, ``LoopbackServer``, ``serve`` and ``MAX_JSON_DEPTH`` are the machinery both simulators
share (``huke_client.testing`` exports them too); ``fake.limit_capacity(...)`` bounds the requests
worked on at once. Inside: ``_http`` (routes, the request envelope, authentication), ``_fake``
(the forms' operations), ``_store`` (the records), ``_filter`` (the FilterString parser),
``_permissions`` (the user's rights) and ``_replies`` (the K/3 reply shapes).
"""

from _huke_k3_core.testing import MAX_JSON_DEPTH, Fault, LoopbackServer, serve
from k3cloud_client.errors import PASSPORT_FAILURE

from ._fake import FakeK3Cloud, customer_rows
from ._filter import MAX_FILTER_DEPTH
from ._http import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME
from ._permissions import PERMISSIONS
from ._replies import (
    DUPLICATE_NUMBER_MESSAGE,
    NO_PERMISSION_MESSAGE,
    RATE_LIMIT_MESSAGE,
    SESSION_LOST_MESSAGE,
)
from ._store import DEFAULT_ORGANIZATIONS, ORG_FORM_ID

__all__ = [
    "DEFAULT_ORGANIZATIONS",
    "DUPLICATE_NUMBER_MESSAGE",
    "MAX_FILTER_DEPTH",
    "MAX_JSON_DEPTH",
    "NO_PERMISSION_MESSAGE",
    "ORG_FORM_ID",
    "PASSPORT_FAILURE",
    "PERMISSIONS",
    "RATE_LIMIT_MESSAGE",
    "SESSION_LOST_MESSAGE",
    "TEST_ACCT_ID",
    "TEST_APP_ID",
    "TEST_APP_SECRET",
    "TEST_USER_NAME",
    "FakeK3Cloud",
    "Fault",
    "LoopbackServer",
    "customer_rows",
    "serve",
]
