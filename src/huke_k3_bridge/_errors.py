"""The bridge's own errors (the clients raise theirs: ``HukeError``, ``K3CloudError``), and how
any error is told in a report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from _huke_k3_core import one_line


class BridgeError(Exception):
    """Base of the errors raised by ``huke_k3_bridge`` itself."""


class StateError(BridgeError):
    """A state file could not be read or written (the message names the file)."""


class StateLockedError(StateError):
    """Another run holds the state's lock: two runs on one state would both create the same
    customers. The message names the state file and, when known, the holder.

    Attributes:
        path: the state file.
        pid: the process id of the run holding it, when the lock file says.
        host: the host that run is on, when the lock file says.
        since: when that run took the lock, when the lock file says.
        waited: seconds this run waited for the lock before giving up (0 without ``wait``).
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        pid: int | None = None,
        host: str | None = None,
        since: datetime | None = None,
        waited: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid
        self.host = host
        self.since = since
        self.waited = waited


class TenantsError(BridgeError, ValueError):
    """A tenants file, or a client made from one of its tenants, cannot work.

    The message names the file, the tenant and the key (``"tenants.toml: tenant 'shop-a':
    k3.app_secret: ..."``) and never quotes a secret or the value of an environment variable.
    """


class AccountingError(BridgeError, RuntimeError):
    """The report's books do not balance: a trade without exactly one outcome.

    Raised by the run's self-check; it means a bug in the bridge, never bad data.
    """


def error_text(exc: BaseException) -> str:
    """An exception as one line of a report: its type, and its message cut to 500 characters."""
    text = one_line(str(exc), 500)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
