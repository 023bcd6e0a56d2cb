"""Work bounded by a deadline it has no way to keep itself: a blocking call run in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def within(
    seconds: float,
    work: Callable[[], T],
    late: Callable[[float], T],
    *,
    name: str = "huke-k3-doctor",
) -> T:
    """``work()``'s result when it ends within ``seconds``, else ``late(seconds)``; what
    ``work`` raises is raised in the caller's thread.

    httpx's timeouts bound each read, not a whole reply: a server sending its reply a byte at a
    time keeps a call going for as long as it likes (and ``getaddrinfo`` has no timeout at all).
    The work runs in a daemon thread named ``name``; one left behind ends with its call (when the
    client is closed, or the bytes stop) or with the program.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return late(seconds)
    if errors:
        raise errors[0]
    return results[0]
