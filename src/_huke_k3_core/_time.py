"""Ranges of epoch milliseconds: the one split both the Huke client and the bridge use."""

from __future__ import annotations

from collections.abc import Iterator


def split_range(start_ms: int, end_ms: int, width_ms: int | None) -> Iterator[tuple[int, int]]:
    """Consecutive, non-overlapping, inclusive ``[a, b]`` ranges covering ``[start_ms, end_ms]``.

    Each is ``width_ms`` long (``[a, a + w - 1]``) except the last, which ends at ``end_ms``;
    ``None`` gives the whole range at once. Nothing when ``start_ms > end_ms``.
    """
    if width_ms is None:
        if start_ms <= end_ms:
            yield start_ms, end_ms
        return
    if width_ms < 1:
        raise ValueError(f"window must be at least 1 ms, got {width_ms} ms")
    low = start_ms
    while low <= end_ms:
        high = min(low + width_ms - 1, end_ms)
        yield low, high
        low = high + 1
