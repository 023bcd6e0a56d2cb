"""Keeping secrets out of error messages, logs and reprs."""

from __future__ import annotations

import threading
from collections.abc import Iterable

MASK = "***"
#: Secrets shorter than this are not masked inside other text: masking "1" would garble everything.
_MIN_MASKED_LENGTH = 6


class Redactor:
    """Masks every registered secret in text. Secrets can be added later (a new session id)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        fresh = {s for s in secrets if s and len(s) >= _MIN_MASKED_LENGTH}
        if fresh - self._secrets:
            with self._lock:
                self._secrets = self._secrets | fresh

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


def mask(value: str | None) -> str:
    """How a secret appears in a repr: present or absent, never its text."""
    return "None" if value is None else f"'{MASK}'"
