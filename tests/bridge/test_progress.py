"""Progress: callbacks, a plain stderr line, silence when not interactive."""

from __future__ import annotations

import io
import logging

import pytest

from huke_k3_bridge import ProgressEvent
from huke_k3_bridge._progress import Progress, _Line, _Silent, make_sink


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_callback_receives_events() -> None:
    events: list[ProgressEvent] = []
    progress = Progress(make_sink(events.append))
    progress.start("fetch")
    progress.advance(100)
    progress.start("save", 3)
    progress.advance(3)
    progress.finish(100)
    assert events == [
        ProgressEvent("fetch", 0, None),
        ProgressEvent("fetch", 100, None),
        ProgressEvent("save", 0, 3),
        ProgressEvent("save", 3, 3),
        ProgressEvent("done", 100, 100),
    ]
    assert str(events[3]) == "saving customers: 3/3"
    assert str(events[1]) == "fetching trades: 100"


def test_broken_callback_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken(event: ProgressEvent) -> None:
        calls.append(event)
        raise RuntimeError("display gone")

    progress = Progress(make_sink(broken))
    with caplog.at_level(logging.WARNING, logger="huke_k3_bridge"):
        progress.start("fetch")
        progress.advance(1)
    assert len(calls) == 1
    assert "progress callback failed" in caplog.text


def test_silent_when_not_interactive() -> None:
    assert isinstance(make_sink(None, stream=io.StringIO()), _Silent)
    assert isinstance(make_sink(False, stream=TTY()), _Silent)


def test_plain_line_on_a_terminal_and_when_forced() -> None:
    assert isinstance(make_sink(None, stream=TTY()), _Line)
    out = io.StringIO()
    progress = Progress(make_sink(True, stream=out))
    progress.start("fetch")
    progress.advance(5)
    progress.start("save", 2)
    progress.advance(2)
    progress.finish(5)
    text = out.getvalue()
    assert "\rfetching trades: 0" in text
    assert "\rsaving customers: 2/2" in text
    assert text.endswith("\n")


def test_line_shows_the_last_count_of_a_throttled_phase() -> None:
    out = io.StringIO()
    progress = Progress(make_sink(True, stream=out))
    progress.start("fetch")
    for _ in range(7):
        progress.advance(100)  # all within the throttle interval
    progress.start("check", 3)
    progress.finish(700)
    lines = out.getvalue().split("\n")
    assert lines[0].endswith("\rfetching trades: 700")
    assert "fetching trades: 300" not in lines[0]
    assert lines[2] == "\rdone: 700 trades accounted for"


def test_tqdm_bars_one_per_phase() -> None:
    from huke_k3_bridge._progress import _Tqdm

    bars: list[FakeBar] = []

    class FakeBar:
        def __init__(self, **options: object) -> None:
            self.options = options
            self.n = 0
            self.closed = False
            bars.append(self)

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            self.closed = True

    progress = Progress(_Tqdm(FakeBar))
    progress.start("fetch")
    progress.advance(40)
    progress.start("save", 5)
    progress.advance(5)
    progress.finish(40)
    assert [(b.options["desc"], b.options["total"], b.n, b.closed) for b in bars] == [
        ("fetching trades", None, 40, True),
        ("saving customers", 5, 5, True),
    ]
