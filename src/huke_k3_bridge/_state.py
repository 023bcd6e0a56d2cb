"""Where an incremental sync resumes: a watermark kept between runs, and the lock that keeps two
runs off one watermark."""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._errors import StateError, StateLockedError

if sys.platform != "win32":
    import fcntl

#: How far before the stored watermark the next run starts. Trades seen twice are absorbed by the
#: dedupe (their customers already exist), trades committed late on Huke's side are not missed.
DEFAULT_OVERLAP = timedelta(minutes=5)
_VERSION = 1
#: Pauses between two tries while waiting for a run lock: short at first (a run ending now is
#: followed at once), never long (a run ending later is followed within this many seconds).
_POLL_FIRST = 0.01
_POLL_MAX = 0.2
#: Where the Windows lock sits in the lock file: past the holder's note, because other
#: processes cannot even read a byte range locked on Windows.
_WINDOWS_LOCK_OFFSET = 1 << 20
#: Read when a lock is taken (not at import) so that tests can take the Windows path here.
_WINDOWS = sys.platform == "win32"

# The lock files this process holds, with the thread holding each: a run nested in a run on the
# same state fails at once instead of waiting for itself.
_holders: dict[str, int] = {}
_holders_guard = threading.Lock()


@runtime_checkable
class State(Protocol):
    """Storage of the watermark: the end of the last time window that fully succeeded.

    ``FileState`` keeps it in a JSON file; anything with these members works (a database row,
    a key in Redis, an Airflow Variable).

    Optionally, a state also keeps two runs apart: an ``acquire()`` method that takes an
    exclusive lock and returns the function releasing it (as ``FileState.acquire`` does). A sync
    calls it before it reads the watermark and calls the release function when the run ends,
    however it ends; ``acquire`` raises (``StateLockedError``) when another run holds the lock.
    States without ``acquire`` are not locked.
    """

    #: How far before the watermark the next run starts.
    overlap: timedelta

    def load(self) -> datetime | None:
        """The stored watermark (timezone-aware), or None when there is none yet."""
        ...

    def save(self, watermark: datetime) -> None:
        """Store ``watermark``; called only after a window fully succeeded."""
        ...


def _released() -> None:
    """The release function of a state without a lock."""


def hold(state: object) -> Callable[[], object]:
    """Take ``state``'s run lock when it has one (an ``acquire()`` method, see :class:`State`);
    the function that releases it, which does nothing for a state without a lock."""
    acquire = getattr(state, "acquire", None)
    if acquire is None:
        return _released
    release = acquire()
    if not callable(release):
        raise TypeError(
            f"{type(state).__name__}.acquire() must return a release function, got {release!r}"
        )
    return release  # type: ignore[no-any-return]


# -- the OS lock: fcntl.flock on POSIX, msvcrt.locking on Windows. Both belong to the open file,
# -- so the lock dies with the process however it ends (SIGKILL, a container stopped).


def _posix_try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _posix_unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def _msvcrt() -> Any:
    # Imported by name: mypy checks this module on POSIX, where msvcrt does not exist.
    return importlib.import_module("msvcrt")


def _windows_try_lock(fd: int) -> bool:
    msvcrt = _msvcrt()
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EDEADLK):  # the C runtime's "locked by another"
            return False
        raise
    return True


