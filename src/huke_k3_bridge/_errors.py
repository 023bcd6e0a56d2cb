"""The bridge's own errors (the clients raise theirs: ``HukeError``, ``K3CloudError``)."""

from __future__ import annotations


class BridgeError(Exception):
    """Base of the errors raised by ``huke_k3_bridge`` itself."""


class StateError(BridgeError):
    """A state file could not be read or written (the message names the file)."""


class AccountingError(BridgeError, RuntimeError):
    """The report's books do not balance: a trade without exactly one outcome.

    Raised by the run's self-check; it means a bug in the bridge, never bad data.
    """
