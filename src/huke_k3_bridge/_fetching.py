"""Fetching a run's trades from Huke into the ledger: window after window, or side by side.

Both fetchers stop at the first window that fails (the ledger reports it; what was fetched
before it is still saved) and mark each window fully fetched, which is what lets the watermark
advance over it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huke_client import AsyncHukeClient, HukeClient, SearchOptions

from ._ledger import Ledger
from ._progress import Progress
from ._transform import PreparedTrade, prepare_trade

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

_WINDOW_DONE = object()


def fetch_windows(huke: HukeClient, ledger: Ledger, search: SearchOptions, bar: Progress) -> None:
    """Fetch ``ledger.windows`` one after the other with ``search``, each trade recorded as it
    comes."""
    for index, span in enumerate(ledger.windows):
        try:
            for page in huke.iter_trade_pages(start=span.start_ms, end=span.end_ms, options=search):
                bar.page_arrived(index, len(page.trades), page.total)
                for trade in page.trades:
                    ledger.add(trade, index)
                bar.advance(len(page.trades))
        except Exception as exc:  # reported; what was fetched is still saved
            ledger.fetch_failed(index, exc)
            break
        span.complete = True


async def afetch_windows(
    huke: AsyncHukeClient,
    ledger: Ledger,
    search: SearchOptions,
    width: int,
    bar: Progress,
    arrived: Callable[[list[PreparedTrade] | None], None],
    received: Callable[[int, list[PreparedTrade]], None],
) -> None:
    """Fetch ``ledger.windows`` with ``search``, up to ``width`` at a time. Each page is
    counted on ``bar`` as it arrives (see ``Progress.page_arrived``), prepared and given to
    ``arrived`` (then ``None`` once every window is in), and to ``received`` in window order
    (with its window). Stops at the first window that fails (as the sync fetcher does)."""
    # Loaded here, by the async engine only: sync programs never pay for anyio.
    import anyio
    from anyio.streams.memory import MemoryObjectReceiveStream

    slots = anyio.Semaphore(width)
    unfetched = len(ledger.windows)
    transform, order_by = ledger.transform, ledger.order_by
    opened, to_consume = anyio.create_memory_object_stream[
        tuple[int, MemoryObjectReceiveStream[Any]]
    ](max_buffer_size=math.inf)

    async def download(index: int, out: MemoryObjectSendStream[Any]) -> None:
        """One window's pages, as they come, then _WINDOW_DONE or the error that ended it."""
        span = ledger.windows[index]
        async with out:
            try:
                pages = huke.iter_trade_pages(start=span.start_ms, end=span.end_ms, options=search)
                async for page in pages:
                    bar.page_arrived(index, len(page.trades), page.total)
                    await out.send(page.trades)
            except Exception as exc:  # reported; what was fetched before it is still saved
                await out.send(exc)
                return
            await out.send(_WINDOW_DONE)

    async def fetch(index: int, out: MemoryObjectSendStream[Any]) -> None:
        """One window's pages, prepared: each while the next one is being downloaded."""
        nonlocal unfetched
        downloads, downloaded = anyio.create_memory_object_stream[Any](max_buffer_size=math.inf)
        async with out, downloaded, anyio.create_task_group() as tasks:
            tasks.start_soon(download, index, downloads)
            async for payload in downloaded:
                if isinstance(payload, list):
                    # The transform does not depend on order: it is done here, as pages
                    # arrive, so that the windows fetched ahead are ready to be recorded
                    # when their turn comes.
                    payload = [prepare_trade(trade, transform, order_by) for trade in payload]
                    arrived(payload)
                elif payload is _WINDOW_DONE:
                    unfetched -= 1
                    if not unfetched:
                        arrived(None)
                await out.send(payload)

    async def launch(tasks: TaskGroup) -> None:
        async with opened:
            for index in range(len(ledger.windows)):
                # A slot is given back only once the window has been consumed: at most
                # ``width`` windows are being fetched or waiting in memory.
                await slots.acquire()
                out, inbox = anyio.create_memory_object_stream[Any](max_buffer_size=math.inf)
                await opened.send((index, inbox))
                tasks.start_soon(fetch, index, out)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(launch, tasks)
        async with to_consume:
            async for index, inbox in to_consume:
                failed = False
                async with inbox:
                    async for payload in inbox:
                        if payload is _WINDOW_DONE:
                            ledger.windows[index].complete = True
                        elif isinstance(payload, BaseException):
                            ledger.fetch_failed(index, payload)
                            failed = True
                        else:
                            received(index, payload)
                slots.release()
                if failed:
                    tasks.cancel_scope.cancel()
                    break