def _windows_unlock(fd: int) -> None:
    msvcrt = _msvcrt()
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_holder(fd: int) -> tuple[int | None, str | None, datetime | None]:
    """The pid, host and start time the holder noted in the lock file, None for what is not
    there (the note is written just after the lock is taken, and is only informative)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        note = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return None, None, None
    if not isinstance(note, dict):
        return None, None, None
    pid, host, started, since = note.get("pid"), note.get("host"), note.get("since"), None
    if isinstance(started, str):
        with contextlib.suppress(ValueError):
            since = datetime.fromisoformat(started)
    return (
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host if isinstance(host, str) else None,
        since,
    )


#: Temporary files of ``FileState.save`` are ``.<state file name>.<random>.tmp``.
_TMP_PREFIX = "."


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class FileState:
    """A watermark in a small JSON file, replaced atomically, and a lock file next to it.

    The new content is written to a temporary file in the same directory, flushed to disk, then
    moved over the old file with ``os.replace``: a crash at any point leaves either the old
    watermark or the new one, never a torn file. A missing file means "no watermark yet".

    A sync holds the state's lock (:meth:`acquire`) for its whole run: a second run on the same
    state fails at once with ``StateLockedError``, or first waits up to ``wait`` seconds
    (``True``: as long as it takes) for the other one to finish.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        wait: bool | float = False,
    ) -> None:
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        if not isinstance(wait, (bool, int, float)):
            raise TypeError(f"wait must be True, False or seconds, not {type(wait).__name__}")
        if not isinstance(wait, bool) and (math.isnan(wait) or wait < 0):
            raise ValueError(f"wait must be True, False or seconds >= 0, got {wait!r}")
        self.path = Path(path)
        self.overlap = overlap
        #: How long :meth:`acquire` waits for another run: ``False`` not at all, ``True`` as
        #: long as it takes, a number that many seconds.
        self.wait: bool | float = True if wait == math.inf else wait

    @property
    def lock_path(self) -> Path:
        """The lock file next to the state file: ``<path>.lock``."""
        return self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        wait = f", wait={self.wait!r}" if self.wait is not False else ""
        return f"FileState({str(self.path)!r}, overlap={self.overlap!r}{wait})"

    def acquire(self) -> Callable[[], None]:
        """Take the exclusive run lock of this state; the function that releases it.

        The lock is an OS lock on ``lock_path`` (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on
        Windows). It belongs to the open file, so it dies with the process however it ends, and
        a lock file left behind is harmless. The file is never deleted (deleting a lock file
        races with a run opening it); it notes the holder's pid, host and start time for
        operators. A second ``acquire`` while the lock is held is refused, in this process too
        (through this object or another on the same path). The sync engines call this for you;
        ``async_sync_customers`` calls it before its first request, so a ``wait`` blocks its
        event loop until the lock is taken.

        Raises:
            StateLockedError: another run holds the lock (still, after waiting ``wait``).
            StateError: the lock file cannot be created or locked.
        """
        lock_path = self.lock_path
        key = os.path.abspath(lock_path)
        with _holders_guard:
            nested = _holders.get(key) == threading.get_ident()
        if nested:  # waiting would wait for ourselves
            raise StateLockedError(
                f"state file {self.path} is in use by a run in this thread (lock file "
                f"{lock_path}): a sync cannot run inside another sync on the same state",
                path=self.path,
                pid=os.getpid(),
            )
        try_lock, unlock = (
            (_windows_try_lock, _windows_unlock) if _WINDOWS else (_posix_try_lock, _posix_unlock)
        )
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"cannot open the lock file {lock_path} of state file {self.path}: {exc}"
            ) from exc
        try:
            self._lock(fd, try_lock)
            note = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(note).encode("utf-8") + b"\n")
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot lock {lock_path} of state file {self.path}: {exc}") from exc
        except BaseException:
            os.close(fd)
            raise
        with _holders_guard:
            _holders[key] = threading.get_ident()
        # Only a run holding the lock writes the state: a temporary file present now was left by
        # a write that died half-way (the state file itself is intact: it is replaced at once).
        self._remove_leftovers()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            with _holders_guard:
                _holders.pop(key, None)
            # Never raises: closing the file releases the lock whatever went wrong before. The
            # note goes first, while the lock is still held: an empty file means "free".
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            with contextlib.suppress(OSError):
                unlock(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

        return release

    def _remove_leftovers(self) -> None:
        """Delete the temporary files of writes that never finished (see ``save``)."""
        with contextlib.suppress(OSError):
            for leftover in self.path.parent.glob(
                f"{_glob_escape(_TMP_PREFIX + self.path.name)}.*.tmp"
            ):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def _lock(self, fd: int, try_lock: Callable[[int], bool]) -> None:
        """Lock ``fd``, trying again for up to ``wait`` seconds; StateLockedError if it stays
        taken."""
        started = time.monotonic()
        limit = None if self.wait is True else float(self.wait)
        pause = _POLL_FIRST
        while not try_lock(fd):
            waited = time.monotonic() - started
            if limit is not None and waited >= limit:
                raise self._locked(fd, waited if limit else 0.0)
            time.sleep(pause if limit is None else min(pause, limit - waited))
            pause = min(pause * 2, _POLL_MAX)

    def _locked(self, fd: int, waited: float) -> StateLockedError:
        pid, host, since = _read_holder(fd)
        known = [
            f"pid {pid}" if pid is not None else "",
            f"on {host}" if host else "",
            f"since {since.isoformat()}" if since is not None else "",
        ]
        holder = " ".join(part for part in known if part)
        still = f"still in use after waiting {waited:.1f}s" if waited else "in use"
        return StateLockedError(
            f"state file {self.path} is {still} by another run "
            f"({holder + ', ' if holder else ''}lock file {self.lock_path}); two runs on one "
            "state would both create the same customers. Retry once it is done, or queue behind "
            "it with wait= (huke-k3 sync --wait [SECONDS])",
            path=self.path,
            pid=pid,
            host=host,
            since=since,
            waited=waited,
        )

    def load(self) -> datetime | None:
        """The stored watermark, None when the file does not exist."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc}") from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StateError(
                f"state file {self.path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                f"{exc.start}), so it is not a watermark file this library wrote (those are JSON): "
                "restore it from a backup, or delete it and pass start= (huke-k3 sync --start) "
                "to choose where the next run begins"
            ) from None
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
            fd, tmp = tempfile.mkstemp(
                prefix=f"{_TMP_PREFIX}{self.path.name}.", suffix=".tmp", dir=directory
            )
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
