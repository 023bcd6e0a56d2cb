"""What a window's report means for its task: done, retry later, or fail now.

The sync engine reports a failure of Huke or K/3 Cloud instead of raising it, each run error
naming the client's exception type (``"...: K3CloudConnectionError: ..."``). Those names are
public classes of the clients, so the task reads them to tell a passing trouble (the network, a
timeout, a 5xx or 429, a rate limit: retried with backoff) from one that repeating cannot help
(credentials, configuration, a refusal: failed at once).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection

from huke_client import HukeConnectionError, HukeConsistencyError, HukeHTTPError
from huke_k3_bridge._report import SyncReport
from k3cloud_client import (
    K3CloudConnectionError,
    K3CloudHTTPError,
    RateLimitedError,
    SessionLostError,
)


class Verdict(enum.Enum):
    """What the task does with a window's report."""

    #: Every trade ended well: the window is completed.
    COMPLETED = "completed"
    #: Only rows failed (K/3 Cloud refused them): the summary is returned with ``ok`` false and
    #: the window is not marked completed, so the next since-last dispatch covers it again.
    ROWS_FAILED = "rows_failed"
    #: A passing trouble (or saves left uncertain): retried with backoff.
    TRANSIENT = "transient"
    #: Repeating cannot help: the task fails at once.
    FATAL = "fatal"


#: Errors that pass: the request never got through, its reply was lost, the server was busy.
#: (Subclasses by name too: the timeouts are connection errors.)
_PASSING = {
    cls.__name__
    for base in (HukeConnectionError, K3CloudConnectionError)
    for cls in (base, *base.__subclasses__())
} | {RateLimitedError.__name__, SessionLostError.__name__, HukeConsistencyError.__name__}
#: HTTP errors pass when their status does (a 5xx or a 429); a 404 is a wrong URL.
_HTTP = {HukeHTTPError.__name__, K3CloudHTTPError.__name__}
_STATUS = re.compile(r"answered HTTP (\d{3})")
_HUKE_CODE = re.compile(r"Huke error (\S+?):")
#: An exception as a report tells it: its type's name, then ": " and its message (or the end).
_ERROR_NAME = re.compile(r"\b([A-Z][A-Za-z0-9]*(?:Error|Exception))(?::|$)")


def _passes(error: str, huke_retry_codes: Collection[str]) -> bool:
    """Whether one run error of a report is a passing trouble."""
    # The first name is the cause ("... failed as a whole ...: K3CloudConnectionError: ...");
    # names further on are the server's own words.
    found = _ERROR_NAME.search(error)
    name = found[1] if found else ""
    if name in _PASSING:
        return True
    if name in _HTTP:
        status = _STATUS.search(error)
        return status is not None and (status[1] == "429" or status[1].startswith("5"))
    if name == "HukeAPIError":
        code = _HUKE_CODE.search(error)
        return code is not None and code[1] in huke_retry_codes
    return False


def judge(report: SyncReport, *, huke_retry_codes: Collection[str] = ()) -> Verdict:
    """The verdict on a window's report. ``huke_retry_codes``: Huke envelope codes (as text)
    that mean "try again later" for this tenant's Huke client."""
    if report.ok:
        return Verdict.COMPLETED
    if report.errors:
        passing = all(_passes(error, huke_retry_codes) for error in report.errors)
        return Verdict.TRANSIENT if passing else Verdict.FATAL
    if report.uncertain:  # saves whose outcome is unknown: the next run looks them up first
        return Verdict.TRANSIENT
    return Verdict.ROWS_FAILED
