"""The fleet's errors. Both reach Celery's result backend as JSON, so they carry only text."""

from __future__ import annotations

from huke_k3_bridge._errors import BridgeError


class FleetConfigError(BridgeError, ValueError):
    """A fleet setting (an environment variable or an ``install`` argument) is malformed, or
    something the fleet needs (a Redis for its slots) is not configured."""


class WindowFailedError(BridgeError):
    """A window's task failed for good: a configuration or credential error (not retried), an
    error repeating cannot help, or passing troubles that outlasted the retries. The message
    names the tenant and the window and quotes the report's errors (never a secret: the clients
    redact them)."""
