"""Running a sync: fetching trades from Huke and carrying out the ledger's K/3 Cloud calls.

The ledger (``_ledger.Ledger``) decides and does no I/O; this module does the I/O.
``sync_customers`` runs each batch of operations the ledger asks for one after the other;
``async_sync_customers`` runs each batch concurrently and, while trades are still being
fetched, already queries the customer numbers it has seen. Both drive the same ledger through
the same ``_Run``, so they reach the same decisions; what differs is only how they wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from typing_extensions import Self, Unpack

from _huke_k3_core import plural
from _huke_k3_core._signature import spell_out_options
from huke_client import AsyncHukeClient, HukeClient
from k3cloud_client import AsyncK3CloudClient, K3CloudClient

from ._calls import Calls, failed
from ._fetching import afetch_windows, fetch_windows
from ._ledger import Ledger
from ._operations import ExistenceQuery, Operation, Pause, operation_size
from ._options import AsyncSyncKwargs, SyncKwargs, SyncOptions, options_of_call
from ._pressure import AdaptiveLimiter, acall_with_backoff, call_with_backoff
from ._progress import Progress, make_sink
from ._report import SyncReport
from ._state import hold
from ._transform import PreparedTrade
from ._watermark import plan_range
from ._windows import ms_to_datetime, zone_of

logger = logging.getLogger("huke_k3_bridge")


class _Run:
    """One run from its options to its report, whichever engine drives it: the state's lock
    (held from before the watermark is read until the run ends), the range, the ledger, the
    progress bar, and the calls its operations become.

    The lock matters: two runs on one state would both fetch the same trades and create the
    same customers, each trusting K/3 Cloud's unique index to refuse the other's.
    """

    def __init__(self, options: SyncOptions, k3: object, *, split: int = 1) -> None:
        self.options = options
        confirm_for = options.confirm_for(k3)
        self._release = hold(options.state)
        #: The report's times are shown in the zone the range was given in (local time for
        #: epoch milliseconds or no range at all).
        self.zone = zone_of(options.start, options.end)
        try:
            self.started = time.perf_counter()
            self.range = plan_range(options, split=split)
            self.ledger = Ledger(options, self.range.windows, confirm_for=confirm_for)
            self.ledger.notes.extend(self.range.notes)
            self.calls = Calls(options.form_id, options.save_flags)
            self.bar = Progress(make_sink(options.progress))
        except BaseException:
            self._release()
            raise
        logger.info(
            "sync %s .. %s in %s%s%s",
            ms_to_datetime(self.range.start_ms, self.zone).isoformat(timespec="seconds"),
            ms_to_datetime(self.range.end_ms, self.zone).isoformat(timespec="seconds"),
            plural(len(self.range.windows), "window"),
            " (resumed from the stored watermark)" if self.range.resumed_from is not None else "",
            " (dry run)" if options.dry_run else "",
        )

    def __enter__(self) -> Self:
        try:
            self.bar.start("fetch")
        except BaseException:  # a progress callback may raise: the lock must go all the same
            self._close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        self._release()  # first: the lock must go even if closing the bar fails
        self.bar.close()

    def batches(self) -> Iterator[tuple[list[Operation], list[Any]]]:
        """The ledger's plan, batch by batch, each announced on the progress bar: fill the list
        given with each batch's results, in order, before asking for the next batch."""
        plan = self.ledger.settle()
        try:
            ops = next(plan)
            while True:
                self._announce(ops)
                results: list[Any] = []
                yield ops, results
                ops = plan.send(results)
        except StopIteration:
            return

    def _announce(self, ops: Sequence[Operation]) -> None:
        """Open a progress phase for a batch of operations."""
        if not ops or isinstance(ops[0], Pause):
            return
        total = sum(operation_size(op) for op in ops)
        self.bar.start("check" if isinstance(ops[0], ExistenceQuery) else "save", total)

    def report(self) -> SyncReport:
        """The run's report, checked to add up, once the watermark it reached is stored."""
        ledger, span = self.ledger, self.range
        outcomes = ledger.outcomes()
        errors = list(ledger.errors)
        errors.extend(ledger.whole_call_errors())
        watermark = None
        if not self.options.dry_run:
            watermark = span.store(self.options.state, ledger.good_until(outcomes), errors)
        zone = self.zone
        report = SyncReport(
            start=ms_to_datetime(span.start_ms, zone),
            end=ms_to_datetime(span.end_ms, zone),
            outcomes=outcomes,
            errors=tuple(errors),
            notes=tuple(ledger.notes),
            dry_run=ledger.dry_run,
            on_existing=ledger.on_existing,
            watermark=None if watermark is None else watermark.astimezone(zone),
            resumed_from=None if span.resumed_from is None else span.resumed_from.astimezone(zone),
            elapsed=time.perf_counter() - self.started,
        )
        report.check(len(ledger.entries))
        self.bar.finish(report.total)
        counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
        logger.info(
            "sync done in %.2fs: %d trades (%s)%s",
            report.elapsed,
            report.total,
            counts or "none",
            ""
            if report.ok
            else f"; {len(report.failures)} failed, {plural(len(report.errors), 'run error')}",
        )
        for error in report.errors:
            logger.error("%s", error)
        return report


