"""Typed sync and async client of Kingdee K/3 Cloud's Web API.

```python
from k3cloud_client import Customer, K3CloudClient

with K3CloudClient("http://host/k3cloud/", acct_id=..., user_name=..., app_id=..., app_secret=...) as k3:
    result = k3.batch_save("BD_Customer", [Customer("C001", "Acme")])
```

Submodules: ``k3cloud_client.filters`` builds FilterString text safely;
``k3cloud_client.testing.FakeK3Cloud`` is a strict simulator for tests;
``k3cloud_client.signing`` holds the signature functions, ``k3cloud_client.models`` the models
and their ``converter``, ``k3cloud_client.errors`` the errors and ``api_error``.
"""

from _huke_k3_core import RetryPolicy
from _huke_k3_core._deprecation import module_getattr
from _huke_k3_core._settings import Setting

from . import filters
from ._auth import AppSecretLogin, PasswordLogin, SignedHeaderAuth, SignLogin
from ._batch import DEFAULT_CHUNK_SIZE
from ._client import AsyncK3CloudClient, K3CloudClient
from ._options import (
    DEFAULT_MAX_PAGES,
    DEFAULT_PAGE_SIZE,
    PagedQueryKwargs,
    QueryKwargs,
    QueryOptions,
    SaveKwargs,
    SaveOptions,
)
from .errors import (
    WHOLE_CALL_MSG_CODES,
    BatchSaveError,
    DataNotFoundError,
    FieldNotFoundError,
    InvalidParameterError,
    K3CloudAPIError,
    K3CloudAuthenticationError,
    K3CloudConfigError,
    K3CloudConnectionError,
    K3CloudError,
    K3CloudHTTPError,
    K3CloudPageLimitError,
    K3CloudResponseError,
    K3CloudTimeoutError,
    LoginError,
    OperationNotAllowedError,
    PermissionDeniedError,
    RateLimitedError,
    SessionLostError,
    ValidationFailedError,
)
from .models import (
    BatchSaveResult,
    Customer,
    ErrorDetail,
    FailedRow,
    OperationRow,
    ResponseStatus,
    SavedRow,
    SuccessEntity,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_PAGE_SIZE",
    "WHOLE_CALL_MSG_CODES",
    "AppSecretLogin",
    "AsyncK3CloudClient",
    "BatchSaveError",
    "BatchSaveResult",
    "Customer",
    "DataNotFoundError",
    "ErrorDetail",
    "FailedRow",
    "FieldNotFoundError",
    "InvalidParameterError",
    "K3CloudAPIError",
    "K3CloudAuthenticationError",
    "K3CloudClient",
    "K3CloudConfigError",
    "K3CloudConnectionError",
    "K3CloudError",
    "K3CloudHTTPError",
    "K3CloudPageLimitError",
    "K3CloudResponseError",
    "K3CloudTimeoutError",
    "LoginError",
    "OperationNotAllowedError",
    "OperationRow",
    "PagedQueryKwargs",
    "PasswordLogin",
    "PermissionDeniedError",
    "QueryKwargs",
    "QueryOptions",
    "RateLimitedError",
    "ResponseStatus",
    "RetryPolicy",
    "SaveKwargs",
    "SaveOptions",
    "SavedRow",
    "SessionLostError",
    "Setting",
    "SignLogin",
    "SignedHeaderAuth",
    "SuccessEntity",
    "ValidationFailedError",
    "filters",
]

# Names that left the top level: still served from here, with a DeprecationWarning.
__getattr__ = module_getattr(
    __name__,
    moved={
        "converter": "k3cloud_client.models:converter",
        "api_error": "k3cloud_client.errors:api_error",
        "login_sign": "k3cloud_client.signing:login_sign",
        "signed_headers": "k3cloud_client.signing:signed_headers",
    },
)
