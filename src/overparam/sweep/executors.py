"""Executors run points and hand back :class:`PointRecord` s as they finish, in any order.

- :class:`LocalExecutor`: a process pool on this machine (the default), at most ``workers`` points in flight. A worker
  that dies (killed, out of memory) breaks the pool: the points it held are run again on a fresh pool, up to
  ``max_attempts`` times each, and nothing that finished is lost.
- :class:`DaskExecutor`: a Dask distributed scheduler at ``address``. Dask reschedules the tasks of a worker that dies;
  a task that keeps killing workers comes back as failed.

Both call :func:`execute` in the worker, which never raises: an exception becomes a failed record with its error.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from .store import PointRecord


@dataclass(frozen=True)
class Task:
    """One point to run: its key, the study's name and the parameters."""

    key: str
    study: str
    params: dict[str, Any]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions that can change results: Python, overparam and the git commit of its code ("+dirty" when the
    working tree differs from it; "unknown" outside a checkout), torch, numpy, scipy."""
    import numpy
    import scipy
    import torch

    from .. import __version__
    return {"python": platform.python_version(), "overparam": __version__, "commit": code_commit(),
            "torch": torch.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def code_commit() -> str:
    """The git commit of the overparam source in use, with "+dirty" for uncommitted changes under it."""
    src = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip()[:12] + ("+dirty" if dirty else "")


def _init_worker() -> None:
    from ..backend import pin_threads
    pin_threads(1)


def execute(task: Task) -> PointRecord:
    """Run one point in this process; an exception is caught and recorded as a failed point."""
    from ..studies import get

    t0 = time.perf_counter()
    try:
        study = get(task.study)
        metrics = study.run(dict(task.params))
        if not isinstance(metrics, dict):
            raise TypeError(f"{task.study}.run returned {type(metrics).__name__}, expected dict")
        status, error = "done", ""
    except Exception as exc:  # noqa: BLE001 - the sweep goes on; the error is stored
        metrics, status = {}, "failed"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    return PointRecord(key=task.key, study=task.study, params=task.params, status=status, metrics=metrics,
                       error=error, duration_s=time.perf_counter() - t0, host=socket.gethostname(),
                       versions=versions(), finished_at=time.time())


class Executor(Protocol):
    def run(self, tasks: list[Task]) -> Iterator[PointRecord]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs points one after another in this process (for debugging and for ``workers=1`` in tests)."""

    def run(self, tasks: list[Task]) -> Iterator[PointRecord]:
        for t in tasks:
            yield execute(t)

    def close(self) -> None:
        pass


class LocalExecutor:
    """A process pool of ``workers`` processes (spawned, one torch thread each)."""

    def __init__(self, workers: int | None = None, max_attempts: int = 3):
        self.workers = workers or os.cpu_count() or 1
        self.max_attempts = max_attempts
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker)

    def run(self, tasks: list[Task]) -> Iterator[PointRecord]:
        queue: deque[Task] = deque(tasks)
        attempts: dict[str, int] = {}
        in_flight: dict[Future, Task] = {}
        if self._pool is None:
            self._pool = self._new_pool()
        while queue or in_flight:
            while queue and len(in_flight) < self.workers:
                task = queue.popleft()
                try:
                    in_flight[self._pool.submit(execute, task)] = task
                except BrokenProcessPool:
                    queue.appendleft(task)
                    break
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = in_flight.pop(fut)
                exc = fut.exception()
                if exc is None:
                    yield fut.result()
                    continue
                broken = broken or isinstance(exc, BrokenProcessPool)
                attempts[task.key] = attempts.get(task.key, 0) + 1
                if attempts[task.key] >= self.max_attempts:
                    yield PointRecord(key=task.key, study=task.study, params=task.params, status="failed",
                                      error=f"worker process died {attempts[task.key]} times running this point "
                                            f"({type(exc).__name__}: {exc})", host=socket.gethostname(),
                                      finished_at=time.time())
                else:
                    queue.appendleft(task)
            if broken:
                # every other point in flight died with the pool: put it back, start a fresh pool
                for fut, task in list(in_flight.items()):
                    if fut.done() and fut.exception() is None:
                        yield fut.result()
                    else:
                        queue.appendleft(task)
                in_flight.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def connect_dask(address: str, timeout: float = 5.0):
    """A ``distributed.Client`` for the scheduler at ``address``; ``ValueError`` naming ``scheduler`` when it does not
    answer within ``timeout`` seconds or Dask is not installed."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler: Dask is not installed; pip install 'overparam[dask]'") from None
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"scheduler: no Dask scheduler answers at {address!r} within {timeout:g} s "
                         f"({type(exc).__name__})") from None


class DaskExecutor:
    """Runs points as Dask tasks on the cluster behind ``client`` (or the scheduler at ``address``)."""

    def __init__(self, address: str | None = None, client: Any = None, env: dict[str, str] | None = None):
        if client is None:
            if address is None:
                raise ValueError("scheduler: give an address or a client")
            client = connect_dask(address)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        plugins = os.environ.get("OVERPARAM_PLUGINS", "")
        self.env = env if env is not None else ({"OVERPARAM_PLUGINS": plugins} if plugins else {})

    def run(self, tasks: list[Task]) -> Iterator[PointRecord]:
        from distributed import as_completed

        futures = {self.client.submit(_execute_with_env, t, self.env, key=f"overparam-{t.study}-{t.key}",
                                      pure=False): t for t in tasks}
        # the client's own loop: as_completed otherwise looks for a default client, and ours is not one
        # (set_as_default=False, so that a library call never changes the caller's Dask defaults)
        for fut in as_completed(list(futures), loop=self.client.loop):
            task = futures[fut]
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                yield PointRecord(key=task.key, study=task.study, params=task.params, status="failed",
                                  error=f"{type(exc).__name__}: {exc}", host="dask", finished_at=time.time())

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def _execute_with_env(task: Task, env: dict[str, str]) -> PointRecord:
    """Dask entry point: make the plugins importable in the worker, then :func:`execute`."""
    for k, v in env.items():
        os.environ.setdefault(k, v)
    if env.get("OVERPARAM_PLUGINS"):
        from .. import studies
        studies._loaded = False  # pick up plugins named after the first import in this worker
    from ..backend import pin_threads
    pin_threads(1)
    return execute(task)


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor the command line asks for: Dask when ``scheduler`` is given, else the local pool."""
    if scheduler:
        return DaskExecutor(address=scheduler)
    if workers == 0:
        return SerialExecutor()
    return LocalExecutor(workers)


if sys.platform == "win32":  # pragma: no cover
    mp.freeze_support()
