"""Lock files in the data directory: one crawl per marketplace, one run of each job, one service.

They are `flock` locks, so the kernel releases them when the process that holds them ends, however it
ends (even SIGKILL): a stale lock file never blocks anything. The file keeps the holder's pid and what
it is doing, for the message that tells the second comer who is busy.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class Busy(RuntimeError):
    """The lock is held by another process (or another holder in this one)."""

    def __init__(self, path: Path, holder: dict[str, Any]):
        self.path = path
        self.holder = holder
        who = f"pid {holder.get('pid')}" if holder.get("pid") else "another process"
        what = f" ({holder['what']})" if holder.get("what") else ""
        since = f" since {holder['since']}" if holder.get("since") else ""
        super().__init__(f"{path.name}: held by {who}{what}{since}")


def lock_dir(home: str | Path) -> Path:
    return Path(home) / "locks"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def crawl_lock_path(home: str | Path, marketplace: str) -> Path:
    return lock_dir(home) / f"crawl-{_safe(marketplace)}.lock"


def job_lock_path(home: str | Path, job_id: str) -> Path:
    return lock_dir(home) / f"job-{_safe(job_id)}.lock"


def service_lock_path(home: str | Path) -> Path:
    return lock_dir(home) / "service.lock"


class FileLock:
    """A non-blocking exclusive lock on `path`: `acquire()` raises Busy when someone holds it.

    Usable as a context manager. The same process cannot take one path twice (flock locks belong to
    the open file, so a second FileLock on the path in this process is Busy too)."""

    def __init__(self, path: str | Path, what: str = ""):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(self.path, read_holder(self.path)) from None
        info = {"pid": os.getpid(), "what": self.what, "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(path: str | Path) -> dict[str, Any]:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        return json.loads(Path(path).read_text("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def is_locked(path: str | Path) -> dict[str, Any] | None:
    """The holder's info when someone holds the lock now, else None. Does not keep the lock."""
    p = Path(path)
    if not p.exists():
        return None
    fd = os.open(p, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(p) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