def _execute(k3: K3CloudClient, calls: Calls, op: Operation) -> Any:
    """One operation on the sync client: its result, or the exception its call ended with."""
    if isinstance(op, Pause):
        time.sleep(op.seconds)
        return None
    try:
        call = calls.of(op)
        return call.read(call.send(k3))
    except Exception as exc:  # recorded against the rows; the run goes on
        return failed(op, exc)


async def _aexecute(k3: AsyncK3CloudClient, calls: Calls, op: Operation) -> Any:
    """:func:`_execute` on the async client: the same call, awaited (a query's pages drained)."""
    if isinstance(op, Pause):
        import anyio  # the async engine's only: sync programs never load it

        await anyio.sleep(op.seconds)
        return None
    try:
        call = calls.of(op)
        reply = call.send(k3)
        return call.read([row async for row in reply] if call.rows else await reply)
    except Exception as exc:  # recorded against the rows; the run goes on
        return failed(op, exc)


@spell_out_options(SyncKwargs, SyncOptions)
def sync_customers(
    huke: HukeClient,
    k3: K3CloudClient,
    *,
    options: SyncOptions | None = None,
    **keywords: Unpack[SyncKwargs],
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
        options: the run's options as one :class:`SyncOptions`; keywords given beside it
            change those fields.
        **keywords: the run's options by name (:class:`SyncKwargs`): ``start``, ``end``,
            ``transform``, ``on_existing``, ``batch_size``, ``dry_run``, ``state``,
            ``progress``, ``window``, ``form_id``, ``page_size``, ``order_by``, ``clock``,
            ``confirm_timeout``, ``case_sensitive_numbers``, ``search``; each is documented
            with :class:`SyncOptions`.

    Raises:
        ValueError: for arguments that make no sense (``start`` after ``end`` ...).
        StateError: when the state cannot be read.
        StateLockedError: another run holds the state's lock (``FileState(..., wait=)``).

    Nothing else: a failure of Huke or K/3 Cloud is reported, not raised.
    """
    with _Run(options_of_call("sync_customers", options, keywords), k3) as run:
        fetch_windows(huke, run.ledger, run.options.huke_search, run.bar)
        for ops, results in run.batches():
            for op in ops:
                results.append(call_with_backoff(op, lambda o: _execute(k3, run.calls, o)))
                run.bar.advance(operation_size(op))
        return run.report()


async def _gather(
    ops: Sequence[Operation], call: Callable[[Operation], Awaitable[Any]], bar: Progress
) -> list[Any]:
    """Run ``ops`` concurrently (``call`` bounds how many at once); results in order."""
    results: list[Any] = [None] * len(ops)

    async def one(i: int, op: Operation) -> None:
        results[i] = await call(op)
        bar.advance(operation_size(op))

    import anyio

    async with anyio.create_task_group() as tasks:
        for i, op in enumerate(ops):
            tasks.start_soon(one, i, op)
    return results


@spell_out_options(AsyncSyncKwargs, SyncOptions)
async def async_sync_customers(
    huke: AsyncHukeClient,
    k3: AsyncK3CloudClient,
    *,
    options: SyncOptions | None = None,
    **keywords: Unpack[AsyncSyncKwargs],
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

    Args:
        huke: the async Huke client to read trades with.
        k3: the async K/3 Cloud client to save customers with.
        options: as for :func:`sync_customers`; ``concurrency`` and ``fetch_concurrency``
            are read here.
        **keywords: the options of :func:`sync_customers` by name, and ``concurrency`` and
            ``fetch_concurrency`` (:class:`AsyncSyncKwargs`; see :class:`SyncOptions`).

    Same other arguments, decisions and report as :func:`sync_customers`.
    """
    options = options_of_call("async_sync_customers", options, keywords)
    import anyio

    with _Run(options, k3, split=options.fetch_concurrency) as run:
        ledger = run.ledger
        # ``concurrency`` is the ceiling; the limit in use adapts to what K/3 Cloud takes.
        limiter = AdaptiveLimiter(options.concurrency)

        async def call(op: Operation) -> Any:
            return await acall_with_backoff(op, lambda o: _aexecute(k3, run.calls, o), limiter)

        async def early_check(query: ExistenceQuery) -> None:
            ledger.apply_existence(query, await call(query))

        async with anyio.create_task_group() as queries:

            def arrived(page: list[PreparedTrade] | None) -> None:
                if page is not None:
                    ledger.queue_existence(page)
                # After the last page every number is known: the last ones are queried at
                # once, while the pages fetched ahead are still being recorded in order.
                for query in ledger.take_existence_queries(full_only=page is not None):
                    queries.start_soon(early_check, query)

            def received(index: int, page: list[PreparedTrade]) -> None:
                for prepared in page:
                    ledger.record(prepared, index)
                run.bar.advance(len(page))

            await afetch_windows(
                huke,
                ledger,
                options.huke_search,
                options.fetch_concurrency,
                run.bar,
                arrived,
                received,
            )
        for ops, results in run.batches():
            results.extend(await _gather(ops, call, run.bar))
        return run.report()
