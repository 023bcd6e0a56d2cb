"""Running a sync: fetching trades from Huke and carrying out the books' K/3 Cloud calls.

The books (``_books.Run``) decide and do no I/O; this module does the I/O. ``sync_customers``
runs each batch of operations the books ask for one after the other; ``async_sync_customers``
runs each batch concurrently and, while trades are still being fetched, already looks up the
customer numbers it has seen. Both drive the same books, so they reach the same decisions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import attrs
import httpx
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from huke_client import AsyncHukeClient, HukeClient, to_epoch_ms
from k3cloud_client import AsyncK3CloudClient, K3CloudClient

from ._books import (
    DEFAULT_CONFIRM_FOR,
    LookupOp,
    OnExisting,
    Op,
    Prepared,
    Run,
    SaveOp,
    WaitOp,
    error_text,
    rows_to_found,
)
from ._errors import StateError
from ._pressure import AdaptiveLimiter, acall_with_backoff, call_with_backoff
from ._progress import Progress, ProgressArg, make_sink
from ._report import SyncReport
from ._state import State, hold
from ._transform import SCHEME_SAVE_FLAGS, Transform, check_save_options, trade_to_customer
from ._windows import DEFAULT_SPAN, DEFAULT_WINDOW, ONE_MS, ms_to_datetime, split_windows, subdivide

logger = logging.getLogger("huke_k3_bridge")


# -- running it ----------------------------------------------------------------------------------


@attrs.frozen
class _Setup:
    start_ms: int
    end_ms: int
    resumed_from: datetime | None
    stored_ms: int | None
    started: float
    #: "Now" when the fetch started: no watermark is stored beyond it, whatever ``end`` said.
    now_ms: int
    #: The stored watermark was ahead of the clock: it is replaced even by an earlier one.
    rewind: bool = False


#: A stored watermark at most this far ahead of the clock is a clock step: taken as "now".
WATERMARK_SKEW = timedelta(minutes=5)
#: No Huke trade is older than this: an earlier watermark is a broken state, not a position.
_EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z


def _check_watermark(stored_ms: int, now_ms: int, state: State, notes: list[str]) -> int:
    """The stored watermark, clamped to now when a clock step put it slightly ahead; a
    ``StateError`` when it cannot be a real position (never a run that silently skips)."""
    where = f" in {state!r}"
    fix = (
        "pass start= (huke-k3 sync --start) to choose where to resume, or delete the state to "
        "start from the default window"
    )
    if stored_ms < _EARLIEST_MS:
        raise StateError(
            f"the stored watermark{where} ({stored_ms} ms since the epoch) is before 2000: it "
            f"is not a position a sync could have reached; {fix}"
        )
    if stored_ms > now_ms + WATERMARK_SKEW // ONE_MS:
        raise StateError(
            f"the stored watermark{where} is {ms_to_datetime(stored_ms).isoformat()}, later "
            f"than now ({ms_to_datetime(now_ms).isoformat()}): resuming there would skip every "
            f"trade before it; {fix}"
        )
    if stored_ms > now_ms:
        notes.append(
            f"the stored watermark {ms_to_datetime(stored_ms).isoformat()} was ahead of the "
            f"clock ({ms_to_datetime(now_ms).isoformat()}); resumed from now instead"
        )
        return now_ms
    return stored_ms


def _prepare(
    *,
    start: datetime | int | None,
    end: datetime | int | None,
    transform: Transform,
    on_existing: str,
    batch_size: int,
    dry_run: bool,
    state: State | None,
    window: timedelta | None,
    form_id: str,
    order_by: Callable[[Any], Any] | None,
    clock: Callable[[], float],
    confirm_for: float,
    case_sensitive_numbers: bool = False,
    split: int = 1,
    page_size: int = 100,
) -> tuple[Run, _Setup]:
    started = time.perf_counter()
    if on_existing not in ("skip", "update"):
        raise ValueError(f"on_existing must be 'skip' or 'update', not {on_existing!r}")
    # Checked here, before any request: a bad page_size would otherwise surface as a fetch
    # failure of the first window, and a bad window as a TypeError from a comparison.
    for name, count in (("batch_size", batch_size), ("page_size", page_size)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be an int >= 1, got {count!r}")
    if not callable(transform):
        raise TypeError(f"transform must be callable, not {type(transform).__name__}")
    if window is not None and not isinstance(window, timedelta):
        raise ValueError(f"window must be a timedelta (or None), got {window!r}")
    if window is not None and window < ONE_MS:
        raise ValueError(f"window must be at least 1 ms, got {window!r}")
    flags = dict(SCHEME_SAVE_FLAGS)
    flags.update(getattr(transform, "save_flags", {}))
    check_save_options(flags, f"{type(transform).__name__}.save_flags")
    now_ms = int(clock() * 1000)
    end_ms = to_epoch_ms(end, "end") if end is not None else now_ms
    stored = state.load() if state is not None else None
    stored_ms = None if stored is None else to_epoch_ms(stored, "watermark")
    notes: list[str] = []
    rewind = False
    if stored_ms is not None and state is not None:
        checked = _check_watermark(stored_ms, now_ms, state, notes)
        rewind, stored_ms = checked != stored_ms, checked
    resumed_from = None
    if start is not None:
        start_ms = to_epoch_ms(start, "start")
        if start_ms > end_ms:
            raise ValueError(
                f"start {ms_to_datetime(start_ms).isoformat()} is after end "
                f"{ms_to_datetime(end_ms).isoformat()}"
            )
    elif stored_ms is not None and state is not None:
        start_ms = max(stored_ms - state.overlap // ONE_MS, 0)
        resumed_from = ms_to_datetime(start_ms)
    else:
        start_ms = max(end_ms - DEFAULT_SPAN // ONE_MS, 0)
    if start_ms > end_ms:
        # Only a stored watermark gets here (an explicit start after end is refused above).
        notes.append(
            f"nothing to fetch: the stored watermark {ms_to_datetime(start_ms).isoformat()} "
            f"(less its overlap) is after end {ms_to_datetime(end_ms).isoformat()}"
        )
    ranges = split_windows(start_ms, end_ms, window) if start_ms <= end_ms else []
    if split > 1:
        ranges = [part for a, b in ranges for part in subdivide(a, b, split)]
    run = Run(
        transform=transform,
        on_existing=on_existing,  # type: ignore[arg-type]
        dry_run=dry_run,
        form_id=form_id,
        batch_size=batch_size,
        order_by=order_by,
        windows=ranges,
        save_flags=flags,
        confirm_for=confirm_for,
        case_sensitive_numbers=case_sensitive_numbers,
    )
    run.notes.extend(notes)
    setup = _Setup(start_ms, end_ms, resumed_from, stored_ms, started, now_ms, rewind)
    logger.info(
        "sync %s .. %s in %d window(s)%s%s",
        ms_to_datetime(start_ms).isoformat(timespec="seconds"),
        ms_to_datetime(end_ms).isoformat(timespec="seconds"),
        len(ranges),
        " (resumed from the stored watermark)" if resumed_from is not None else "",
        " (dry run)" if dry_run else "",
    )
    return run, setup


def _finish(run: Run, setup: _Setup, state: State | None, progress: Progress) -> SyncReport:
    outcomes = run.outcomes()
    watermark = None
    good_until = run.good_until(outcomes)
    if good_until is not None:
        # Trades stamped after the fetch started may still be arriving: never past that moment.
        good_until = min(good_until, setup.now_ms)
    errors = list(run.errors)
    errors.extend(run.whole_call_errors())
    if (
        state is not None
        and not run.dry_run
        and good_until is not None
        and (setup.stored_ms is None or good_until > setup.stored_ms or setup.rewind)
    ):
        moment = ms_to_datetime(good_until)
        try:
            state.save(moment)
            watermark = moment
        except Exception as exc:
            errors.append(f"could not store the watermark: {error_text(exc)}")
    report = SyncReport(
        start=ms_to_datetime(setup.start_ms),
        end=ms_to_datetime(setup.end_ms),
        outcomes=outcomes,
        errors=tuple(errors),
        notes=tuple(run.notes),
        dry_run=run.dry_run,
        on_existing=run.on_existing,
        watermark=watermark,
        resumed_from=setup.resumed_from,
        elapsed=time.perf_counter() - setup.started,
    )
    report.check(len(run.items))
    progress.finish(report.total)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    logger.info(
        "sync done in %.2fs: %d trades (%s)%s",
        report.elapsed,
        report.total,
        counts or "none",
        "" if report.ok else f"; {len(report.failures)} failed, {len(report.errors)} run error(s)",
    )
    for error in report.errors:
        logger.error("%s", error)
    return report


def _confirm_for(k3: object, confirm_timeout: float | None) -> float:
    if confirm_timeout is not None:
        # Not a number, NaN and infinity (an endless wait; it overflowed the rounds' bound) alike.
        if (
            isinstance(confirm_timeout, bool)
            or not isinstance(confirm_timeout, int | float)
            or not 0 <= confirm_timeout < math.inf
        ):
            raise ValueError(
                f"confirm_timeout must be finite seconds >= 0, got {confirm_timeout!r}"
            )
        return float(confirm_timeout)
    timeout = getattr(k3, "timeout", None)
    read = timeout.read if isinstance(timeout, httpx.Timeout) else None
    return float(read) if read is not None else DEFAULT_CONFIRM_FOR


def _prepare_held(
    *, state: State | None, **options: Any
) -> tuple[Run, _Setup, Callable[[], object]]:
    """``_prepare`` under ``state``'s run lock (when it has one), and the function releasing it.

    The lock is taken before the watermark is read and held until the run ends (the callers'
    ``finally``): two runs on one state would both fetch the same trades and create the same
    customers, each trusting K/3 Cloud's unique index to refuse the other's.
    """
    release = hold(state)
    try:
        run, setup = _prepare(state=state, **options)
    except BaseException:
        release()
        raise
    return run, setup, release


def _announce(ops: Sequence[Op], progress: Progress) -> None:
    """Open a progress phase for a batch of operations."""
    if not ops or isinstance(ops[0], WaitOp):
        return
    if isinstance(ops[0], LookupOp):
        progress.start("check", sum(len(op.numbers) for op in ops if isinstance(op, LookupOp)))
    else:
        progress.start("save", sum(len(op.positions) for op in ops if isinstance(op, SaveOp)))


def _op_size(op: Op) -> int:
    if isinstance(op, WaitOp):
        return 0
    return len(op.numbers) if isinstance(op, LookupOp) else len(op.positions)


def _execute(k3: K3CloudClient, run: Run, op: Op) -> Any:
    if isinstance(op, WaitOp):
        time.sleep(op.seconds)
        return None
    try:
        if isinstance(op, LookupOp):
            args, kwargs = run.lookup_call(op)
            return rows_to_found(k3.iter_bill_query(*args, **kwargs), op.org)
        args, kwargs = run.save_call(op)
        return k3.batch_save(*args, **kwargs)
    except Exception as exc:  # recorded against the rows; the run goes on
        logger.warning(
            "%s of %d failed: %s", type(op).__name__.removesuffix("Op"), _op_size(op), exc
        )
        return exc


async def _aexecute(k3: AsyncK3CloudClient, run: Run, op: Op) -> Any:
    if isinstance(op, WaitOp):
        await anyio.sleep(op.seconds)
        return None
    try:
        if isinstance(op, LookupOp):
            args, kwargs = run.lookup_call(op)
            rows = [row async for row in k3.iter_bill_query(*args, **kwargs)]
            return rows_to_found(rows, op.org)
        args, kwargs = run.save_call(op)
        return await k3.batch_save(*args, **kwargs)
    except Exception as exc:  # recorded against the rows; the run goes on
        logger.warning(
            "%s of %d failed: %s", type(op).__name__.removesuffix("Op"), _op_size(op), exc
        )
        return exc


def sync_customers(
    huke: HukeClient,
    k3: K3CloudClient,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    transform: Transform = trade_to_customer,
    on_existing: OnExisting = "skip",
    batch_size: int = 400,
    dry_run: bool = False,
    state: State | None = None,
    progress: ProgressArg = None,
    window: timedelta | None = DEFAULT_WINDOW,
    form_id: str = "BD_Customer",
    page_size: int = 100,
    order_by: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] = time.time,
    confirm_timeout: float | None = None,
    case_sensitive_numbers: bool = False,
) -> SyncReport:
    """Create a K/3 Cloud customer for every buyer of the Huke trades in ``[start, end]``.

    The run fetches the trades (window by window, page by page), turns each into a customer with
    ``transform``, keeps one customer per number (the latest trade wins; differing names are
    noted), looks up which numbers already exist (``ExecuteBillQuery`` in quoted chunks), creates
    the new ones with ``BatchSave`` (submitted and audited, as the scheme says) and skips or
    updates the existing ones (``on_existing``). A save whose reply is lost is settled by looking
    the numbers up again before anything is re-sent, so re-running a window never creates a
    duplicate. Every trade ends with exactly one outcome in the returned :class:`SyncReport`.

    Args:
        huke: the Huke client to read trades with.
        k3: the K/3 Cloud client to save customers with.
        start: range start (``datetime``, naive = local time, or epoch milliseconds). Default:
            the stored watermark minus its overlap when ``state`` has one, else ``end`` − 20 h.
        end: range end, inclusive. Default: now.
        transform: ``trade -> Customer``; raise ``SkipTrade`` for trades that cannot become one.
        on_existing: ``"skip"`` reports existing customers as ``existed``; ``"update"`` saves
            them again (with ``FCUSTID`` and ``NeedUpDateFields``: the model's fields except the
            number and the organisations). Whether K/3 Cloud lets an audited customer be changed
            depends on its configuration; a refusal is reported per trade.
        batch_size: customers per ``BatchSave`` call.
        dry_run: fetch, transform and look up, but save nothing (and store no watermark).
        state: where the watermark lives (e.g. ``FileState("sync.json")``); advanced only over
            windows that fully succeeded.
        progress: a callback receiving ``ProgressEvent``, ``True``/``False`` to force a bar on or
            off, ``None`` for a bar only on a terminal or in a notebook.
        window: longest time range fetched in one go.
        form_id: the form saved to.
        page_size: trades per Huke page.
        order_by: ``trade -> key`` deciding which trade of a buyer wins (the largest key);
            default: the later one in Huke's stream.
        clock: the time source, for "now".
        confirm_timeout: how long (seconds) a save whose outcome is unknown (its reply timed out
            or was lost) is given to land, looked up with growing pauses, before it is sent
            again. Default: the K/3 client's read timeout — a commit still running when the
            client gave up lands within about that long.
        case_sensitive_numbers: whether customer numbers differing only in case ("ABC",
            "abc") are different customers. Default False, as K/3 Cloud's database compares
            them on the usual SQL Server collation: they are one customer (one is kept, the
            others merged into it) and a lookup finds it whatever its case. Set True for a
            database with a case-sensitive collation.

    Raises:
        ValueError: for arguments that make no sense (``start`` after ``end`` ...).
        StateError: when the state cannot be read.
        StateLockedError: another run holds the state's lock (``FileState(..., wait=)``).

    Nothing else: a failure of Huke or K/3 Cloud is reported, not raised.
    """
    run, setup, release = _prepare_held(
        start=start,
        end=end,
        transform=transform,
        on_existing=on_existing,
        batch_size=batch_size,
        dry_run=dry_run,
        state=state,
        window=window,
        form_id=form_id,
        order_by=order_by,
        clock=clock,
        confirm_for=_confirm_for(k3, confirm_timeout),
        case_sensitive_numbers=case_sensitive_numbers,
        page_size=page_size,
    )
    bar = Progress(make_sink(progress))
    try:
        bar.start("fetch")
        for index, span in enumerate(run.windows):
            try:
                for page in huke.iter_trade_pages(
                    start=span.start_ms, end=span.end_ms, page_size=page_size
                ):
                    for trade in page.trades:
                        run.add(trade, index)
                    bar.advance(len(page.trades))
            except Exception as exc:  # reported; what was fetched is still saved
                run.fetch_failed(index, exc)
                break
            span.complete = True
        plan = run.settle()
        try:
            ops = next(plan)
            while True:
                _announce(ops, bar)
                results = []
                for op in ops:
                    results.append(call_with_backoff(op, lambda o: _execute(k3, run, o)))
                    bar.advance(_op_size(op))
                ops = plan.send(results)
        except StopIteration:
            pass
        return _finish(run, setup, state, bar)
    finally:
        release()  # first: the lock must go even if closing the bar fails
        bar.close()


_WINDOW_DONE = object()


async def _gather(
    ops: Sequence[Op], call: Callable[[Op], Awaitable[Any]], bar: Progress
) -> list[Any]:
    """Run ``ops`` concurrently (``call`` bounds how many at once); results in order."""
    results: list[Any] = [None] * len(ops)

    async def one(i: int, op: Op) -> None:
        results[i] = await call(op)
        bar.advance(_op_size(op))

    async with anyio.create_task_group() as tasks:
        for i, op in enumerate(ops):
            tasks.start_soon(one, i, op)
    return results


async def async_sync_customers(
    huke: AsyncHukeClient,
    k3: AsyncK3CloudClient,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    transform: Transform = trade_to_customer,
    on_existing: OnExisting = "skip",
    batch_size: int = 400,
    dry_run: bool = False,
    state: State | None = None,
    progress: ProgressArg = None,
    window: timedelta | None = DEFAULT_WINDOW,
    form_id: str = "BD_Customer",
    page_size: int = 100,
    order_by: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] = time.time,
    confirm_timeout: float | None = None,
    case_sensitive_numbers: bool = False,
    concurrency: int = 8,
    fetch_concurrency: int = 4,
) -> SyncReport:
    """:func:`sync_customers` on the async clients, overlapping the waits.

    - Fetching: each window is cut into ``fetch_concurrency`` consecutive sub-windows whose pages
      are fetched side by side (at most that many sub-windows in flight or in memory). Each page
      is transformed as soon as it arrives, and the results are recorded strictly in order, so
      the stream, the dedupe and the report are the same as :func:`sync_customers`'. (So
      ``transform`` and ``order_by`` see the trades in the order they arrive, a trade fetched
      twice twice: give functions without side effects.)
    - Existence lookups: every full chunk of new customer numbers is looked up while fetching
      goes on, and the last numbers as soon as the last page is in.
    - Saves start when the last page is in (the latest trade of a buyer must win) and, like
      every K/3 Cloud call of the run, run ``concurrency`` at a time.

    Same other arguments, decisions and report as :func:`sync_customers`.
    """
    for name, value in (("concurrency", concurrency), ("fetch_concurrency", fetch_concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    run, setup, release = _prepare_held(
        start=start,
        end=end,
        transform=transform,
        on_existing=on_existing,
        batch_size=batch_size,
        dry_run=dry_run,
        state=state,
        window=window,
        form_id=form_id,
        order_by=order_by,
        clock=clock,
        confirm_for=_confirm_for(k3, confirm_timeout),
        case_sensitive_numbers=case_sensitive_numbers,
        split=fetch_concurrency,
        page_size=page_size,
    )
    # ``concurrency`` is the ceiling; the limit in use adapts to what K/3 Cloud takes.
    limiter = AdaptiveLimiter(concurrency)
    bar = Progress(make_sink(progress))

    async def call(op: Op) -> Any:
        return await acall_with_backoff(op, lambda o: _aexecute(k3, run, o), limiter)

    async def early_lookup(op: LookupOp) -> None:
        run.apply_lookup(op, await call(op))

    try:
        bar.start("fetch")
        async with anyio.create_task_group() as lookups:

            def arrived(page: list[Prepared] | None) -> None:
                if page is not None:
                    run.queue_lookups(page)
                # After the last page every number is known: the last ones are looked up at
                # once, while the pages fetched ahead are still being recorded in order.
                for op in run.take_lookups(full_only=page is not None):
                    lookups.start_soon(early_lookup, op)

            def received(index: int, page: list[Prepared]) -> None:
                for prepared in page:
                    run.record(prepared, index)
                bar.advance(len(page))

            await _fetch_windows(huke, run, page_size, fetch_concurrency, arrived, received)
        plan = run.settle()
        try:
            ops = next(plan)
            while True:
                _announce(ops, bar)
                ops = plan.send(await _gather(ops, call, bar))
        except StopIteration:
            pass
        return _finish(run, setup, state, bar)
    finally:
        release()  # first: the lock must go even if closing the bar fails
        bar.close()


async def _fetch_windows(
    huke: AsyncHukeClient,
    run: Run,
    page_size: int,
    width: int,
    arrived: Callable[[list[Prepared] | None], None],
    received: Callable[[int, list[Prepared]], None],
) -> None:
    """Fetch ``run.windows`` up to ``width`` at a time. Each page is prepared and given to
    ``arrived`` as it arrives (then ``None`` once every window is in), and to ``received`` in
    window order (with its window). Stops at the first window that fails (as the sync engine
    does)."""
    slots = anyio.Semaphore(width)
    unfetched = len(run.windows)
    opened, to_consume = anyio.create_memory_object_stream[
        tuple[int, MemoryObjectReceiveStream[Any]]
    ](max_buffer_size=math.inf)

    async def download(index: int, out: MemoryObjectSendStream[Any]) -> None:
        """One window's pages, as they come, then _WINDOW_DONE or the error that ended it."""
        span = run.windows[index]
        async with out:
            try:
                pages = huke.iter_trade_pages(
                    start=span.start_ms, end=span.end_ms, page_size=page_size
                )
                async for page in pages:
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
                    payload = [run.prepare(trade) for trade in payload]
                    arrived(payload)
                elif payload is _WINDOW_DONE:
                    unfetched -= 1
                    if not unfetched:
                        arrived(None)
                await out.send(payload)

    async def launch(tasks: TaskGroup) -> None:
        async with opened:
            for index in range(len(run.windows)):
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
                            run.windows[index].complete = True
                        elif isinstance(payload, BaseException):
                            run.fetch_failed(index, payload)
                            failed = True
                        else:
                            received(index, payload)
                slots.release()
                if failed:
                    tasks.cancel_scope.cancel()
                    break
