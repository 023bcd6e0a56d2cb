"""Where an incremental sync resumes: a watermark kept between runs."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._errors import StateError

#: How far before the stored watermark the next run starts. Trades seen twice are absorbed by the
#: dedupe (their customers already exist), trades committed late on Huke's side are not missed.
DEFAULT_OVERLAP = timedelta(minutes=5)
_VERSION = 1


@runtime_checkable
class State(Protocol):
    """Storage of the watermark: the end of the last time window that fully succeeded.

    ``FileState`` keeps it in a JSON file; anything with these members works (a database row,
    a key in Redis, an Airflow Variable).
    """

    #: How far before the watermark the next run starts.
    overlap: timedelta

    def load(self) -> datetime | None:
        """The stored watermark (timezone-aware), or None when there is none yet."""
        ...

    def save(self, watermark: datetime) -> None:
        """Store ``watermark``; called only after a window fully succeeded."""
        ...


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class FileState:
    """A watermark in a small JSON file, replaced atomically.

    The new content is written to a temporary file in the same directory, flushed to disk, then
    moved over the old file with ``os.replace``: a crash at any point leaves either the old
    watermark or the new one, never a torn file. A missing file means "no watermark yet".
    """

    def __init__(
        self, path: str | os.PathLike[str], *, overlap: timedelta = DEFAULT_OVERLAP
    ) -> None:
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        self.path = Path(path)
        self.overlap = overlap

    def __repr__(self) -> str:
        return f"FileState({str(self.path)!r}, overlap={self.overlap!r})"

    def load(self) -> datetime | None:
        """The stored watermark, None when the file does not exist."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
            ms = data["watermark_ms"]
            if not isinstance(ms, int) or isinstance(ms, bool):
                raise TypeError("watermark_ms is not an integer")
            return _from_ms(ms)
        except (ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
            snippet = " ".join(text.split())[:120]
            raise StateError(
                f"state file {self.path} is not a watermark file ({exc}); it holds {snippet!r}. "
                "Delete it to start from the default window."
            ) from exc

    def save(self, watermark: datetime) -> None:
        """Store ``watermark`` atomically (temporary file + ``os.replace``)."""
        if watermark.tzinfo is None:
            watermark = watermark.astimezone()
        ms = _to_ms(watermark)
        body = {
            "version": _VERSION,
            "watermark_ms": ms,
            "watermark": _from_ms(ms).isoformat(),
        }
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise StateError(f"cannot write state file {self.path}: {exc}") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateError(f"cannot write state file {self.path}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
