"""One run per output folder: an exclusive lock on ``DIR/.overparam.lock`` held for the whole sweep.

The operating system releases the lock when the holder exits, however it exits (a crash or ``kill -9`` leaves no
stale lock). The file holds the holder's pid, host and start time, so a second run can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".overparam.lock"


class FolderBusy(ValueError):
    """Another process is running a sweep into this folder."""


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold the folder's lock; ``FolderBusy`` (one line naming the folder and the holder) when another run has it."""
    path = Path(out) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            since = time.strftime("%H:%M:%S", time.localtime(holder.get("started", time.time())))
            raise FolderBusy(f"out: {str(out)!r} is in use by another run (pid {holder.get('pid', '?')} on "
                             f"{holder.get('host', '?')}, since {since}); wait for it to finish or give another "
                             f"--out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
