"""Private machinery shared by ``huke_client`` and ``k3cloud_client``.

Not a public API: the two clients re-export what users need. Knows nothing of either service.
"""

from ._env import check_url, read_env
from ._errors import (
    ConnectionFailedError,
    HTTPStatusError,
    RequestTimeoutError,
    ResponseFormatError,
    SDKError,
    json_kind,
    json_type,
    safe_url,
    snippet,
)
from ._frozen import FrozenDict
from ._models import Id, WireFieldError, WireModel, make_converter, structure_lenient, to_camel
from ._redact import MASK, Redactor, mask
from ._retry import (
    RETRYABLE_STATUSES,
    RetryableResponse,
    RetryPolicy,
    http_date,
    parse_retry_after,
)
from ._text import ELLIPSIS, one_line, plural, short_repr, shorten, wire_text
from ._time import split_range
from ._transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    USER_AGENT,
    AsyncAPIClient,
    BaseAPIClient,
    ErrorTypes,
    HttpxClientT,
    NotGiven,
    SyncAPIClient,
    TimeoutTypes,
    dumps,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "ELLIPSIS",
    "MASK",
    "NOT_GIVEN",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "AsyncAPIClient",
    "BaseAPIClient",
    "ConnectionFailedError",
    "ErrorTypes",
    "FrozenDict",
    "HTTPStatusError",
    "HttpxClientT",
    "Id",
    "NotGiven",
    "Redactor",
    "RequestTimeoutError",
    "ResponseFormatError",
    "RetryPolicy",
    "RetryableResponse",
    "SDKError",
    "SyncAPIClient",
    "TimeoutTypes",
    "WireFieldError",
    "WireModel",
    "check_url",
    "dumps",
    "http_date",
    "json_kind",
    "json_type",
    "make_converter",
    "mask",
    "one_line",
    "parse_retry_after",
    "plural",
    "read_env",
    "safe_url",
    "short_repr",
    "shorten",
    "snippet",
    "split_range",
    "structure_lenient",
    "to_camel",
    "wire_text",
]
