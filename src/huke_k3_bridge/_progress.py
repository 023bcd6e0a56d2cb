"""Progress of a sync: a bar for people, a callback for applications, silence for pipelines."""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, TextIO, TypeAlias

import attrs

from _huke_k3_core import plural

logger = logging.getLogger("huke_k3_bridge")

Phase = Literal["fetch", "check", "save", "done"]

_LABELS: dict[str, str] = {
    "fetch": "fetching trades",
    "check": "checking K/3 Cloud",
    "save": "saving customers",
    "done": "done",
}


@attrs.frozen
class ProgressEvent:
    """Where a sync is: its phase and how far into it.

    ``phase`` is ``"fetch"`` (``done`` = trades fetched), ``"check"`` (customer numbers looked
    up in K/3 Cloud, of ``total``), ``"save"`` (customers sent to ``BatchSave``, of ``total``)
    or ``"done"`` (``done`` = trades accounted for).

    For ``"fetch"``, ``total`` is what Huke has said so far: for each window whose first page
    has arrived and carried a total (``TradePage.total``), that total (or what was fetched of
    it, if more), plus what was fetched of every other window. So it grows as windows start,
    and is ``None`` until a page carries a total (a reply without one, as a bare list).
    """

    phase: Phase
    done: int
    total: int | None = None

    def __str__(self) -> str:
        if self.phase == "done":
            return f"done: {plural(self.done, 'trade')} accounted for"
        of = f"/{self.total}" if self.total is not None else ""
        return f"{_LABELS[self.phase]}: {self.done}{of}"


#: ``progress=``: a callable receiving :class:`ProgressEvent`, ``True`` (always show a bar),
#: ``False`` (never), or ``None`` (a bar on a terminal or in a notebook, silence otherwise).
ProgressCallback: TypeAlias = Callable[[ProgressEvent], None]
ProgressArg: TypeAlias = ProgressCallback | bool | None


class _Sink(Protocol):
    def update(self, event: ProgressEvent) -> None: ...

    def close(self) -> None: ...


class _Silent:
    def update(self, event: ProgressEvent) -> None:
        return

    def close(self) -> None:
        return


class _Line:
    """One line per phase on stderr, rewritten in place at most ten times a second."""

    def __init__(self, stream: TextIO, *, interval: float = 0.1) -> None:
        self._stream = stream
        self._interval = interval
        self._last = 0.0
        self._shown: ProgressEvent | None = None
        self._pending: ProgressEvent | None = None
        self._width = 0

    def update(self, event: ProgressEvent) -> None:
        current = self._shown or self._pending
        if current is not None and event.phase != current.phase:
            self._end_line()
        now = time.monotonic()
        finished = event.total is not None and event.done >= event.total
        if self._shown is not None and not finished and now - self._last < self._interval:
            self._pending = event  # shown later, at the latest when the phase ends
            return
        self._last = now
        self._draw(event)

    def _draw(self, event: ProgressEvent) -> None:
        text = str(event)
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)
        self._shown, self._pending = event, None

    def _end_line(self) -> None:
        if self._pending is not None:
            self._draw(self._pending)
        if self._shown is not None:
            self._stream.write("\n")
            self._stream.flush()
        self._shown = self._pending = None
        self._width = 0

    def close(self) -> None:
        self._end_line()


class _Tqdm:
    """One tqdm bar per phase: a widget in notebooks (with ipywidgets), text elsewhere."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self._factory = factory
        self._bar: Any = None
        self._phase: str | None = None
        self._total: int | None = None

    def update(self, event: ProgressEvent) -> None:
        if event.phase != self._phase:
            self.close()
            if event.phase == "done":
                return
            self._phase = event.phase
            self._bar = self._factory(
                total=event.total, desc=_LABELS[event.phase], unit="", leave=True
            )
            self._total = event.total
        if self._bar is not None:
            if event.total is not None and event.total != self._total:
                self._total = event.total
                # reset() is how tqdm's notebook widget learns a new total (its bar's maximum);
                # the start time is kept, so the elapsed time and the rate stay right.
                started = self._bar.start_t
                self._bar.reset(total=event.total)
                self._bar.start_t = started
            self._bar.n = event.done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._phase = None


class _Callback:
    def __init__(self, callback: ProgressCallback) -> None:
        self._callback: ProgressCallback | None = callback

    def update(self, event: ProgressEvent) -> None:
        if self._callback is None:
            return
        try:
            self._callback(event)
        except Exception:
            # A broken progress display must not break a sync; say so once and stop calling it.
            logger.warning("progress callback failed; it will not be called again", exc_info=True)
            self._callback = None

    def close(self) -> None:
        return


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _tqdm_factory() -> Callable[..., Any] | None:
    """tqdm's bar: ``tqdm.auto`` (a widget in notebooks) when ipywidgets is installed, else
    the text bar (``tqdm.std``). Without ipywidgets, ``tqdm.auto`` in a notebook warns
    ("IProgress not found", a ``TqdmWarning``) and falls back to the text bar anyway; the
    ``notebook`` extra installs both."""
    try:
        if _importable("ipywidgets"):
            from tqdm.auto import tqdm
        else:
            from tqdm.std import tqdm
    except ImportError:
        return None
    return tqdm  # type: ignore[no-any-return]


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (ipywidgets is slow to load)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None
        return False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make_sink(progress: ProgressArg, *, stream: TextIO | None = None) -> _Sink:
    """The progress display ``progress=`` asks for (see :data:`ProgressArg`)."""
    if progress is False:
        return _Silent()
    if not isinstance(progress, bool) and progress is not None:
        return _Callback(progress)
    out = stream if stream is not None else sys.stderr
    if progress is None and not (_isatty(out) or _in_notebook()):
        return _Silent()
    factory = _tqdm_factory()
    if factory is not None and stream is None:
        return _Tqdm(factory)
    return _Line(out)


class Progress:
    """What the engine talks to: counts per phase, forwarded to the sink."""

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink
        self.phase: Phase | None = None
        self.done = 0
        self.total: int | None = None
        # The fetch's total (see ProgressEvent): per window, the total its first page said
        # (None: none) and the trades fetched of it; their sum, kept as pages arrive.
        self._windows: dict[int, tuple[int | None, int]] = {}
        self._fetch_total = 0
        self._told_total = False

    def start(self, phase: Phase, total: int | None = None) -> None:
        self.phase, self.done, self.total = phase, 0, total
        self._sink.update(ProgressEvent(phase, 0, total))

    def page_arrived(self, window: int, count: int, total: int | None) -> None:
        """A page of ``count`` trades of fetch window ``window`` arrived, saying ``total`` (the
        window's total is its first page's): the fetch's total is updated for the next event."""
        known = self._windows.get(window)
        said, fetched = (total, 0) if known is None else known
        before = 0 if known is None else fetched if said is None else max(said, fetched)
        fetched += count
        after = fetched if said is None else max(said, fetched)
        self._windows[window] = (said, fetched)
        self._fetch_total += after - before
        self._told_total = self._told_total or said is not None
        if self.phase == "fetch" and self._told_total:
            self.total = self._fetch_total

    def advance(self, count: int = 1) -> None:
        if self.phase is None:
            return
        self.done += count
        self._sink.update(ProgressEvent(self.phase, self.done, self.total))

    def finish(self, accounted: int) -> None:
        self.phase = "done"
        self._sink.update(ProgressEvent("done", accounted, accounted))
        self._sink.close()

    def close(self) -> None:
        self._sink.close()
