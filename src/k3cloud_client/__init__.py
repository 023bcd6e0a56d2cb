"""Typed sync and async client of Kingdee K/3 Cloud's Web API.

```python
from k3cloud_client import Customer, K3CloudClient

with K3CloudClient("http://host/k3cloud/", acct_id=..., user_name=..., app_id=..., app_secret=...) as k3:
    result = k3.batch_save("BD_Customer", [Customer("C001", "Acme")])
```

``k3cloud_client.filters`` builds FilterString text safely; ``k3cloud_client.testing.FakeK3Cloud``
is a strict simulator for tests.
"""

from _huke_k3_core import RetryPolicy

from . import filters
from ._auth import AppSecretLogin, PasswordLogin, SignedHeaderAuth, SignLogin
from ._batch import DEFAULT_CHUNK_SIZE
from ._client import DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE, AsyncK3CloudClient, K3CloudClient
from ._errors import (
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
    K3CloudResponseError,
    K3CloudTimeoutError,
    LoginError,
    OperationNotAllowedError,
    PermissionDeniedError,
    RateLimitedError,
    SessionLostError,
    ValidationFailedError,
    api_error,
)
from ._models import (
    BatchSaveResult,
    Customer,
    ErrorDetail,
    FailedRow,
    ResponseStatus,
    SavedRow,
    SuccessEntity,
    converter,
)
from ._signing import login_sign, signed_headers

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
    "K3CloudResponseError",
    "K3CloudTimeoutError",
    "LoginError",
    "OperationNotAllowedError",
    "PasswordLogin",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseStatus",
    "RetryPolicy",
    "SavedRow",
    "SessionLostError",
    "SignLogin",
    "SignedHeaderAuth",
    "SuccessEntity",
    "ValidationFailedError",
    "api_error",
    "converter",
    "filters",
    "login_sign",
    "signed_headers",
]
