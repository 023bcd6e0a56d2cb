"""Create Kingdee K/3 Cloud customers from NetEase Huke trades, safely and re-runnably.

```python
from huke_client import HukeClient
from k3cloud_client import K3CloudClient
from huke_k3_bridge import sync_customers, FileState

with HukeClient.from_env() as huke, K3CloudClient.from_env() as k3:
    report = sync_customers(huke, k3, state=FileState("huke-k3.json"))
    print(report)
```

A run's options are keywords (``batch_size=100``) or one ``SyncOptions`` object
(``options=SyncOptions(batch_size=100)``), the same either way.

The default transform is the integration scheme's mapping (``trade_to_customer``);
``CustomerTransform`` makes every part of it configurable, ``CustomerTransform.from_template``
reads a table like the scheme's (``SCHEME``). ``huke-k3 demo`` shows it all on simulators.

Many shops: ``load_tenants("tenants.toml")`` reads a tenants file (each shop's settings, with
secrets as names of environment variables); ``huke-k3 sync --tenants FILE --tenant NAME`` runs one.

Before the first run with real credentials: ``doctor()`` (``huke-k3 doctor``) checks the settings,
both hosts, Huke's reply shape and K/3 Cloud's permissions, saving nothing.
"""

from typing import TYPE_CHECKING, Any

from ._engine import async_sync_customers, sync_customers
from ._errors import AccountingError, BridgeError, StateError, StateLockedError, TenantsError
from ._options import AsyncSyncKwargs, OnExisting, SyncKwargs, SyncOptions
from ._progress import ProgressArg, ProgressCallback, ProgressEvent
from ._report import STATUSES, OutcomeStatus, SyncReport, TradeOutcome
from ._state import DEFAULT_OVERLAP, FileState, State
from ._template import (
    SCHEME,
    SCHEME_COLLECTION,
    FieldSpec,
    Lookup,
    LookupSource,
    Template,
    TemplateError,
)
from ._trade import TradeLike
from ._transform import (
    SAVE_OPTIONS,
    CustomerStep,
    CustomerTransform,
    SkipTrade,
    Transform,
    trade_to_customer,
)
from ._windows import DEFAULT_SPAN, DEFAULT_WINDOW, split_windows

if TYPE_CHECKING:
    from ._doctor import doctor
    from ._doctor_report import Check, CheckStatus, DoctorReport, SettingSource
    from .tenants import Tenant, Tenants, load_tenants

#: Names imported when first used: only programs running several shops read a tenants file, and
#: the doctor runs once in a while, not in every sync.
_LAZY = {
    "Tenant": "tenants",
    "Tenants": "tenants",
    "load_tenants": "tenants",
    "doctor": "_doctor",
    "Check": "_doctor_report",
    "CheckStatus": "_doctor_report",
    "DoctorReport": "_doctor_report",
    "SettingSource": "_doctor_report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_SPAN",
    "DEFAULT_WINDOW",
    "SAVE_OPTIONS",
    "SCHEME",
    "SCHEME_COLLECTION",
    "STATUSES",
    "AccountingError",
    "AsyncSyncKwargs",
    "BridgeError",
    "Check",
    "CheckStatus",
    "CustomerStep",
    "CustomerTransform",
    "DoctorReport",
    "FieldSpec",
    "FileState",
    "Lookup",
    "LookupSource",
    "OnExisting",
    "OutcomeStatus",
    "ProgressArg",
    "ProgressCallback",
    "ProgressEvent",
    "SettingSource",
    "SkipTrade",
    "State",
    "StateError",
    "StateLockedError",
    "SyncKwargs",
    "SyncOptions",
    "SyncReport",
    "Template",
    "TemplateError",
    "Tenant",
    "Tenants",
    "TenantsError",
    "TradeLike",
    "TradeOutcome",
    "Transform",
    "async_sync_customers",
    "doctor",
    "load_tenants",
    "split_windows",
    "sync_customers",
    "trade_to_customer",
]
